"""Build the estimators an evaluation runs: classical ones by name, learned ones from a model.

Audio names: "classic" (= "gcc_phat"), "gcc_phat", "iid", "srp_phat", "music", "slfm".
Visual kinds: "classic" (feature matching with ``visual_name`` "orb" or "sift"), "slfm".
"slfm" needs a model folder; a missing or broken model fails with ModelError, never silently
falls back to a classical estimator.
"""

from __future__ import annotations

import math
from pathlib import Path

from slfm_ros.core.errors import ConfigError, ModelError
from slfm_ros.core.estimators.base import AudioEstimator, VisualEstimator
from slfm_ros.core.geometry.interaural import InterauralGeometry

AUDIO_CHOICES = ("classic", "gcc_phat", "iid", "srp_phat", "music", "slfm")
VISUAL_CHOICES = ("classic", "slfm")
FEATURE_CHOICES = ("orb", "sift")
# Estimators that map a delay to an angle and therefore need the receiver geometry.
_GEOMETRY_AWARE = ("gcc_phat", "srp_phat", "music")


def _model_dir(model: str | Path | None) -> Path:
    if model is None:
        raise ConfigError("the slfm estimator needs a trained model: pass --model DIR")
    path = Path(model)
    if not path.is_dir():
        raise ModelError(f"model folder {path} does not exist; pass the folder the trainer wrote")
    return path


def build_audio_estimator(
    name: str, geometry: InterauralGeometry, model: str | Path | None = None
) -> AudioEstimator:
    """Audio estimator ``name`` (see AUDIO_CHOICES) for a receiver with ``geometry``."""
    if name not in AUDIO_CHOICES:
        raise ConfigError(f"audio estimator must be one of {AUDIO_CHOICES}, got {name!r}")
    if name == "slfm":
        path = _model_dir(model)
        try:
            from slfm_ros.core.estimators.slfm import SlfmAudioEstimator
        except ImportError as exc:
            raise ModelError(f"the slfm estimator cannot be loaded ({exc}); install torch") from exc
        return SlfmAudioEstimator.from_model_dir(path)
    from slfm_ros.core.estimators.registry import make_audio_estimator

    name = "gcc_phat" if name == "classic" else name
    params = {"geometry": geometry} if name in _GEOMETRY_AWARE else {}
    return make_audio_estimator(name, **params)


def build_visual_estimator(
    kind: str,
    feature: str = "orb",
    hfov: float = math.radians(60.0),
    pitch: float = math.radians(-22.5),
    model: str | Path | None = None,
) -> VisualEstimator:
    """Visual estimator: ``kind`` "classic" (``feature`` orb/sift) or "slfm" (``model``)."""
    if kind not in VISUAL_CHOICES:
        raise ConfigError(f"visual estimator must be one of {VISUAL_CHOICES}, got {kind!r}")
    if kind == "slfm":
        path = _model_dir(model)
        try:
            from slfm_ros.core.estimators.slfm import SlfmVisualEstimator
        except ImportError as exc:
            raise ModelError(f"the slfm estimator cannot be loaded ({exc}); install torch") from exc
        return SlfmVisualEstimator.from_model_dir(path)
    if feature not in FEATURE_CHOICES:
        raise ConfigError(f"visual feature must be one of {FEATURE_CHOICES}, got {feature!r}")
    from slfm_ros.core.estimators.registry import make_visual_estimator

    return make_visual_estimator(feature, hfov=hfov, pitch=pitch)


def visual_label(kind: str, feature: str) -> str:
    """Name of a visual estimator for reports: "orb", "sift" or "slfm"."""
    return "slfm" if kind == "slfm" else feature


def audio_label(name: str) -> str:
    return "gcc_phat" if name == "classic" else name
