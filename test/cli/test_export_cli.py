"""`slfm export`: writes the export with its parity report, keeps an identical one, refuses to
overwrite a different one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slfm_ros.bench.bench_model import smoke_config, write_random_model
from slfm_ros.cli.main import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Runs `slfm export ARGV` in this process: exit status, stdout, stderr."""
    code = main(["export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("models")
    return (
        write_random_model(root / "a", smoke_config(), seed=0),
        write_random_model(root / "b", smoke_config(), seed=1),
    )


def test_export_prints_parity_and_keeps_identical(
    models: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "onnx"
    code, out, err = run_cli(["--model", str(models[0]), "--out", str(out_dir)], capsys)
    assert code == 0, out + err
    assert "export written" in out and "parity check" in err
    parity_line = next(line for line in out.splitlines() if "parity vs PyTorch" in line)
    assert "(sim," in parity_line and parity_line.endswith("-> ok")
    assert (out_dir / "audio.onnx").is_file() and (out_dir / "visual.onnx").is_file()

    code, out, _ = run_cli(["--model", str(models[0]), "--out", str(out_dir), "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["reused"] is True
    assert data["parity"]["audio_max_abs_rad"] <= 1e-4

    before = (out_dir / "export.json").read_text()
    code, _, err = run_cli(["--model", str(models[1]), "--out", str(out_dir)], capsys)
    assert code == 2 and "different export" in err
    assert (out_dir / "export.json").read_text() == before


def test_fp16_and_opset(
    models: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--model", str(models[1]), "--out", str(tmp_path / "fp16"), "--fp16"]
    code, out, _ = run_cli(
        [*argv, "--opset", "18", "--parity-source", "synthetic", "--json"], capsys
    )
    data = json.loads(out)
    assert code == 0 and data["precision"] == "fp16" and data["opset"] == 18
    assert data["parity"]["tolerance_rad"] == 1e-2 and data["parity"]["passed"]


def test_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        ["--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "model card not found" in err
    assert not (tmp_path / "o").exists()
