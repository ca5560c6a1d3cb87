"""``slfm demo``: bag, replay, table and plots (offline and short here; the live path is
tested in test/bags/test_replay.py)."""

from __future__ import annotations

import argparse
import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

pytest.importorskip("rosbags")
pytest.importorskip("audio_common_msgs")

from slfm_ros.cli import demo_cmd
from slfm_ros.core.errors import ConfigError


def run_demo(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    demo_cmd.add_arguments(parser)
    out = io.StringIO()
    with redirect_stdout(out):
        code = demo_cmd.run(parser.parse_args(argv))
    return code, out.getvalue()


def test_demo_prints_the_table_and_writes_the_plots(tmp_path: Path) -> None:
    argv = ["--out", str(tmp_path), "--seconds", "3", "--mode", "offline"]
    code, text = run_demo(argv)
    assert code == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["bag"] == str(tmp_path / "turning-speaker-bag")
    assert "azimuth MAE (front-folded)" in text and "camera yaw MAE" in text
    assert report["estimators"] in text
    # Without a usable learned model the demo says that the classical fallback ran.
    if report["fallback_reason"]:
        assert "NOT USED (classical fallback)" in text and "NOTE: the learned SLfM model" in text
    else:
        assert "NOT USED" not in text
    for name in ("azimuth.png", "yaw.png", "errors.png", "summary.md"):
        assert (tmp_path / "report" / name).is_file()
    # The classical estimators on the same bag stand in their own column.
    classic = json.loads((tmp_path / "report-classic" / "report.json").read_text())
    assert classic["bag"] == report["bag"]
    assert classic["estimators"].startswith("classic:")
    lines = text.splitlines()
    header = lines[next(i for i, line in enumerate(lines) if "[4/4]" in line) + 2]
    assert "classical" in header
    assert classic["estimators"] in text
    # A rerun replaces its own bag.
    assert run_demo(argv)[0] == 0


def test_demo_never_replaces_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "turning-speaker-bag").mkdir()
    with pytest.raises(ConfigError, match="not written by slfm demo"):
        run_demo(["--out", str(tmp_path), "--seconds", "3", "--mode", "offline"])
