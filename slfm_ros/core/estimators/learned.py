"""The learned estimators of a model config, whichever family it belongs to.

One place decides which estimator class wraps which network, so the node, the evaluation
commands and the benchmarks run exactly the same preprocessing and decoding.
"""

from __future__ import annotations

from slfm_ros.core.estimators.base import AudioEstimator, VisualEstimator
from slfm_ros.core.models.config import AnyModelConfig, ModelConfig


def learned_audio_estimator(
    config: AnyModelConfig,
    run_audio: object,
    max_itd_s: float | None = None,
    silence_dbfs: float = -60.0,
) -> AudioEstimator:
    """The audio estimator of ``config`` around the network call ``run_audio``.

    max_itd_s: the receiver's largest interaural delay, for models that take it (compact
    family); None when unknown. The ResNet family ignores it.
    """
    if isinstance(config, ModelConfig):
        from slfm_ros.core.estimators.slfm import SlfmAudioEstimator

        return SlfmAudioEstimator(config.audio, run_audio, silence_dbfs=silence_dbfs)  # type: ignore[arg-type]
    from slfm_ros.core.estimators.cue_audio import CueAudioEstimator

    return CueAudioEstimator(
        config.audio.cues,
        config.audio.net,
        run_audio,  # type: ignore[arg-type]
        max_itd_s=max_itd_s,
        silence_dbfs=silence_dbfs,
    )


def learned_visual_estimator(config: AnyModelConfig, run_visual: object) -> VisualEstimator:
    """The visual estimator of ``config`` around the network call ``run_visual``."""
    from slfm_ros.core.estimators.slfm import SlfmVisualEstimator

    return SlfmVisualEstimator(config.visual, run_visual)  # type: ignore[arg-type]
