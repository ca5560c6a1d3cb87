"""``slfm eval report``: the table, the JSON and the plots agree with the protocol's scores."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import pytest
import torch

from slfm_ros.core.errors import ConfigError, DatasetError, ModelError
from slfm_ros.core.sim.dataset import ShardedDataset, write_dataset
from slfm_ros.core.sim.scene import SceneConfig
from slfm_ros.evaluation.estimators import (
    backend_label,
    build_audio_estimator,
    build_visual_estimator,
)
from slfm_ros.evaluation.report import (
    EMPTY_CELL,
    PLOT_FILES,
    RESULTS_JSON,
    RESULTS_MD,
    TABLE_COLUMNS,
    Report,
    markdown,
    parse_baselines,
    parse_compare,
    report_command,
    run_report,
    write_report,
)
from slfm_ros.evaluation.synthetic_eval import dataset_geometry, evaluate_synthetic

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data_dir(
    tmp_path_factory: pytest.TempPathFactory, clean_speech_scene: Callable[..., SceneConfig]
) -> Path:
    root = tmp_path_factory.mktemp("report_data")
    scene = clean_speech_scene(azimuth_deg=(-50.0, 50.0))
    write_dataset(scene, root, 2, "test", seed=4, workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def model_dir(
    tmp_path_factory: pytest.TempPathFactory, save_tiny_model: Callable[..., Path]
) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("report_model") / "model", seed=0)


@pytest.fixture(scope="module")
def report(data_dir: Path, model_dir: Path) -> Report:
    command = report_command(data_dir, model_dir, "torch", baselines="gcc_phat,iid,orb")
    return run_report(
        data_dir,
        model_dir,
        "torch",
        baselines=parse_baselines("gcc_phat,iid,orb"),
        command=command,
    )


def table(md: str) -> dict[str, list[str]]:
    """Rows of the first markdown table, by their first cell."""
    rows: dict[str, list[str]] = {}
    for line in md.split("## Published")[0].splitlines():
        if line.startswith("| ") and not line.startswith("| estimator"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def close(cell: str, value: Any, fmt: str) -> bool:
    if value is None:
        return cell == EMPTY_CELL
    return cell == fmt.format(value)


def test_rows_match_the_protocol_scores(
    report: Report, data_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    written = write_report(report, tmp_path)
    assert {p.name for p in written} == {RESULTS_MD, RESULTS_JSON, *PLOT_FILES}
    results = json.loads((tmp_path / RESULTS_JSON).read_text())
    rows = {r["label"]: r for r in results["rows"]}
    assert list(rows) == ["slfm", "gcc_phat", "iid", "orb"]
    assert results["n"] == 2 and results["split"] == "test"
    assert results["backend"] == backend_label(model_dir, "torch") == rows["slfm"]["backend"]

    # The same estimators run directly through evaluate_synthetic give the same numbers.
    dataset = ShardedDataset(data_dir)
    geometry = dataset_geometry(dataset)
    learned = evaluate_synthetic(
        dataset,
        build_audio_estimator("slfm", geometry, model_dir, "torch"),
        build_visual_estimator("slfm", model=model_dir, backend="torch"),
    ).as_dict()
    gcc = evaluate_synthetic(dataset, build_audio_estimator("gcc_phat", geometry), None).as_dict()
    for direct, row in ((learned, rows["slfm"]), (gcc, rows["gcc_phat"])):
        for key in ("n", "audio_n", "azimuth_mae_deg", "azimuth_median_deg", "lr_accuracy"):
            assert row[key] == pytest.approx(direct[key], abs=1e-9), key
    for key in ("yaw_n", "yaw_mae_deg", "yaw_median_deg", "yaw_valid_fraction"):
        assert rows["slfm"][key] == pytest.approx(learned[key], abs=1e-9), key
    assert results["audio_n"] == learned["audio_n"] >= 2 and results["yaw_n"] == 4
    # Audio baselines score no yaw and visual ones no audio.
    assert rows["iid"]["yaw_mae_deg"] is None and rows["orb"]["azimuth_mae_deg"] is None
    assert all(list(r) == list(rows["slfm"]) for r in rows.values())
    assert rows["orb"]["yaw_n"] == 4

    md = (tmp_path / RESULTS_MD).read_text()
    cells = table(md)
    assert list(cells) == list(rows)
    for label, row in rows.items():
        for cell, (_, key, fmt) in zip(cells[label], TABLE_COLUMNS, strict=True):
            assert close(cell, row.get(key), fmt), (label, key, cell, row.get(key))
    assert all(c == EMPTY_CELL for c in cells["gcc_phat"][4:])
    assert all(c == EMPTY_CELL for c in cells["orb"][:4])
    assert f"`{data_dir}` (split test, 2 samples" in md
    assert f"model: `{model_dir}` ({results['backend']})" in md


def test_published_numbers_and_command(report: Report, data_dir: Path) -> None:
    md = markdown(report)
    published = md.split("## Published (HM3D-SS speech)")[1].split("## Plots")[0]
    assert "| SLfM (self-supervised) | 3.17 | 0.77 |" in published
    assert "| supervised | 1.71 | 0.46 |" in published
    assert f"| SIFT | {EMPTY_CELL} | 12.2 |" in published
    assert f"| SuperGlue | {EMPTY_CELL} | 2.47 |" in published
    assert report.command.startswith(f"slfm eval report --data {data_dir} --model ")
    assert "--backend torch --baselines gcc_phat,iid,orb" in report.command
    assert report.command in md.split("## Command")[1]


def test_plots_are_pngs_and_user_files_are_kept(report: Report, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / RESULTS_MD).write_text("stale")
    write_report(report, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / RESULTS_MD).read_text().startswith("# Evaluation report")
    for name in PLOT_FILES:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000, name
        image = cv2.imread(str(tmp_path / name))
        assert image is not None and image.ndim == 3 and min(image.shape[:2]) > 200, name
        assert image.std() > 10.0, name  # not a blank canvas
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        write_report(report, blocker)


def test_compare_adds_a_row(
    data_dir: Path, model_dir: Path, tmp_path: Path, save_tiny_model: Callable[..., Path]
) -> None:
    other = save_tiny_model(tmp_path / "other", seed=1)
    compare = parse_compare([f"supervised={other}"])
    result = run_report(data_dir, model_dir, "torch", compare, baselines=(), limit=1)
    assert [r.label for r in result.rows] == ["slfm", "supervised"]
    row = result.rows[1].as_dict()
    assert row["kind"] == "learned" and row["model_dir"] == str(other) and row["n"] == 1
    md = markdown(result)
    assert f"- supervised: `{other}`" in md
    supervised = table(md)["supervised"]
    assert not math.isnan(float(supervised[0])) and supervised[4] != EMPTY_CELL


def test_a_network_no_stage_trained_is_left_out_of_its_row(
    data_dir: Path, tmp_path: Path, save_tiny_model: Callable[..., Path]
) -> None:
    audio_only = save_tiny_model(tmp_path / "audio_only", untrained_networks=["visual"])
    result = run_report(data_dir, audio_only, "torch", baselines=(), limit=1)
    row = result.rows[0].as_dict()
    assert row["audio_n"] > 0 and "yaw_n" not in row
    cells = table(markdown(result))["slfm"]
    assert cells[0] != EMPTY_CELL and cells[4] == EMPTY_CELL
    with pytest.raises(ModelError, match=r"visual network .* was never trained"):
        build_visual_estimator("slfm", model=audio_only, backend="torch")
    untrained = save_tiny_model(tmp_path / "untrained", untrained_networks=["audio", "visual"])
    with pytest.raises(ModelError, match="neither network"):
        run_report(data_dir, untrained, "torch", baselines=(), limit=1)


def test_bad_inputs_fail_clearly(data_dir: Path, model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown baseline"):
        parse_baselines("gcc_phat,superglue")
    with pytest.raises(ConfigError, match="more than once"):
        parse_baselines("orb,orb")
    assert parse_baselines("") == ()
    assert parse_baselines(" sift , music ") == ("sift", "music")
    for bad in ("supervised", "=dir", "label=", "a|b=dir"):
        with pytest.raises(ConfigError, match="--compare"):
            parse_compare([bad])
    with pytest.raises(ConfigError, match="used twice"):
        run_report(data_dir, model_dir, "torch", [("orb", model_dir)], ("orb",))
    with pytest.raises(ConfigError, match="--limit"):
        run_report(data_dir, model_dir, "torch", limit=0)
    with pytest.raises(ModelError, match="does not exist"):
        run_report(data_dir, tmp_path / "no_model", "torch")
    with pytest.raises(DatasetError, match="does not exist"):
        run_report(tmp_path / "no_data", model_dir, "torch")


def test_declined_estimates_are_counted_not_plotted(tmp_path: Path) -> None:
    from slfm_ros.evaluation.audio_eval import AudioResult, ClipRecord
    from slfm_ros.evaluation.metrics import score_azimuth, score_yaw
    from slfm_ros.evaluation.report import ReportRow, plot_series
    from slfm_ros.evaluation.rotation_eval import PairRecord, RotationResult
    from slfm_ros.evaluation.synthetic_eval import SyntheticResult

    clips = [
        ClipRecord("a", 0.5, 0.6, True, ""),
        ClipRecord("a", -0.4, math.nan, False, "silent"),
        ClipRecord("b", 0.2, 0.3, False, "low confidence"),
    ]
    pairs = [PairRecord("a", 0.3, math.nan, False, "no matches")]
    audio = AudioResult(
        score_azimuth(
            [c.predicted for c in clips], [c.azimuth for c in clips], [c.valid for c in clips]
        ),
        clips,
    )
    rotation = RotationResult(score_yaw([math.nan], [0.3], [False]), pairs)
    row = ReportRow("x", "learned", SyntheticResult(2, audio, rotation), "m", "torch (cpu, fp32)")
    report = Report("data", "test", 2, "m", "torch (cpu, fp32)", [row])
    (audio_series,), (yaw_series,) = plot_series(report)
    assert audio_series.declined == 2
    assert audio_series.truth.tolist() == pytest.approx([math.degrees(0.5)])
    assert audio_series.predicted.tolist() == pytest.approx([math.degrees(0.6)])
    assert audio_series.error.tolist() == pytest.approx([math.degrees(0.1)])
    assert "2 declined" in audio_series.legend
    assert yaw_series.declined == 1 and yaw_series.truth.size == 0
    # The table counts them: valid fraction 1/3, and the declined yaw pair as a 0 deg turn.
    cells = table(markdown(report))["x"]
    assert cells[3] == "0.333" and cells[6] == "0.000"
    assert cells[4] == f"{math.degrees(0.3):.2f}"
    write_report(report, tmp_path)  # a part without any valid estimate still gets its plots
    assert all((tmp_path / name).stat().st_size > 1000 for name in PLOT_FILES)


def test_the_first_row_can_be_named(data_dir: Path, model_dir: Path) -> None:
    result = run_report(data_dir, model_dir, "torch", baselines=(), limit=1, label="supervised")
    assert [r.label for r in result.rows] == ["supervised"]
    assert "--label supervised" in report_command(data_dir, model_dir, label="supervised")
    with pytest.raises(ConfigError, match="used twice"):
        run_report(data_dir, model_dir, "torch", baselines=("iid",), limit=1, label="iid")
