"""SOFA reading/writing and interpolation between measured directions."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.sim.hrir_interp import DirectionInterpolator
from slfm_ros.core.sim.receivers import SofaReceiver, SphericalHead, broadband_itd
from slfm_ros.core.sim.sofa import SofaHrirSet, horizontal_ring, read_sofa, write_sofa


def _pulse(n: int, at: float, amp: float) -> np.ndarray:
    """Impulse band-limited to 0.8 x Nyquist (Hann-windowed sinc), peak ``amp`` at ``at``."""
    t = np.arange(n) - at
    return amp * np.sinc(0.8 * t) * np.where(np.abs(t) < 16, 0.5 + 0.5 * np.cos(np.pi * t / 16), 0)


def _peak(x: np.ndarray, up: int = 16) -> tuple[float, float]:
    """(position in samples, height) of the largest peak, band-limited interpolation."""
    fine = np.fft.irfft(np.fft.rfft(x), n=x.size * up) * up
    i = int(np.argmax(fine))
    return i / up, float(fine[i])


def _two_direction_set() -> SofaHrirSet:
    ir = np.zeros((2, 2, 128), dtype=np.float32)
    ir[0, 0], ir[0, 1] = _pulse(128, 40.0, 1.0), _pulse(128, 40.0, 1.0)  # 0 degrees
    ir[1, 0], ir[1, 1] = _pulse(128, 38.0, 1.0), _pulse(128, 44.0, 0.5)  # 40 degrees
    return horizontal_ring(ir, np.radians([0.0, 40.0]), 16000, 1.2)


def test_write_read_roundtrip(tmp_path: Path) -> None:
    pos = np.array(
        [[0.1, 0.0, 1.0], [-2.0, 0.3, 1.0], [3.0, -0.5, 2.0], [1.5, 1.2, 1.0], [-3.1, 0.0, 1.0]]
    )
    ir = SphericalHead().hrirs(pos[:, 0], pos[:, 1], 44100).transpose(0, 2, 1)
    write_sofa(tmp_path / "set.sofa", SofaHrirSet(ir, pos, 44100.0, "test set"))
    back = read_sofa(tmp_path / "set.sofa")
    assert np.array_equal(back.ir, ir)
    assert back.sample_rate == 44100.0 and back.title == "test set"
    assert np.allclose(
        np.angle(np.exp(1j * (back.source_positions[:, 0] - pos[:, 0]))), 0, atol=1e-9
    )
    assert np.allclose(back.source_positions[:, 1:], pos[:, 1:])
    assert np.all(back.source_positions[:, 0] >= -math.pi) and np.all(
        back.source_positions[:, 0] < math.pi
    )


def test_written_file_has_the_sofa_netcdf_layout(tmp_path: Path) -> None:
    write_sofa(tmp_path / "set.sofa", _two_direction_set())
    with h5py.File(tmp_path / "set.sofa", "r") as f:
        assert f.attrs["SOFAConventions"] == b"SimpleFreeFieldHRIR"
        assert f.attrs["Conventions"] == b"SOFA"
        assert f["Data.IR"].shape == (2, 2, 128)
        assert [d[0].name for d in f["Data.IR"].dims] == ["/M", "/R", "/N"]
        assert f["SourcePosition"].attrs["Units"] == b"degree, degree, metre"
        # SOFA azimuths are degrees counter-clockwise from the front, like REP-103.
        assert np.allclose(f["SourcePosition"][:, 0], [0.0, 40.0])


def test_interpolation_between_two_measured_directions() -> None:
    receiver = SofaReceiver.from_hrir_set(_two_direction_set(), "two")
    h = receiver.hrir(math.radians(20.0), 0.0, 16000).astype(np.float64)
    (t_left, a_left), (t_right, a_right) = _peak(h[:, 0]), _peak(h[:, 1])
    # Delays and shapes interpolate separately: halfway in onset and in level.
    assert t_right - t_left == pytest.approx(3.0, abs=0.05)
    assert a_left == pytest.approx(1.0, abs=0.03)
    assert a_right == pytest.approx(0.75, abs=0.03)
    # Measured directions come back unchanged (up to the common bulk delay).
    h40 = receiver.hrir(math.radians(40.0), 0.0, 16000).astype(np.float64)
    assert _peak(h40[:, 1])[0] - _peak(h40[:, 0])[0] == pytest.approx(6.0, abs=0.05)
    assert _peak(h40[:, 1])[1] == pytest.approx(0.5, abs=0.02)


def test_interpolated_head_matches_the_head_between_grid_points(tmp_path: Path) -> None:
    head = SphericalHead()
    az = np.radians(np.arange(0, 360, 10.0))
    el = np.zeros_like(az)
    irs = head.hrirs(az, el, 48000).transpose(0, 2, 1)
    pos = np.stack([az, el, np.ones_like(az)], axis=1)
    write_sofa(tmp_path / "ring.sofa", SofaHrirSet(irs, pos, 48000.0))
    receiver = SofaReceiver(tmp_path / "ring.sofa")
    query = np.radians([5.0, 52.0, 85.0, 100.0, -140.0])
    got = receiver.hrirs(query, 0.0, 16000)
    want = head.hrirs(query, 0.0, 16000)
    itd_got, itd_want = broadband_itd(got, 16000), broadband_itd(want, 16000)
    assert np.max(np.abs(itd_got - itd_want)) * 16000 < 0.25
    energy_ratio = np.sum(got.astype(float) ** 2, axis=(1, 2)) / np.sum(
        want.astype(float) ** 2, axis=(1, 2)
    )
    assert np.allclose(energy_ratio, 1.0, atol=0.1)  # resampling 48 -> 16 kHz keeps the level


def test_direction_interpolator_weights() -> None:
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, 200)
    az, el = rng.uniform(-math.pi, math.pi, 200), np.arcsin(z)
    interp = DirectionInterpolator(az, el)
    assert interp.layout == "sphere"
    idx, w = interp.weights(az[:10], el[:10])
    assert np.allclose(w.max(axis=1), 1.0) and np.array_equal(
        idx[np.arange(10), w.argmax(1)], np.arange(10)
    )
    q_az, q_el = rng.uniform(-math.pi, math.pi, 500), np.arcsin(rng.uniform(-1, 1, 500))
    idx, w = interp.weights(q_az, q_el)
    assert np.all(w >= 0) and np.allclose(w.sum(axis=1), 1.0)

    # Barycentric: the weighted vertices point back at the query direction.
    def unit(a: np.ndarray, e: np.ndarray) -> np.ndarray:
        return np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1)

    mix = np.einsum("nk,nkc->nc", w, unit(az[idx], el[idx]))
    mix /= np.linalg.norm(mix, axis=1, keepdims=True)
    assert np.min(np.sum(mix * unit(q_az, q_el), axis=1)) > math.cos(math.radians(0.5))


def test_wrong_convention_is_rejected_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "brir.sofa"
    write_sofa(path, _two_direction_set())
    with h5py.File(path, "r+") as f:
        f.attrs["SOFAConventions"] = np.bytes_(b"SingleRoomSRIR")
    with pytest.raises(InputFormatError, match="SingleRoomSRIR"):
        read_sofa(path)


def test_missing_file_and_non_hdf5_file_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="not found"):
        read_sofa(tmp_path / "nothing.sofa")
    (tmp_path / "text.sofa").write_text("not a sofa file")
    with pytest.raises(InputFormatError, match="not a SOFA file"):
        read_sofa(tmp_path / "text.sofa")


def test_receiver_count_other_than_two_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "three.sofa"
    write_sofa(path, _two_direction_set())
    with h5py.File(path, "r+") as f:
        del f["Data.IR"]
        f.create_dataset("Data.IR", data=np.zeros((2, 3, 128)))
    with pytest.raises(InputFormatError, match="two receivers"):
        read_sofa(path)


def test_directions_below_the_measured_grid_keep_their_lateral_angle() -> None:
    head = SphericalHead()
    az, el = [], []
    for e in range(-40, 91, 10):  # like most measured sets: nothing below -40 degrees
        n = max(1, round(36 * math.cos(math.radians(e))))
        az += [2 * math.pi * k / n for k in range(n)]
        el += [math.radians(e)] * n
    az_a, el_a = np.array(az), np.array(el)
    irs = head.hrirs(az_a, el_a, 16000).transpose(0, 2, 1)
    positions = np.stack([az_a, el_a, np.ones_like(az_a)], axis=1)
    receiver = SofaReceiver.from_hrir_set(SofaHrirSet(irs, positions, 16000.0), "capless")
    # Floor reflections arrive from below; their ITD must follow the lateral angle.
    q_az, q_el = np.radians([90.0, -60.0, 150.0]), np.radians([-70.0, -55.0, -85.0])
    got = broadband_itd(receiver.hrirs(q_az, q_el, 16000), 16000) * 16000
    want = broadband_itd(head.hrirs(q_az, q_el, 16000), 16000) * 16000
    assert np.allclose(got, want, atol=0.3), (got, want)
