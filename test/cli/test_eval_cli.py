"""``slfm eval``: JSON and table output on tiny data, and every input error path."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import h5py
import numpy as np
import pytest
import soundfile as sf

from slfm_ros.cli.main import main

if TYPE_CHECKING:
    from slfm_ros.core.sim.scene import SceneConfig

SR = 16000
KEMAR_LARGE = Path(__file__).resolve().parents[1] / "data" / "MIT_KEMAR_large_pinna.sofa"


@pytest.fixture(scope="module")
def data(
    tmp_path_factory: pytest.TempPathFactory, clean_speech_scene: Callable[..., SceneConfig]
) -> dict[str, Path]:
    """Panoramas, a SOFA head, recordings, BRIRs and a simulated split, all tiny."""
    from slfm_ros.core.sim.dataset import write_dataset
    from slfm_ros.core.sim.panoramas import ProceduralPanoramas
    from slfm_ros.core.sim.receivers import SphericalHead
    from slfm_ros.core.sim.sofa import SofaHrirSet, write_sofa
    from slfm_ros.core.sim.sources import speech_like

    root = tmp_path_factory.mktemp("evaldata")
    panos = root / "panos"
    panos.mkdir()
    cv2.imwrite(
        str(panos / "p0.jpg"),
        cv2.cvtColor(ProceduralPanoramas(1024, seed=1).panorama(0, "test"), cv2.COLOR_RGB2BGR),
    )
    head = SphericalHead()
    az = np.radians(np.arange(0.0, 360.0, 10.0))
    irs = head.hrirs(az, np.zeros_like(az), SR)
    positions = np.stack([az, np.zeros_like(az), np.ones_like(az)], axis=1)
    write_sofa(root / "head.sofa", SofaHrirSet(np.transpose(irs, (0, 2, 1)), positions, float(SR)))
    sources = root / "sources"
    sources.mkdir()
    sf.write(sources / "talk.wav", speech_like(2.0, SR, np.random.default_rng(0)), SR)
    brirs = root / "brirs"
    brirs.mkdir()
    rows = ["file,azimuth_deg"]
    for deg in (-40, 50):
        sf.write(brirs / f"b{deg}.wav", head.hrir(math.radians(deg), 0.0, SR), SR)
        rows.append(f"b{deg}.wav,{deg}")
    (brirs / "brirs.csv").write_text("\n".join(rows) + "\n")
    cfg = clean_speech_scene(
        num_views=2,
        max_turn_deg=30.0,
        azimuth_deg=(-180.0, 180.0),
        snr_db=(10.0, 40.0),
        clip_seconds=0.5,
    )
    write_dataset(cfg, root / "sim", 2, "test", seed=0, workers=1, progress=False)
    return {
        "panos": panos,
        "sofa": root / "head.sofa",
        "sources": sources,
        "brirs": brirs,
        "sim": root / "sim",
        "root": root,
    }


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], message: str) -> None:
    assert main(argv) != 0
    assert message in capsys.readouterr().err


def test_rotation_json_and_table(data: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "rotation", "--panoramas", str(data["panos"]), "--pairs-per-image", "4"]
    args += ["--estimator", "classic"]
    report = _json([*args, "--visual-estimator", "orb", "--seed", "2"], capsys)
    assert report["n"] == 4 and report["estimator"] == "orb"
    assert 0.0 <= report["yaw_valid_fraction"] <= 1.0
    assert report["yaw_mae_deg"] >= 0.0 and report["yaw_median_deg"] >= 0.0
    assert main(args) == 0
    table = capsys.readouterr().out
    # ORB by default, the classic estimator of slfm_node and slfm bag eval.
    assert "yaw_mae_deg" in table and "orb" in table


def test_audio_json_with_hrtf_and_brirs(
    data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    audio = ["eval", "audio", "--sources", str(data["sources"]), "--clip-seconds", "1.0"]
    hrtf = _json(
        [*audio, "--hrtf", str(data["sofa"]), "--clips-per-file", "4", "--estimator", "classic"],
        capsys,
    )
    assert hrtf["n"] == 4 and hrtf["estimator"] == "gcc_phat"
    assert hrtf["azimuth_mae_deg"] < 10.0 and hrtf["lr_accuracy"] == 1.0
    # Each direction's delay read off a measured head's HRIRs places sounds through that head
    # better than the sphere that fits it best.
    kemar = [*audio, "--hrtf", str(KEMAR_LARGE), "--clips-per-file", "4", "--estimator", "classic"]
    sphere = _json(kemar, capsys)
    measured = _json([*kemar, "--delays", "measured"], capsys)
    assert sphere["delays"] == "sphere" and measured["delays"] == "measured"
    assert measured["azimuth_mae_deg"] < sphere["azimuth_mae_deg"]
    brir = _json([*audio, "--brirs", str(data["brirs"]), "--estimator", "iid"], capsys)
    assert brir["n"] == 8 and brir["estimator"] == "iid" and brir["lr_accuracy"] == 1.0
    assert {"azimuth_mae_deg", "azimuth_median_deg"} <= set(brir)


def test_synthetic_prints_both_groups(
    data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "synthetic", "--data", str(data["sim"]), "--estimator", "classic"]
    report = _json(args, capsys)
    assert report["n"] == 2 and report["yaw_n"] == 2
    assert report["visual_estimator"] == "orb"
    for key in (
        "azimuth_mae_deg",
        "azimuth_median_deg",
        "lr_accuracy",
        "yaw_mae_deg",
        "yaw_median_deg",
    ):
        assert key in report


def test_the_shipped_model_is_the_default(
    data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(["eval", "synthetic", "--data", str(data["sim"])], capsys)
    assert report["audio_estimator"] == "auto" and report["visual_estimator"].startswith("auto")
    assert report["audio_n"] >= 1 and report["yaw_n"] == 2


def test_error_paths_exit_non_zero_with_a_message(
    data: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = str(tmp_path / "missing")
    _fails(["eval", "rotation", "--panoramas", missing], capsys, "does not exist")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pano.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    _fails(["eval", "rotation", "--panoramas", str(broken)], capsys, "cannot be decoded")
    _fails(
        ["eval", "audio", "--hrtf", str(data["sofa"]), "--sources", missing],
        capsys,
        "does not exist",
    )
    sources = ["--sources", str(data["sources"])]
    _fails(["eval", "audio", "--hrtf", missing + ".sofa", *sources], capsys, "SOFA file not found")
    other = tmp_path / "room.sofa"
    other.write_bytes(data["sofa"].read_bytes())
    with h5py.File(other, "r+") as f:
        f.attrs["SOFAConventions"] = np.bytes_(b"GeneralFIR")
    _fails(
        ["eval", "audio", "--hrtf", str(other), *sources], capsys, "expected 'SimpleFreeFieldHRIR'"
    )
    mono = tmp_path / "mono_brirs"
    mono.mkdir()
    sf.write(mono / "m.wav", np.zeros(32, dtype=np.float32), SR)
    (mono / "brirs.csv").write_text("file,azimuth_deg\nm.wav,20\n")
    _fails(["eval", "audio", "--brirs", str(mono), *sources], capsys, "needs 2 (left, right)")
    unreadable = tmp_path / "bad_sources"
    unreadable.mkdir()
    (unreadable / "noise.wav").write_bytes(b"RIFF garbage")
    _fails(
        ["eval", "audio", "--hrtf", str(data["sofa"]), "--sources", str(unreadable)],
        capsys,
        "cannot read audio file",
    )
    _fails(
        ["eval", "audio", "--brirs", str(data["brirs"]), *sources, "--reverb", "room"],
        capsys,
        "--reverb applies to --hrtf only",
    )
    _fails(
        ["eval", "audio", "--brirs", str(data["brirs"]), *sources, "--delays", "measured"],
        capsys,
        "--delays applies to --hrtf only",
    )
    _fails(["eval", "synthetic", "--data", missing], capsys, "does not exist")
    _fails(
        ["eval", "synthetic", "--data", str(data["sim"]), "--estimator", "slfm", "--model"]
        + [missing],
        capsys,
        "does not exist",
    )
    _fails(
        [
            "eval",
            "rotation",
            "--panoramas",
            str(data["panos"]),
            "--estimator",
            "slfm",
            "--model",
            missing,
        ],
        capsys,
        "does not exist",
    )


def test_report_writes_its_files_and_rejects_bad_inputs(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    save_tiny_model: Callable[..., Path],
    clean_speech_scene: Callable[..., SceneConfig],
) -> None:
    import torch

    from slfm_ros.core.sim.dataset import write_dataset

    torch.set_num_threads(1)
    model = save_tiny_model(tmp_path / "model")
    scene = clean_speech_scene(
        num_views=2, max_turn_deg=30.0, azimuth_deg=(-45.0, 45.0), snr_db=(10.0, 40.0)
    )
    sim = tmp_path / "sim"
    write_dataset(scene, sim, 2, "test", seed=1, workers=1, progress=False)
    out = tmp_path / "report"
    argv = ["eval", "report", "--data", str(sim), "--model", str(model), "--backend", "torch"]
    argv += ["--compare", f"other={model}", "--baselines", "gcc_phat,orb", "--out", str(out)]
    report = _json(argv, capsys)
    assert [r["label"] for r in report["rows"]] == ["slfm", "other", "gcc_phat", "orb"]
    assert report["n"] == 2 and report["yaw_n"] == 2 and report["audio_n"] >= 2
    assert json.loads((out / "results.json").read_text()) == report
    assert report["command"].startswith(f"slfm eval report --data {sim} --model {model}")
    assert f"--compare other={model} --baselines gcc_phat,orb --out {out}" in report["command"]
    for row in report["rows"]:
        assert (row["azimuth_mae_deg"] is None) == (row["label"] == "orb")
        assert (row["yaw_mae_deg"] is None) == (row["label"] == "gcc_phat")
    assert main(argv) == 0
    assert capsys.readouterr().out == (out / "results.md").read_text()

    base = ["eval", "report", "--data", str(sim), "--model", str(model), "--out", str(out)]
    for extra, message in (
        (["--baselines", "gcc_phat,superglue"], "unknown baseline(s) superglue"),
        (["--compare", "supervised"], "--compare expects LABEL=DIR"),
        (["--compare", f"slfm={model}"], "used twice"),
        (["--limit", "0"], "--limit must be >= 1"),
    ):
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    missing = str(tmp_path / "missing")
    _fails(["eval", "report", "--data", str(sim), "--model", missing], capsys, "does not exist")
    _fails(["eval", "report", "--data", missing, "--model", str(model)], capsys, "does not exist")
    manifest = json.loads((sim / "manifest.json").read_text())
    (sim / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    _fails(["eval", "report", "--data", str(sim), "--model", str(model)], capsys, "incomplete")


def test_synthetic_table_says_what_it_counts_and_which_matcher_ran(
    data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "synthetic", "--data", str(data["sim"]), "--estimator", "classic"]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "n: samples scored; audio_n: clips scored" in table
    assert "yaw_n: view pairs scored" in table
    assert "visual_estimator orb = ORB feature matching" in table
    assert main([*args, "--visual-estimator", "sift", "--only", "rotation"]) == 0
    table = capsys.readouterr().out
    assert "visual_estimator sift = SIFT" in table and "use ORB" in table
