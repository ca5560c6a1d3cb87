"""The shared launch description: which nodes, which parameters, which command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from slfm_ros.core.errors import ConfigError
from slfm_ros.nodes.launch_description import (
    LAUNCH_ARGS,
    dds_environment,
    default_params_file,
    node_command,
    plan_nodes,
)

REPO = Path(__file__).resolve().parents[2]


def test_defaults_start_all_three_nodes_with_the_package_yaml() -> None:
    plans = plan_nodes({})
    assert [p.name for p in plans] == ["mic_node", "camera_node", "slfm_node"]
    assert all(p.params_file == str(REPO / "config" / "slfm.yaml") for p in plans)
    assert all(p.overrides == {} and p.namespace == "" for p in plans)
    assert default_params_file() == str(REPO / "config" / "slfm.yaml")


def test_switches_overrides_and_namespace() -> None:
    plans = plan_nodes(
        {
            "use_mic": "false",
            "use_camera": "False",
            "namespace": "robot1/",
            "audio_topic": "ears/audio",
            "backend": "onnxruntime",
            "estimator": "classic",
        }
    )
    [slfm] = plans
    assert slfm.namespace == "/robot1"
    assert slfm.overrides == {
        "audio_topic": "ears/audio",
        "backend": "onnxruntime",
        "estimator": "classic",
    }
    mic = plan_nodes({"audio_topic": "ears/audio", "audio_info_topic": "ears/info"})[0]
    assert mic.overrides == {"audio_topic": "ears/audio", "info_topic": "ears/info"}


def test_bad_launch_arguments_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown launch argument"):
        plan_nodes({"use_speaker": "true"})
    with pytest.raises(ConfigError, match="expected true or false"):
        plan_nodes({"use_mic": "maybe"})
    with pytest.raises(ConfigError, match="backend"):
        plan_nodes({"backend": "cuda"})
    with pytest.raises(ConfigError, match="does not exist"):
        plan_nodes({"params_file": "/nonexistent.yaml"})


def test_node_command_line() -> None:
    [slfm] = plan_nodes(
        {"use_mic": "false", "use_camera": "false", "namespace": "ns", "model_dir": "/m 1"}
    )
    cmd = node_command(slfm, python="py")
    assert cmd[:6] == [
        "py",
        "-m",
        "slfm_ros.nodes.slfm_node",
        "--ros-args",
        "-r",
        "__node:=slfm_node",
    ]
    assert cmd[cmd.index("--params-file") + 1] == slfm.params_file
    assert "__ns:=/ns" in cmd
    assert 'model_dir:="/m 1"' in cmd


def test_launch_arguments_have_help() -> None:
    assert len({a.name for a in LAUNCH_ARGS}) == len(LAUNCH_ARGS)
    assert all(a.help for a in LAUNCH_ARGS)


def test_fastdds_profile_environment(tmp_path: Path) -> None:
    shipped = str(REPO / "config" / "fastdds_large_data.xml")
    var = "FASTDDS_DEFAULT_PROFILES_FILE"
    assert dds_environment("", {}) == {var: shipped}
    assert dds_environment("", {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}) == {var: shipped}
    jazzy = dds_environment("", {"ROS_DISTRO": "jazzy"})
    assert jazzy == {"FASTRTPS_DEFAULT_PROFILES_FILE": shipped}
    # The user's own profile, another RMW, or "none" win.
    assert dds_environment("", {"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}) == {}
    assert dds_environment("", {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}) == {}
    assert dds_environment("none", {}) == {}
    mine = tmp_path / "p.xml"
    mine.write_text("<profiles/>")
    assert dds_environment(str(mine), {}) == {var: str(mine)}
    with pytest.raises(ConfigError, match="does not exist"):
        dds_environment("/nonexistent.xml", {})
    plans = plan_nodes({"use_mic": "false"}, environ={})
    assert all(p.env == {var: shipped} for p in plans)


def test_use_follower_adds_the_sound_follower() -> None:
    plans = plan_nodes({"use_mic": "false", "use_camera": "false", "use_follower": "true"})
    assert [p.name for p in plans] == ["slfm_node", "sound_follower"]
    follower = plans[1]
    assert follower.module == "slfm_ros.nodes.sound_follower"
    assert follower.params_file == plans[0].params_file
    cmd = node_command(follower, python="py")
    assert cmd[:3] == ["py", "-m", "slfm_ros.nodes.sound_follower"]
    assert "__node:=sound_follower" in cmd
