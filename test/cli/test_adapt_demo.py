"""`slfm adapt-demo`: turning bags without ground truth, adapt, and the before/after table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("audio_common_msgs")
pytest.importorskip("rosbags")

from slfm_ros.cli.adapt_demo_cmd import (
    ADAPT_SCENARIOS,
    EVAL_SCENARIOS,
    ROWS,
    true_geometry,
)
from slfm_ros.cli.main import main
from slfm_ros.core.geometry.interaural import FreeFieldPair
from slfm_ros.core.geometry.receiver_calibration import CalibratedReceiver


def test_true_geometry_describes_the_receiver_to_the_node() -> None:
    assert true_geometry("stereo_array:0.3") == {"receiver": "free_field", "mic_spacing_m": 0.3}
    assert true_geometry("spherical_head:0.07") == {
        "receiver": "spherical_head",
        "head_radius_m": 0.07,
    }
    # A measured head is described by its own HRIRs' delay curve.
    assert true_geometry("sofa:/some/head.sofa") == {
        "receiver": "measured",
        "hrtf_path": "/some/head.sofa",
    }


def test_adapt_demo_records_adapts_and_scores_before_and_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLFM_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    args = ["adapt-demo", "--seconds", "6", "--out", str(out), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    scores = summary["azimuth_mae_deg"]
    assert list(scores) == list(EVAL_SCENARIOS)
    for scenario in EVAL_SCENARIOS:
        assert set(scores[scenario]) == set(ROWS)
        assert all(0.0 <= v <= 90.0 for v in scores[scenario].values())
    # adapt calibrated the 0.30 m pair from the turning bags; the after rows use it.
    found = CalibratedReceiver.from_dict(summary["calibrated_receiver"])
    heard = np.radians(np.linspace(-60, 60, 121))
    error = found.geometry().itd(heard) - FreeFieldPair(spacing_m=0.30).itd(heard)
    assert np.abs(error).max() < 50e-6
    assert (out / "adapt_demo.png").stat().st_size > 0
    # The adapting bags hold sensor topics only; the adapted model's card names them.
    for scenario in ADAPT_SCENARIOS:
        metadata = (out / "bags" / f"adapt-{scenario}" / "metadata.yaml").read_text()
        assert "/ground_truth" not in metadata
    card = (out / "adapted" / "card.yaml").read_text()
    assert "adapt-turning-speaker" in card
    # A second run reuses the bags and the adapted model: nothing is overwritten.
    stamp = (out / "adapted" / "card.yaml").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "adapted" / "card.yaml").stat().st_mtime_ns == stamp
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["azimuth_mae_deg"] == scores
    # The folder was made for this receiver: another one is refused and nothing is touched.
    other = ["adapt-demo", "--seconds", "6", "--out", str(out), "--receiver", "spherical_head:0.12"]
    assert main(other) == 2
    assert "receiver=stereo_array:0.30" in capsys.readouterr().err
    assert (out / "adapted" / "card.yaml").stat().st_mtime_ns == stamp
