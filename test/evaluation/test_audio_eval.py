"""Audio evaluation with a measured head (SOFA) and with BRIRs, including the error paths."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf

from slfm_ros.core.errors import DatasetError, InputFormatError
from slfm_ros.core.geometry.interaural import SphericalHeadGeometry
from slfm_ros.evaluation.audio_eval import (
    AudioProtocol,
    evaluate_brirs,
    evaluate_hrtf,
    hrtf_receiver,
    read_brirs,
)
from slfm_ros.evaluation.estimators import build_audio_estimator

PROTOCOL = AudioProtocol(clip_seconds=1.0, clips_per_file=6, clips_per_brir=2, seed=1)
# Two heads measured by Gardner and Martin (MIT, 1994): the large pinna ships with the tests
# (its metadata names the right ear first, its data the left), the normal pinna with Debian.
KEMAR_LARGE = Path(__file__).resolve().parents[1] / "data" / "MIT_KEMAR_large_pinna.sofa"
KEMAR_NORMAL = Path("/usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa")


def test_gcc_phat_localises_recordings_through_a_measured_head(
    sofa_file: Path, sources_dir: Path
) -> None:
    estimator = build_audio_estimator("classic", SphericalHeadGeometry())
    result = evaluate_hrtf(sofa_file, sources_dir, estimator, PROTOCOL)
    assert result.report.n == 12 == len(result.records)
    assert {r.source for r in result.records} == {"a.wav", "b.flac"}
    assert all(abs(r.azimuth) < math.pi / 2 for r in result.records)
    assert result.report.azimuth_mae_deg < 5.0
    assert result.report.lr_accuracy == 1.0
    again = evaluate_hrtf(sofa_file, sources_dir, estimator, PROTOCOL)
    assert [r.predicted for r in again.records] == [r.predicted for r in result.records]


def test_a_room_makes_the_task_harder_but_keeps_the_side(
    sofa_file: Path, sources_dir: Path
) -> None:
    estimator = build_audio_estimator("iid", SphericalHeadGeometry())
    protocol = AudioProtocol(clip_seconds=1.0, clips_per_file=3, reverb="room", seed=2)
    result = evaluate_hrtf(sofa_file, sources_dir, estimator, protocol)
    assert result.report.n == 6
    assert result.report.lr_accuracy >= 5 / 6


def test_brirs_are_read_resampled_and_scored(brir_dir: Path, sources_dir: Path) -> None:
    brirs = read_brirs(brir_dir, 16000)
    assert [round(math.degrees(b.azimuth)) for b in brirs] == [-60, -25, 35, 70]
    assert all(b.response.shape[1] == 2 for b in brirs)
    estimator = build_audio_estimator("gcc_phat", SphericalHeadGeometry())
    result = evaluate_brirs(brir_dir, sources_dir, estimator, PROTOCOL)
    assert result.report.n == 8
    assert result.report.azimuth_mae_deg < 8.0
    assert result.report.lr_accuracy == 1.0


def test_a_mono_brir_is_rejected(brir_dir: Path, tmp_path: Path) -> None:
    sf.write(tmp_path / "mono.wav", np.zeros(64, dtype=np.float32), 16000)
    (tmp_path / "brirs.csv").write_text("file,azimuth_deg\nmono.wav,30\n")
    with pytest.raises(InputFormatError, match=r"1 channel.*needs 2"):
        read_brirs(tmp_path, 16000)


def test_brir_table_problems_are_reported(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        read_brirs(tmp_path / "missing", 16000)
    with pytest.raises(DatasetError, match=r"no brirs\.csv"):
        read_brirs(tmp_path, 16000)
    (tmp_path / "brirs.csv").write_text("name,angle\nx.wav,3\n")
    with pytest.raises(InputFormatError, match="file,azimuth_deg"):
        read_brirs(tmp_path, 16000)
    (tmp_path / "brirs.csv").write_text("file,azimuth_deg\nx.wav,left\n")
    with pytest.raises(InputFormatError, match="not a number"):
        read_brirs(tmp_path, 16000)
    (tmp_path / "x.wav").write_bytes(b"not audio at all")
    (tmp_path / "brirs.csv").write_text("file,azimuth_deg\nx.wav,10\n")
    with pytest.raises(InputFormatError, match="cannot read audio file"):
        read_brirs(tmp_path, 16000)


def test_sofa_of_another_convention_and_bad_sources_are_rejected(
    sofa_file: Path, sources_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "brir.sofa"
    other.write_bytes(sofa_file.read_bytes())
    with h5py.File(other, "r+") as f:
        f.attrs["SOFAConventions"] = np.bytes_(b"SingleRoomSRIR")
    estimator = build_audio_estimator("gcc_phat", SphericalHeadGeometry())
    with pytest.raises(InputFormatError, match="SimpleFreeFieldHRIR"):
        evaluate_hrtf(other, sources_dir, estimator, PROTOCOL)
    with pytest.raises(DatasetError, match="does not exist"):
        evaluate_hrtf(sofa_file, tmp_path / "none", estimator, PROTOCOL)
    silent = tmp_path / "silent"
    silent.mkdir()
    sf.write(silent / "quiet.wav", np.zeros(8000, dtype=np.float32), 16000)
    with pytest.raises(InputFormatError, match="silent"):
        evaluate_hrtf(sofa_file, silent, estimator, PROTOCOL)


@pytest.mark.skipif(
    not KEMAR_NORMAL.is_file(),
    reason=f"{KEMAR_NORMAL} is missing: Debian package libmysofa1 ships it (tools/setup_env.sh)",
)
def test_two_measured_kemar_heads_score_alike(sources_dir: Path) -> None:
    """What ``slfm eval audio --hrtf FILE --estimator classic`` runs, on both heads."""
    protocol = AudioProtocol(clip_seconds=1.0, clips_per_file=8, seed=0)
    scores = {}
    for path in (KEMAR_LARGE, KEMAR_NORMAL):
        receiver = hrtf_receiver(path)
        estimator = build_audio_estimator("classic", receiver.geometry)
        report = evaluate_hrtf(path, sources_dir, estimator, protocol, receiver=receiver).report
        assert report.n == 16 and report.lr_accuracy == 1.0
        scores[path.name] = report.azimuth_mae_deg
    assert max(scores.values()) < 5.0, scores
    assert abs(scores[KEMAR_LARGE.name] - scores[KEMAR_NORMAL.name]) <= 1.5, scores
