from __future__ import annotations

import pytest

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.estimators.base import AudioEstimator
from slfm_ros.core.estimators.gcc_phat import GccPhatAzimuth
from slfm_ros.core.estimators.registry import (
    AUDIO_ESTIMATORS,
    VISUAL_ESTIMATORS,
    make_audio_estimator,
    make_visual_estimator,
)
from slfm_ros.core.estimators.srp import PyroomacousticsDoa
from slfm_ros.core.geometry.interaural import FreeFieldPair


def test_names() -> None:
    assert set(AUDIO_ESTIMATORS) == {"gcc_phat", "gcc_phat_onset", "iid", "srp_phat", "music"}
    assert set(VISUAL_ESTIMATORS) == {"orb", "sift", "cylinder"}


@pytest.mark.parametrize("name", ["gcc_phat", "gcc_phat_onset", "iid", "srp_phat", "music"])
def test_every_audio_name_builds(name: str) -> None:
    assert isinstance(make_audio_estimator(name), AudioEstimator)


def test_parameters_pass_through() -> None:
    estimator = make_audio_estimator("gcc_phat", geometry=FreeFieldPair(0.2), combine="vote")
    assert isinstance(estimator, GccPhatAzimuth)
    assert estimator.combine == "vote"
    srp = make_audio_estimator("srp_phat", spacing_m=0.1)
    assert isinstance(srp, PyroomacousticsDoa) and srp.algorithm == "SRP"
    assert srp.spacing_m == 0.1


def test_unknown_name_lists_known() -> None:
    with pytest.raises(ConfigError, match="gcc_phat, gcc_phat_onset, iid, music, srp_phat"):
        make_audio_estimator("beamformer")
    with pytest.raises(ConfigError, match="cylinder, orb, sift"):
        make_visual_estimator("akaze")


def test_unknown_parameter_lists_accepted() -> None:
    with pytest.raises(ConfigError, match=r"windw.*accepted are .*window"):
        make_audio_estimator("gcc_phat", windw=512)


def test_visual_factories_build_feature_matching() -> None:
    pytest.importorskip("cv2")
    try:
        from slfm_ros.core.estimators.feature_yaw import FeatureMatchingYaw
    except ModuleNotFoundError:
        pytest.skip("slfm_ros.core.estimators.feature_yaw is not present")
    estimator = make_visual_estimator("orb")
    assert isinstance(estimator, FeatureMatchingYaw)
    with pytest.raises(ConfigError, match="no parameter"):
        make_visual_estimator("sift", not_a_parameter=1)
