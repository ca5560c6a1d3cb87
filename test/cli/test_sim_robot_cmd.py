"""`slfm sim-robot`: options and name:=value assignments become the node's parameters."""

from __future__ import annotations

import shlex

import pytest

from slfm_ros.cli.main import main
from slfm_ros.nodes.launch_description import ros_arg_value


def test_dry_run_prints_the_node_command(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "sim-robot",
            "--dry-run",
            "--source-azimuth",
            "-30",
            "--receiver",
            "spherical_head",
            "--namespace",
            "robot1",
            "fps:=5",
            "room:=anechoic",
        ]
    )
    assert code == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    cmd = shlex.split(line)
    assert cmd[1:3] == ["-m", "slfm_ros.nodes.sim_robot_node"]
    assert "__ns:=/robot1" in cmd
    params = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-p"]
    assert params == [
        "talker_azimuth_deg:=-30.0",
        'receiver:="spherical_head"',
        "fps:=5.0",
        'room:="anechoic"',
    ]


def test_bad_parameters_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim-robot", "--dry-run", "speed:=3"]) == 2
    assert "no parameter 'speed'" in capsys.readouterr().err
    assert main(["sim-robot", "--dry-run", "fps:=fast"]) == 2
    assert "fps" in capsys.readouterr().err
    assert main(["sim-robot", "--list-params"]) == 0
    assert "talker_azimuth_deg" in capsys.readouterr().out


def test_parameter_values_are_plain_yaml_scalars() -> None:
    values = (1.0, 1e-9, -2.5, float("inf"), 3, True, "1.0", [1.0, 2.0])
    texts = [ros_arg_value(v) for v in values]  # type: ignore[arg-type]
    assert texts == ["1.0", "1.0e-09", "-2.5", ".inf", "3", "true", '"1.0"', "[1.0, 2.0]"]
