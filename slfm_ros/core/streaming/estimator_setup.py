"""Builds the audio and visual estimators the streaming pipeline runs.

``estimator: classic`` builds the named classical estimators. ``estimator: auto`` builds both and
fuses them per window by their confidences (``slfm_ros.core.estimators.combined``); without a
usable model it is the classical set. ``estimator: slfm`` loads the
learned models from ``model_dir`` on the inference backend chosen by
``slfm_ros.core.backends.create_runners`` (``backend``, ``inference_device`` and the
TensorRT-style options); when they are missing or incompatible (ModelError, or no backend that
can run them) the classical estimators take over and a WARN event says so, with the reason,
so the node keeps producing estimates and the operator knows which ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from slfm_ros.core.errors import ConfigError, InputFormatError, ModelError, SlfmError
from slfm_ros.core.estimators.base import AudioEstimator, VisualEstimator
from slfm_ros.core.estimators.combined import FusedAudioEstimator, FusedVisualEstimator
from slfm_ros.core.estimators.registry import (
    GEOMETRY_AWARE_AUDIO,
    make_audio_estimator,
    make_visual_estimator,
)
from slfm_ros.core.events import PipelineEvent
from slfm_ros.core.geometry.interaural import (
    FreeFieldPair,
    InterauralGeometry,
    SphericalHeadGeometry,
)
from slfm_ros.core.geometry.measured_head import measured_receiver
from slfm_ros.core.geometry.receiver_calibration import CalibratedReceiver
from slfm_ros.core.streaming.config import PipelineConfig

CARD_FILE = "card.yaml"
# The model a folder of several models stands for.
DEFAULT_MODEL = "default"


@dataclass
class EstimatorSet:
    """The estimators in use and how they were chosen.

    audio_sample_rate: rate (Hz) audio is resampled to before ``audio``; 0 = keep the input's.
    backend:           inference backend of learned models, "classic" for classical ones.
    description:       one line for logs and /diagnostics.
    fallback_reason:   why the learned models are not used although asked for ("" if used).
    backend_skipped:   better inference backends passed over and why ("" if none).
    backend_notes:     how the inference backend was set up (export, engine cache).
    events:            WARN/ERROR events raised while building.
    """

    audio: AudioEstimator
    visual: VisualEstimator
    audio_sample_rate: int
    backend: str
    description: str
    fallback_reason: str = ""
    backend_skipped: str = ""
    backend_notes: str = ""
    events: list[PipelineEvent] = field(default_factory=list)


def calibrated_receiver(model_dir: Path) -> CalibratedReceiver | None:
    """The receiver ``slfm train adapt`` calibrated for the model in ``model_dir`` (its card's
    ``model_config.audio.calibrated_receiver``), None when it has none."""
    from slfm_ros.core.backends.model_source import read_model_source

    audio = read_model_source(model_dir).config.audio
    found: CalibratedReceiver | None = getattr(audio, "calibrated_receiver", None)
    return found


def receiver_geometry(config: PipelineConfig) -> InterauralGeometry:
    """The interaural model named by ``config.receiver``; ``calibrated`` reads it from the
    model's card (ConfigError when the model has none), ``measured`` from the SOFA file
    ``hrtf_path`` (ConfigError when it cannot be read)."""
    if config.receiver == "measured":
        try:
            # The node analyses up to half its estimator rate; so does the curve.
            return measured_receiver(config.hrtf_path, 0.5 * config.estimator_sample_rate)
        except InputFormatError as exc:
            raise ConfigError(f"receiver: measured: {exc}") from exc
    if config.receiver == "calibrated":
        model_dir = Path(config.model_dir) if config.model_dir else default_model_dir()
        try:
            found = calibrated_receiver(model_dir)
        except ModelError as exc:
            raise ConfigError(f"receiver: calibrated needs a readable model: {exc}") from exc
        if found is None:
            raise ConfigError(
                f"receiver: calibrated, but {model_dir} holds no calibrated receiver (models "
                "adapted by `slfm train adapt` on turning recordings do); set receiver to "
                "free_field or spherical_head, or model_dir to an adapted model"
            )
        return found.geometry()
    if config.receiver == "spherical_head":
        return SphericalHeadGeometry(radius_m=config.head_radius_m)
    return FreeFieldPair(spacing_m=config.mic_spacing_m)


def build_classic(config: PipelineConfig) -> tuple[AudioEstimator, VisualEstimator]:
    """The classical estimators named by ``config.audio_estimator`` / ``visual_estimator``."""
    audio_params: dict[str, object] = {"silence_dbfs": config.silence_threshold_dbfs}
    if config.audio_estimator in GEOMETRY_AWARE_AUDIO:
        audio_params["geometry"] = receiver_geometry(config)
    audio = make_audio_estimator(config.audio_estimator, **audio_params)
    visual = make_visual_estimator(
        config.visual_estimator,
        hfov=math.radians(config.hfov_deg),
        pitch=math.radians(config.camera_pitch_deg),
    )
    return audio, visual


def _classic_set(config: PipelineConfig, fallback_reason: str = "") -> EstimatorSet:
    audio, visual = build_classic(config)
    return EstimatorSet(
        audio=audio,
        visual=visual,
        audio_sample_rate=config.estimator_sample_rate,
        backend="classic",
        description=f"classic: {config.audio_estimator} + {config.visual_estimator}",
        fallback_reason=fallback_reason,
    )


def _fused(config: PipelineConfig, learned: EstimatorSet) -> EstimatorSet:
    """``learned`` with each estimator fused with its classical counterpart."""
    classic_audio, classic_visual = build_classic(config)
    learned.audio = FusedAudioEstimator(learned.audio, classic_audio)
    learned.visual = FusedVisualEstimator(learned.visual, classic_visual)
    learned.description = (
        f"auto: {learned.description} fused with {config.audio_estimator} + "
        f"{config.visual_estimator}"
    )
    return learned


def model_in_folder(folder: Path) -> Path | None:
    """The model ``folder`` stands for: itself when it has a card, else its ``default``
    subfolder when that has one, else its only subfolder with a card; None when it holds no
    model. ModelError when it holds several and none is named ``default``."""
    if (folder / CARD_FILE).is_file():
        return folder
    if (folder / DEFAULT_MODEL / CARD_FILE).is_file():
        return folder / DEFAULT_MODEL
    models = sorted(p.parent for p in folder.glob(f"*/{CARD_FILE}"))
    if len(models) > 1:
        names = ", ".join(m.name for m in models)
        raise ModelError(
            f"{folder} holds several models ({names}) and none named {DEFAULT_MODEL!r}: set "
            "model_dir to one"
        )
    return models[0] if models else None


def default_model_dir() -> Path:
    """The model shipped with the package (see ``model_in_folder``) in ``models/`` of a source
    checkout, else in ``share/slfm_ros/models`` of an installed package."""
    source = Path(__file__).resolve().parents[3] / "models"
    candidates = [source]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("slfm_ros")) / "models")
    except Exception:  # no ament index or package not installed: the source folder only
        pass
    for folder in candidates:
        model = model_in_folder(folder)
        if model is not None:
            return model
    raise ModelError(
        f"no shipped model found in {' or '.join(str(c) for c in candidates)}: set model_dir "
        "to a trained model folder"
    )


def _slfm_set(config: PipelineConfig) -> EstimatorSet:
    model_dir = Path(config.model_dir) if config.model_dir else default_model_dir()
    if not (model_dir / CARD_FILE).is_file():
        # Checked before importing torch, so a missing model costs no start-up time.
        raise ModelError(
            f"{model_dir} has no {CARD_FILE}: expected a model folder written by training "
            "(card.yaml + weights.pt)"
        )
    from slfm_ros.core.backends import BackendOptions, create_runners
    from slfm_ros.core.backends.model_source import read_model_source, require_trained

    options = BackendOptions(
        model_file_path=config.model_file_path,
        engine_file_path=config.engine_file_path,
        force_engine_update=config.force_engine_update,
        enable_fp16=config.enable_fp16,
        max_workspace_size=config.max_workspace_size,
        max_batch_size=config.max_batch_size,
        intra_op_threads=config.inference_threads,
    )
    from slfm_ros.core.estimators.learned import learned_audio_estimator, learned_visual_estimator

    source = read_model_source(model_dir)
    for network in ("audio", "visual"):
        require_trained(source, network)
    runners = create_runners(
        model_dir,
        config.backend,
        config.inference_device,
        options,
        camera=(config.hfov_deg, config.camera_pitch_deg),
    )
    geometry = receiver_geometry(config) if config.model_uses_receiver else None
    events: list[PipelineEvent] = []
    # learned_audio_estimator leaves the geometry out for such a network; the user who set
    # the receiver should hear that it is not used.
    learned_with_receiver = getattr(runners.config.audio, "receiver_input", True)
    if config.model_uses_receiver and not learned_with_receiver:
        events.append(
            PipelineEvent.warn(
                "estimator",
                "model_without_receiver",
                f"{model_dir} learned its audio network without the receiver's geometry "
                "(audio.receiver_input: false): receiver / mic_spacing_m / head_radius_m are "
                "not passed to it",
            )
        )
    calibrated = getattr(runners.config.audio, "calibrated_receiver", None)
    if calibrated is not None and config.receiver != "calibrated" and learned_with_receiver:
        described = ", ".join(f"{k}: {v}" for k, v in calibrated.node_parameters().items())
        events.append(
            PipelineEvent.warn(
                "estimator",
                "model_calibrated_receiver",
                f"{model_dir} calibrated its receiver on the robot's recordings ({described}) "
                f"but receiver is {config.receiver!r}: set receiver: calibrated to use it",
            )
        )
    audio = learned_audio_estimator(
        runners.config, runners.audio, geometry, silence_dbfs=config.silence_threshold_dbfs
    )
    visual = learned_visual_estimator(runners.config, runners.visual)
    return EstimatorSet(
        events=events,
        audio=audio,
        visual=visual,
        audio_sample_rate=int(runners.config.audio.sample_rate),
        backend=runners.backend_name,
        description=f"slfm on {runners.description}: {model_dir}",
        backend_skipped=runners.skipped_summary(),
        backend_notes="; ".join(runners.notes),
    )


def build_estimators(
    config: PipelineConfig,
    audio: AudioEstimator | None = None,
    visual: VisualEstimator | None = None,
) -> EstimatorSet:
    """Estimators for ``config``; ``audio`` / ``visual`` given here replace the configured ones.

    Classical estimators with a wrong name or parameter raise ConfigError (a configuration
    mistake, not a missing file); learned ones fall back as the module doc says.
    """
    if config.estimator in ("slfm", "auto") and (audio is None or visual is None):
        try:
            chosen = _slfm_set(config)
            if config.estimator == "auto":
                chosen = _fused(config, chosen)
        except (SlfmError, ImportError, OSError) as err:
            where = config.model_dir or "the shipped model folder"
            reason = f"{type(err).__name__}: {err}"
            chosen = _classic_set(config, fallback_reason=reason)
            chosen.events.append(
                PipelineEvent.warn(
                    "estimator",
                    "model_fallback",
                    f"learned SLfM models from {where} unusable ({reason}); falling back to "
                    f"the classical estimators ({config.audio_estimator} + "
                    f"{config.visual_estimator}); fix model_dir or set estimator: classic",
                )
            )
    elif audio is None or visual is None:
        chosen = _classic_set(config)
    else:
        chosen = EstimatorSet(
            audio=audio,
            visual=visual,
            audio_sample_rate=config.estimator_sample_rate,
            backend="custom",
            description=f"custom: {audio.name} + {visual.name}",
        )
        return chosen
    if audio is not None:
        chosen.audio = audio
    if visual is not None:
        chosen.visual = visual
    return chosen
