"""sound_follower's parameters: their defaults are the controller's, and bad values are named."""

from __future__ import annotations

import pytest

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.follow.controller import FollowerConfig
from slfm_ros.nodes.follower_params import SOUND_FOLLOWER, follower_config


def test_parameter_defaults_are_the_controller_defaults() -> None:
    assert follower_config(SOUND_FOLLOWER.defaults()) == FollowerConfig()


def test_inconsistent_values_are_refused_with_their_name() -> None:
    values = SOUND_FOLLOWER.resolve({"deadband_deg": 9.0, "resume_deg": 6.0})
    with pytest.raises(ConfigError, match="deadband"):
        follower_config(values)
    with pytest.raises(ConfigError, match="max_probes"):
        SOUND_FOLLOWER.resolve({"max_probes": "many"})
