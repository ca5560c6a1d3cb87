"""The closed loop over real DDS: sim_robot, slfm_node and sound_follower as processes turn the
robot toward a talker behind it; `slfm follow-demo --json` reports it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("audio_common_msgs")

from slfm_ros.cli.main import main  # noqa: E402


def test_follow_demo_turns_to_a_talker_behind_the_robot(
    ros_env, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The room responses are rendered into this test's own cache.
    monkeypatch.setenv("SLFM_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code = main(
        ["follow-demo", "--source-azimuth", "150", "--seconds", "9", "--out", str(out), "--json"]
    )
    captured = capsys.readouterr()
    scores = json.loads(captured.out.strip().splitlines()[-1])
    assert list(scores)[:4] == [
        "time_to_face_s",
        "final_heading_error_deg",
        "first_turn_correct",
        "front_back_correct",
    ]
    assert code == 0, (scores, captured.err)
    assert scores["time_to_face_s"] <= 8.0 and scores["final_heading_error_deg"] <= 10.0
    assert scores["first_turn_correct"] and scores["front_back_correct"]
    # It decided front/back, then committed to the left (the short way to 150 deg).
    assert scores["first_commit_direction"] == "left"
    assert scores["front_back_decided_s"] <= scores["first_commit_s"]
    assert scores["sim_skipped_s"] is not None  # sim_robot reported its real-time status
    assert Path(scores["plot"]).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "follow_+150_stereo_array_seed0.json").read_text()) == scores
