"""Name -> factory registries of the classical estimators.

Audio: "gcc_phat" (GccPhatAzimuth), "gcc_phat_onset" (the same, onset-weighted: trusts the
direct sound over a room's reflections), "iid" (IidLeftRight), "srp_phat" (pyroomacoustics
SRP-PHAT), "music" (pyroomacoustics NormMUSIC: MUSIC with per-frequency normalisation, which
is far less prone to single-bin outliers than plain MUSIC; pass algorithm="MUSIC" for the plain
one).
Visual: "orb", "sift" (FeatureMatchingYaw: feature matching + rotation-only homography),
"cylinder" (CylinderNccYaw: dense NCC of cylindrical reprojections over all yaw shifts).
Parameters are checked against the estimator's constructor, so a misspelt key fails with the
list of accepted ones instead of a bare TypeError.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.estimators.base import AudioEstimator, VisualEstimator
from slfm_ros.core.estimators.gcc_phat import ONSET_SETTINGS, GccPhatAzimuth
from slfm_ros.core.estimators.iid_lr import IidLeftRight
from slfm_ros.core.estimators.srp import PyroomacousticsDoa


def _check_params(kind: str, name: str, target: Callable[..., Any], params: Mapping) -> None:
    signature = inspect.signature(target)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return
    accepted = set(signature.parameters) - {"self"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ConfigError(
            f"{kind} estimator {name!r} has no parameter(s) {', '.join(unknown)}: "
            f"accepted are {', '.join(sorted(accepted))}"
        )


def _feature_yaw(detector: str) -> Callable[..., VisualEstimator]:
    def factory(**params: Any) -> VisualEstimator:
        # Imported here: OpenCV is only needed when a visual estimator is asked for.
        from slfm_ros.core.estimators.feature_yaw import FeatureMatchingYaw

        _check_params("visual", detector, partial(FeatureMatchingYaw, detector=detector), params)
        return FeatureMatchingYaw(detector=detector, **params)

    factory.__name__ = f"feature_yaw_{detector}"
    return factory


AUDIO_ESTIMATORS: Mapping[str, Callable[..., AudioEstimator]] = {
    "gcc_phat": GccPhatAzimuth,
    "gcc_phat_onset": partial(GccPhatAzimuth, **ONSET_SETTINGS),
    "iid": IidLeftRight,
    "srp_phat": partial(PyroomacousticsDoa, algorithm="SRP"),
    "music": partial(PyroomacousticsDoa, algorithm="NormMUSIC"),
}


# Estimators that map a delay to an angle and therefore take the receiver geometry.
GEOMETRY_AWARE_AUDIO = ("gcc_phat", "gcc_phat_onset", "srp_phat", "music")


def _cylinder_yaw(**params: Any) -> VisualEstimator:
    # Imported here: OpenCV is only needed when a visual estimator is asked for.
    from slfm_ros.core.estimators.cylinder_yaw import CylinderNccYaw

    _check_params("visual", "cylinder", CylinderNccYaw, params)
    return CylinderNccYaw(**params)


VISUAL_ESTIMATORS: Mapping[str, Callable[..., VisualEstimator]] = {
    "orb": _feature_yaw("orb"),
    "sift": _feature_yaw("sift"),
    "cylinder": _cylinder_yaw,
}


def _lookup(kind: str, registry: Mapping[str, Callable[..., Any]], name: str) -> Callable[..., Any]:
    factory = registry.get(name)
    if factory is None:
        known = ", ".join(sorted(registry))
        raise ConfigError(f"unknown {kind} estimator {name!r}: expected one of {known}")
    return factory


def make_audio_estimator(name: str, **params: Any) -> AudioEstimator:
    """Build the audio estimator registered as ``name`` with keyword ``params``."""
    factory = _lookup("audio", AUDIO_ESTIMATORS, name)
    _check_params("audio", name, factory, params)
    return factory(**params)


def make_visual_estimator(name: str, **params: Any) -> VisualEstimator:
    """Build the visual estimator registered as ``name`` with keyword ``params``."""
    return _lookup("visual", VISUAL_ESTIMATORS, name)(**params)
