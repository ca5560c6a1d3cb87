"""config/slfm.yaml is exactly what the node specs render, and `slfm config` works."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from slfm_ros.cli import config_cmd
from slfm_ros.cli.main import main
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.streaming.config import PipelineConfig
from slfm_ros.nodes.launch_description import ALL_NODE_SPECS
from slfm_ros.nodes.slfm_params import SLFM_NODE

REPO = Path(__file__).resolve().parents[2]


def test_shipped_yaml_equals_the_rendered_specs() -> None:
    shipped = (REPO / "config" / "slfm.yaml").read_text()
    assert shipped == config_cmd.render(), (
        "config/slfm.yaml is out of date: run `slfm config dump -o config/slfm.yaml`"
    )


def test_yaml_holds_every_parameter_of_every_node_with_its_default() -> None:
    data = yaml.safe_load(config_cmd.render())
    assert set(data) == {f"/**/{s.name}" for s in ALL_NODE_SPECS}
    for spec in ALL_NODE_SPECS:
        assert data[f"/**/{spec.name}"]["ros__parameters"] == spec.defaults()


def test_every_pipeline_setting_is_a_node_parameter() -> None:
    params = SLFM_NODE.defaults()
    config = PipelineConfig.from_params(params)
    for name, value in vars(config).items():
        assert name in params, f"PipelineConfig.{name} has no slfm_node parameter"
        assert params[name] == value, f"default of {name} differs from the node parameter"


def test_dump_and_check_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.yaml"
    assert main(["config", "dump", "-o", str(out)]) == 0
    assert out.read_text() == config_cmd.render()
    assert main(["config", "check", str(out)]) == 0
    assert "ok (mic_node, camera_node, slfm_node, sound_follower)" in capsys.readouterr().out

    bad = tmp_path / "bad.yaml"
    bad.write_text("/**/slfm_node:\n  ros__parameters:\n    hop_s: fast\n")
    with pytest.raises(ConfigError, match="hop_s"):
        config_cmd.check_params_file(bad)
    assert main(["config", "check", str(bad)]) == 2
    bad.write_text("/**/slfm_node:\n  ros__parameters:\n    hop: 0.2\n")
    with pytest.raises(ConfigError, match="unknown parameter"):
        config_cmd.check_params_file(bad)
