"""`slfm bench`: the --json schema of the network benchmark (tiny iteration counts), the random
model note, and a short run of the pipeline benchmark against the real slfm_node."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

import pytest

from slfm_ros.bench.bench_model import DEFAULT_MODEL, smoke_config, write_random_model
from slfm_ros.bench.pipeline_bench import dropped_windows, rss_slope_mb_per_min
from slfm_ros.cli.main import main

REQUIRED = (
    "backend",
    "device",
    "audio_p50_ms",
    "audio_p99_ms",
    "visual_p50_ms",
    "visual_p99_ms",
    "audio_total_p50_ms",
    "visual_total_p50_ms",
    "audio_known_receiver_p50_ms",
    "audio_preprocess_p50_ms",
    "visual_preprocess_p50_ms",
    "audio_batch_per_s",
    "visual_batch_per_s",
    "skipped",
)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Runs `slfm bench ARGV` in this process: exit status, stdout, stderr."""
    code = main(["bench", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    return write_random_model(tmp_path_factory.mktemp("m") / "smoke", smoke_config())


def test_network_json_schema(
    model: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLFM_CACHE_DIR", str(tmp_path))
    argv = ["--model", str(model), "--json", "--iterations", "3", "--batch", "2"]
    code, out, _ = run_cli(argv, capsys)
    assert code == 0
    results = json.loads(out)
    assert isinstance(results, list) and results
    measured = {(r["backend"], r["device"]) for r in results}
    assert ("onnxruntime", "cpu") in measured and ("torch", "cpu") in measured
    for result in results:
        for key in REQUIRED:
            assert key in result, key
        for key in REQUIRED[2:-1]:
            assert math.isfinite(result[key]) and result[key] > 0, key
        assert result["audio_p99_ms"] >= result["audio_p50_ms"]
        assert result["model_name"] == "smoke" and result["model_note"] == ""
        skipped = {(s["backend"], s["device"]) for s in result["skipped"]}
        assert skipped | measured == {
            ("tensorrt", "cuda"),
            ("onnxruntime", "cuda"),
            ("torch", "cuda"),
            ("onnxruntime", "cpu"),
            ("torch", "cpu"),
        }
        assert all(s["reason"] for s in result["skipped"])
    if importlib.util.find_spec("tensorrt") is None:
        reasons = {s["backend"]: s["reason"] for s in results[0]["skipped"]}
        assert "tensorrt" in reasons["tensorrt"].lower()


def test_single_backend_and_random_model_note(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLFM_CACHE_DIR", str(tmp_path))
    argv = ["--backend", "torch", "--device", "cpu", "--iterations", "1", "--batch", "1", "--json"]
    code, out, err = run_cli(argv, capsys)
    assert code == 0
    results = json.loads(out)
    assert [(r["backend"], r["device"]) for r in results] == [("torch", "cpu")]
    if (DEFAULT_MODEL / "card.yaml").is_file():
        assert results[0]["model_note"] == ""
    else:
        assert "randomly initialised 'compact' model" in results[0]["model_note"]
        assert "randomly initialised" in err
        assert results[0]["model_name"] == "compact"


def test_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["--iterations", "0"], capsys)
    assert code == 2 and "iterations" in err


def test_pipeline_helpers() -> None:
    hop = 100
    assert dropped_windows([100, 200, 300, 400], 100, 400, hop) == 0
    assert dropped_windows([100, 300, 400], 50, 400, hop) == 1
    assert dropped_windows([], 100, 400, hop) == 4
    flat = [(float(t), 200.0) for t in range(10)]
    growing = [(float(t), 200.0 + t / 60.0) for t in range(10)]
    assert abs(rss_slope_mb_per_min(flat)) < 1e-9
    assert rss_slope_mb_per_min(growing) == pytest.approx(1.0)


def test_pipeline_benchmark_short_run(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rclpy")
    pytest.importorskip("audio_common_msgs")
    argv = ["pipeline", "--seconds", "2", "--warmup", "1.5", "--dds-profile", "large-data"]
    profile_before = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE")
    code, out, _ = run_cli([*argv, "--json"], capsys)
    report = json.loads(out)
    assert code == 0, report
    assert report["node_estimators"].startswith("classic")
    assert report["windows_received"] >= 1 and report["windows_expected"] >= 15
    assert 0 <= report["dropped_windows"] <= report["windows_expected"]
    assert report["windows_received"] + report["dropped_windows"] >= report["windows_expected"]
    assert 0 < report["latency_p50_ms"] <= report["latency_p99_ms"] < 2000
    assert report["cpu_node_percent"] > 0 and report["rss_end_mb"] > 50
    assert report["yaw_messages"] >= 1
    assert set(report["targets"]) == {"latency_p99_ms<=50", "dropped_windows==0"}
    assert report["dds_profile"] == "large-data"
    assert os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE") == profile_before
