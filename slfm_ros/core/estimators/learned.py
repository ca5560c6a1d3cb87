"""The learned estimators of a model config, whichever family it belongs to.

One place decides which estimator class wraps which network, so the node, the evaluation
commands and the benchmarks run exactly the same preprocessing and decoding.
"""

from __future__ import annotations

from slfm_ros.core.estimators.base import AudioEstimator, VisualEstimator
from slfm_ros.core.geometry.interaural import InterauralGeometry
from slfm_ros.core.models.config import AnyModelConfig, ModelConfig


def learned_audio_estimator(
    config: AnyModelConfig,
    run_audio: object,
    geometry: InterauralGeometry | None = None,
    silence_dbfs: float = -60.0,
) -> AudioEstimator:
    """The audio estimator of ``config`` around the network call ``run_audio``.

    geometry: the receiver's interaural model, for models that use it (compact family: its
    largest delay is an input, and the card's ``lobe_refine_itd`` refines with it); None when
    unknown. The ResNet family ignores it, and so does a compact network whose config says
    it learned without it (``audio.receiver_input: false``).
    """
    if isinstance(config, ModelConfig):
        from slfm_ros.core.estimators.slfm import SlfmAudioEstimator

        return SlfmAudioEstimator(config.audio, run_audio, silence_dbfs=silence_dbfs)  # type: ignore[arg-type]
    from slfm_ros.core.estimators.cue_audio import CueAudioEstimator

    if not config.audio.receiver_input:
        geometry = None
    return CueAudioEstimator(
        config.audio.cues,
        config.audio.net,
        run_audio,  # type: ignore[arg-type]
        silence_dbfs=silence_dbfs,
        geometry=geometry,
        lobe_refine_itd=config.audio.lobe_refine_itd,
        lobe_widening=config.audio.lobe_widening,
    )


def learned_visual_estimator(config: AnyModelConfig, run_visual: object) -> VisualEstimator:
    """The visual estimator of ``config`` around the network call ``run_visual``."""
    from slfm_ros.core.estimators.slfm import SlfmVisualEstimator

    return SlfmVisualEstimator(config.visual, run_visual)  # type: ignore[arg-type]
