"""``slfm simulate`` end to end: writes a dataset, resumes it, reports bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slfm_ros.cli.main import main
from slfm_ros.core.sim.dataset import ShardedDataset

TINY_YAML = """\
clip_seconds: 0.25
views: {num_views: 2}
image: {width: 48, height: 32, effects: {}}
panoramas: {width: 128}
room: {anechoic_probability: 1.0}
sources: {target_kinds: [noise], interferers: [0, 0]}
"""


def _args(config: Path, out: Path, *extra: str) -> list[str]:
    return [
        "simulate",
        "--config",
        str(config),
        "--out",
        str(out),
        "--num",
        "3",
        "--split",
        "val",
        "--seed",
        "4",
        "--shard-size",
        "2",
        "--no-progress",
        *extra,
    ]


def test_simulate_writes_and_resumes_a_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_YAML)
    out = tmp_path / "data"
    assert main(_args(config, out, "--workers", "1")) == 0
    assert "3 val samples in 2 shards" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["split"] == "val" and manifest["seed"] == 4
    data = ShardedDataset(out)
    assert len(data) == 3 and data[2].images.shape == (2, 32, 48, 3)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
    assert main(_args(config, out, "--workers", "1")) == 0  # complete: nothing to redo
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")} == stamps


def test_simulate_reports_bad_configs_and_conflicting_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("views: {num_view: 3}\n")
    assert main(_args(bad, tmp_path / "x")) == 2
    assert "unknown key(s) ['num_view']" in capsys.readouterr().err
    assert main(_args(tmp_path / "missing.yaml", tmp_path / "x")) == 2
    assert "does not exist" in capsys.readouterr().err
    good = tmp_path / "tiny.yaml"
    good.write_text(TINY_YAML)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    assert main(_args(good, busy, "--workers", "1")) == 2
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(_args(good, tmp_path / "y") + ["--split", "holdout"])


def test_simulate_without_config_renders_the_shipped_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from slfm_ros.cli.simulate import _default_config
    from slfm_ros.core.sim.scene import SceneConfig

    default = Path(__file__).resolve().parents[2] / "config" / "sim" / "default.yaml"
    assert Path(_default_config()) == default
    out = tmp_path / "data"
    argv = ["simulate", "--out", str(out), "--num", "1", "--split", "test", "--seed", "99"]
    assert main([*argv, "--workers", "1", "--no-progress"]) == 0
    assert "1 test samples in 1 shards" in capsys.readouterr().out
    assert ShardedDataset(out).config == SceneConfig.from_yaml(default)
