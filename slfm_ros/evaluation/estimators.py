"""Build the estimators an evaluation runs: classical ones by name, learned ones from a model.

Audio names: "classic" (= the node's classical default, "gcc_phat"), "gcc_phat",
"gcc_phat_onset", "iid", "srp_phat", "music", "slfm", "auto".
Visual kinds: "classic" (``feature`` "orb" or "sift" feature matching, or "cylinder", the dense
cylindrical correlation), "slfm", "auto".

"auto" is what ``estimator: auto`` runs on the robot: the learned estimate and the classical one
(GCC-PHAT; the ``feature`` matcher) fused per clip or pair by their confidences.
The learned audio model of the compact family is told the receiver's largest interaural delay
from the same geometry the classical estimators get, as the node tells it from its parameters.

"slfm" loads the model through ``slfm_ros.core.backends.create_runners``, the same inference
path the node and the benchmark use, on the ``backend`` asked for ("auto" picks the best one
present). Without a model folder it uses the shipped default model. A missing or broken model
fails with ModelError; an evaluation never silently falls back to a classical estimator.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from slfm_ros.core.errors import ConfigError, ModelError
from slfm_ros.core.estimators.base import AudioEstimator, VisualEstimator
from slfm_ros.core.geometry.interaural import InterauralGeometry
from slfm_ros.core.streaming.config import CLASSIC_AUDIO

if TYPE_CHECKING:
    from slfm_ros.core.backends import Runners

AUDIO_CHOICES = (
    "classic",
    "gcc_phat",
    "gcc_phat_onset",
    "iid",
    "srp_phat",
    "music",
    "slfm",
    "auto",
)
VISUAL_CHOICES = ("classic", "slfm", "auto")
FEATURE_CHOICES = ("orb", "sift", "cylinder")
BACKEND_CHOICES = ("auto", "tensorrt", "onnxruntime", "torch")

# One backend per (model folder, backend name): an evaluation of both networks loads the model
# once, and a TensorRT engine is built once per process.
_RUNNERS: dict[tuple[Path, str, tuple[float, float] | None], Runners] = {}


def resolve_model_dir(model: str | Path | None) -> Path:
    """``model`` as a folder, or the shipped default model when it is None."""
    if model is None:
        from slfm_ros.core.streaming.estimator_setup import default_model_dir

        try:
            return default_model_dir()
        except ModelError as exc:
            raise ModelError(f"no --model given, and the default failed: {exc}") from exc
    path = Path(model)
    if not path.is_dir():
        raise ModelError(f"model folder {path} does not exist; pass the folder the trainer wrote")
    return path


def learned_runners(
    model: str | Path | None,
    backend: str = "auto",
    network: str | None = None,
    camera: tuple[float, float] | None = None,
) -> Runners:
    """The model's networks on ``backend``, cached per model folder, backend and the camera
    the visual network follows (one set of runners serves both networks where it can).

    network: "audio" or "visual" to refuse a model whose card says it never trained that one.
    camera:  (horizontal FOV, pitch) in degrees of the images' camera (``follow_camera``);
             None = any (the audio network does not depend on it).
    """
    from slfm_ros.core.backends.model_source import read_model_source, require_trained

    if backend not in BACKEND_CHOICES:
        raise ConfigError(f"backend must be one of {BACKEND_CHOICES}, got {backend!r}")
    path = resolve_model_dir(model).resolve()
    source = read_model_source(path, camera)
    if network is not None:
        require_trained(source, network)
    if camera is None:
        for (cached_path, cached_backend, _), runners in _RUNNERS.items():
            if (cached_path, cached_backend) == (path, backend):
                return runners
    # source.camera is None where the camera changes nothing (the card's own, or a family
    # whose visual network takes images as they come).
    key = (path, backend, source.camera)
    if key not in _RUNNERS:
        from slfm_ros.core.backends import create_runners

        _RUNNERS[key] = create_runners(path, backend=backend, camera=source.camera)
    return _RUNNERS[key]


def build_audio_estimator(
    name: str,
    geometry: InterauralGeometry,
    model: str | Path | None = None,
    backend: str = "auto",
) -> AudioEstimator:
    """Audio estimator ``name`` (see AUDIO_CHOICES) for a receiver with ``geometry``."""
    if name not in AUDIO_CHOICES:
        raise ConfigError(f"audio estimator must be one of {AUDIO_CHOICES}, got {name!r}")
    if name in ("slfm", "auto"):
        from slfm_ros.core.estimators.learned import learned_audio_estimator

        runners = learned_runners(model, backend, "audio")
        learned = learned_audio_estimator(runners.config, runners.audio, geometry)
        if name == "slfm":
            return learned
        from slfm_ros.core.estimators.combined import FusedAudioEstimator

        return FusedAudioEstimator(learned, build_audio_estimator(CLASSIC_AUDIO, geometry))
    from slfm_ros.core.estimators.registry import GEOMETRY_AWARE_AUDIO, make_audio_estimator

    name = CLASSIC_AUDIO if name == "classic" else name
    params = {"geometry": geometry} if name in GEOMETRY_AWARE_AUDIO else {}
    return make_audio_estimator(name, **params)


def build_visual_estimator(
    kind: str,
    feature: str = "orb",
    hfov: float = math.radians(60.0),
    pitch: float = math.radians(-22.5),
    model: str | Path | None = None,
    backend: str = "auto",
) -> VisualEstimator:
    """Visual estimator: ``kind`` "classic" (``feature`` orb/sift/cylinder) or "slfm"."""
    if kind not in VISUAL_CHOICES:
        raise ConfigError(f"visual estimator must be one of {VISUAL_CHOICES}, got {kind!r}")
    if kind in ("slfm", "auto"):
        from slfm_ros.core.estimators.learned import learned_visual_estimator

        camera = (math.degrees(hfov), math.degrees(pitch))
        runners = learned_runners(model, backend, "visual", camera)
        learned = learned_visual_estimator(runners.config, runners.visual)
        if kind == "slfm":
            return learned
        from slfm_ros.core.estimators.combined import FusedVisualEstimator

        classic = build_visual_estimator("classic", feature, hfov, pitch)
        return FusedVisualEstimator(learned, classic)
    if feature not in FEATURE_CHOICES:
        raise ConfigError(f"visual feature must be one of {FEATURE_CHOICES}, got {feature!r}")
    from slfm_ros.core.estimators.registry import make_visual_estimator

    return make_visual_estimator(feature, hfov=hfov, pitch=pitch)


def backend_label(model: str | Path | None, backend: str = "auto") -> str:
    """'onnxruntime (cpu, fp32)' etc. of a learned model already built by this module."""
    return learned_runners(model, backend).description


def visual_label(kind: str, feature: str) -> str:
    """Name of a visual estimator for reports: "orb", "sift", "cylinder", "slfm" or
    "auto (slfm + orb)"."""
    if kind == "auto":
        return f"auto (slfm + {feature})"
    return "slfm" if kind == "slfm" else feature


def audio_label(name: str) -> str:
    return CLASSIC_AUDIO if name == "classic" else name
