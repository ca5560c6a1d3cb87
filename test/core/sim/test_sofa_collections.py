"""SOFA files as published HRIR collections store them: which channel is the left ear, direction
grids, sampling rates, short responses and Data.Delay.

Heads written by these tests are rigid spheres (``SphericalHead``), so every file has a known
truth: read back and rendered at 16 kHz, it must give the sphere's own interaural delays.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.sim.receivers import SofaReceiver, SphericalHead, broadband_itd
from slfm_ros.core.sim.sofa import SofaHrirSet, read_sofa, write_sofa

KEMAR_LARGE = Path(__file__).resolve().parents[2] / "data" / "MIT_KEMAR_large_pinna.sofa"
KEMAR_NORMAL = Path("/usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa")
needs_debian_kemar = pytest.mark.skipif(
    not KEMAR_NORMAL.is_file(),
    reason=f"{KEMAR_NORMAL} is missing: Debian package libmysofa1 ships it (tools/setup_env.sh)",
)
HEAD = SphericalHead()
RENDER_RATE = 16000
SOFA_LOG = "slfm_ros.core.sim.sofa"
# Horizontal directions (deg) measured by ``_grid(15.0)`` and ``_grid(30.0)``: the rendered
# delays there test how a file is read, not how directions are interpolated.
MEASURED_15 = np.arange(-180.0, 180.0, 15.0)
MEASURED_30 = np.arange(-180.0, 180.0, 30.0)


def _grid(step_deg: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Azimuths and elevations (rad) of a typical measured grid: from about -40 deg elevation
    to the top, the horizontal plane included."""
    az: list[float] = []
    el: list[float] = []
    for e in np.arange(-step_deg * (45 // step_deg), 90.1, step_deg):
        n = max(1, round(360.0 / step_deg * math.cos(math.radians(e))))
        az += [2 * math.pi * k / n for k in range(n)]
        el += [math.radians(e)] * n
    return np.array(az), np.array(el)


def _head_set(az: np.ndarray, el: np.ndarray, rate: float) -> SofaHrirSet:
    irs = HEAD.hrirs(az, el, int(rate)).transpose(0, 2, 1)
    return SofaHrirSet(irs, np.stack([az, el, np.full_like(az, 1.2)], axis=1), rate)


def _itd_error_us(receiver: SofaReceiver, az_deg: np.ndarray) -> np.ndarray:
    """|ITD of the receiver - ITD of the sphere| (us) on the horizontal plane at 16 kHz."""
    az = np.radians(az_deg)
    got = broadband_itd(receiver.hrirs(az, 0.0, RENDER_RATE), RENDER_RATE)
    want = broadband_itd(HEAD.hrirs(az, 0.0, RENDER_RATE), RENDER_RATE)
    return np.asarray(np.abs(got - want) * 1e6)


def _sofa_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == SOFA_LOG]


def _index(hrir_set: SofaHrirSet, az_deg: float, el_deg: float) -> int:
    pos = hrir_set.source_positions
    gap = np.abs(np.angle(np.exp(1j * (pos[:, 0] - math.radians(az_deg)))))
    return int(np.argmin(gap + np.abs(pos[:, 1] - math.radians(el_deg))))


def test_kemar_whose_metadata_names_the_right_ear_first_loads_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger=SOFA_LOG):
        kemar = read_sofa(KEMAR_LARGE)
    (message,) = _sofa_warnings(caplog)
    assert str(KEMAR_LARGE) in message
    assert "ReceiverPosition puts the first receiver at y = -0.09 m" in message
    assert "the first channel is the left ear" in message
    left = kemar.ir[_index(kemar, 90.0, 0.0)].astype(np.float64)  # a source on the left
    energy = np.sum(left**2, axis=1)
    assert energy[0] > 5 * energy[1]
    assert np.argmax(np.abs(left[0])) < np.argmax(np.abs(left[1]))
    receiver = SofaReceiver(KEMAR_LARGE)
    assert 0.07 < receiver.geometry.radius_m < 0.11  # type: ignore[attr-defined]
    itd = broadband_itd(receiver.hrirs(np.radians([60.0, -60.0]), 0.0, RENDER_RATE), RENDER_RATE)
    assert itd[0] > 300e-6 and itd[1] < -300e-6  # the right ear hears a left source later


@needs_debian_kemar
def test_kemar_whose_metadata_agrees_loads_silently_and_alike(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger=SOFA_LOG):
        normal = SofaReceiver(KEMAR_NORMAL)
    assert _sofa_warnings(caplog) == []
    large = SofaReceiver(KEMAR_LARGE)
    # Same head and torso, other pinnae: the broadband delays fit nearly the same sphere.
    radius_normal = normal.geometry.radius_m  # type: ignore[attr-defined]
    assert radius_normal == pytest.approx(large.geometry.radius_m, rel=0.05)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data_right_first", "metadata_right_first"),
    [(False, False), (False, True), (True, False), (True, True)],
)
def test_the_responses_decide_which_channel_is_the_left_ear(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    data_right_first: bool,
    metadata_right_first: bool,
) -> None:
    az, el = _grid(30.0)
    truth = _head_set(az, el, 16000.0)
    path = tmp_path / "head.sofa"
    write_sofa(path, truth)
    with h5py.File(path, "r+") as f:
        if data_right_first:
            f["Data.IR"][...] = f["Data.IR"][()][:, ::-1, :]
        if metadata_right_first:
            f["ReceiverPosition"][:, 1, 0] = [-0.09, 0.09]
    with caplog.at_level(logging.WARNING, logger=SOFA_LOG):
        back = read_sofa(path)
    assert np.array_equal(back.ir, truth.ir)
    warnings = _sofa_warnings(caplog)
    if data_right_first == metadata_right_first:
        assert warnings == []
    else:
        (message,) = warnings
        side = "right" if metadata_right_first else "left"
        assert f"(the {side} ear first)" in message
        assert f"the first channel is the {'right' if data_right_first else 'left'} ear" in message


def test_spherical_receiver_positions_are_understood(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    az, el = _grid(30.0)
    path = tmp_path / "head.sofa"
    write_sofa(path, _head_set(az, el, 16000.0))
    with h5py.File(path, "r+") as f:
        f["ReceiverPosition"][:, :, 0] = [[270.0, 0.0, 0.09], [90.0, 0.0, 0.09]]
        f["ReceiverPosition"].attrs["Type"] = np.bytes_(b"spherical")
    with caplog.at_level(logging.WARNING, logger=SOFA_LOG):
        read_sofa(path)
    (message,) = _sofa_warnings(caplog)
    assert "first receiver at y = -0.09 m, the second at +0.09 m (the right ear first)" in message


def _pulse(n: int, at: float, amp: float) -> np.ndarray:
    t = np.arange(n) - at
    return amp * np.sinc(0.8 * t) * np.where(np.abs(t) < 16, 0.5 + 0.5 * np.cos(np.pi * t / 16), 0)


def _cue_set(level_sense: float, arrival_sense: float) -> SofaHrirSet:
    """A ring of pulse pairs: level and arrival differences of chosen senses (+1 = a head's)."""
    az = np.radians(np.arange(0.0, 360.0, 10.0))
    lateral = np.sin(az)
    ir = np.zeros((az.size, 2, 128))
    for m, s in enumerate(lateral):
        ir[m, 0] = _pulse(128, 40.0 - 6 * arrival_sense * s, 1.0 + 0.5 * level_sense * s)
        ir[m, 1] = _pulse(128, 40.0 + 6 * arrival_sense * s, 1.0 - 0.5 * level_sense * s)
    return SofaHrirSet(ir, np.stack([az, np.zeros_like(az), np.ones_like(az)], 1), 16000.0)


@pytest.mark.parametrize(
    ("level_sense", "arrival_sense", "first_is_left"),
    [(1.0, 1.0, True), (-1.0, -1.0, False), (1.0, 0.0, True), (0.0, 1.0, True)],
)
def test_one_cue_is_enough_when_the_other_is_absent(
    tmp_path: Path, level_sense: float, arrival_sense: float, first_is_left: bool
) -> None:
    written = _cue_set(level_sense, arrival_sense)
    write_sofa(tmp_path / "cues.sofa", written)
    back = read_sofa(tmp_path / "cues.sofa")
    want = written.ir if first_is_left else written.ir[:, ::-1]
    assert np.array_equal(back.ir, want)


@pytest.mark.parametrize(
    ("level_sense", "arrival_sense", "message"),
    [
        (0.0, 0.0, "no interaural difference"),
        (1.0, -1.0, "do not agree on which channel is the left ear"),
    ],
)
def test_responses_that_are_not_two_ears_are_refused_with_what_was_measured(
    tmp_path: Path, level_sense: float, arrival_sense: float, message: str
) -> None:
    write_sofa(tmp_path / "odd.sofa", _cue_set(level_sense, arrival_sense))
    with pytest.raises(InputFormatError, match=message) as err:
        read_sofa(tmp_path / "odd.sofa")
    text = str(err.value)
    assert "odd.sofa" in text and "over the 24 directions at least 30 deg off" in text
    assert "level difference median" in text and "arrival difference median" in text


def _interaural_polar_grid() -> tuple[np.ndarray, np.ndarray]:
    """A CIPIC-style grid: lateral angles to +-80 deg, polar angles -45..230.625 deg, as az/el."""
    lateral = np.radians([-80, -65, -55, *range(-45, 50, 5), 55, 65, 80])
    polar = np.radians(-45 + 5.625 * np.arange(50))
    lat, pol = (a.ravel() for a in np.meshgrid(lateral, polar, indexing="ij"))
    x, y, z = np.cos(lat) * np.cos(pol), np.sin(lat), np.cos(lat) * np.sin(pol)
    return np.mod(np.arctan2(y, x), 2 * math.pi), np.arcsin(z)


def test_interaural_polar_grid_stored_as_spherical_coordinates(tmp_path: Path) -> None:
    az, el = _interaural_polar_grid()
    head = _head_set(az, el, 44100.0)
    write_sofa(
        tmp_path / "cipic.sofa", SofaHrirSet(head.ir[:, :, :200], head.source_positions, 44100.0)
    )
    receiver = SofaReceiver(tmp_path / "cipic.sofa")
    assert receiver._interp.layout == "sphere"
    # Irregular horizontal spacing (5 deg near the front, 10-15 deg toward the sides).
    assert np.max(_itd_error_us(receiver, np.arange(-80.0, 81.0, 4.0))) < 10.0
    # The unmeasured +-80..90 deg cap takes the nearest measured lateral angle.
    assert np.max(_itd_error_us(receiver, np.array([-90.0, 90.0]))) < 30.0
    assert receiver.geometry.radius_m == pytest.approx(HEAD.geometry.radius_m, rel=0.02)  # type: ignore[attr-defined]


def test_elevations_beyond_90_degrees_are_the_directions_they_point_at(tmp_path: Path) -> None:
    az, el = _grid(15.0)
    truth = _head_set(az, el, 16000.0)
    path = tmp_path / "over_the_top.sofa"
    write_sofa(path, truth)
    with h5py.File(path, "r+") as f:
        stored = f["SourcePosition"][()]
        back_half = np.cos(az) < -1e-9
        # The rear half stored over the top: azimuth turned by 180 deg, elevation 180 - el.
        stored[back_half, 0] = np.mod(stored[back_half, 0] + 180.0, 360.0)
        stored[back_half, 1] = 180.0 - stored[back_half, 1]
        f["SourcePosition"][...] = stored
        assert f["SourcePosition"][:, 1].max() > 200.0
    back = read_sofa(path)
    turn = np.angle(np.exp(1j * (back.source_positions[:, 0] - truth.source_positions[:, 0])))
    not_pole = np.abs(np.cos(el)) > 1e-9
    assert np.allclose(turn[not_pole], 0.0, atol=1e-9)
    assert np.allclose(back.source_positions[:, 1], el, atol=1e-9)
    assert np.max(_itd_error_us(SofaReceiver(path), MEASURED_15)) < 5.0


def test_irregular_horizontal_ring(tmp_path: Path) -> None:
    ring = np.array([0, 5, 15, 30, 50, 65, 90, 100, 130, 180, 200, 250, 270, 290, 330, 345.0])
    az = np.radians(ring)
    write_sofa(tmp_path / "ring.sofa", _head_set(az, np.zeros_like(az), 48000.0))
    receiver = SofaReceiver(tmp_path / "ring.sofa")
    assert receiver._interp.layout == "ring"
    assert np.max(_itd_error_us(receiver, ring)) < 5.0  # measured directions come back
    between = np.array([10.0, 40.0, 57.5, 78.0, 115.0, 155.0, -135.0, -80.0, -50.0, -22.0])
    # Onsets interpolate linearly in azimuth: within half a sample at 16 kHz (62.5 us).
    assert np.max(_itd_error_us(receiver, between)) < 31.25


def _shortened(hrir_set: SofaHrirSet, taps: int, first_onset: int) -> SofaHrirSet:
    """The set with its distance delay cut so the earliest arrival is at ``first_onset``."""
    from slfm_ros.core.dsp.onsets import onsets

    start = int(np.floor(onsets(hrir_set.ir).min())) - first_onset
    ir = hrir_set.ir[:, :, start : start + taps]
    return SofaHrirSet(ir, hrir_set.source_positions, hrir_set.sample_rate)


@pytest.mark.parametrize("rate", [44100.0, 48000.0])
@pytest.mark.parametrize("taps", [None, 128])
def test_sampling_rates_and_short_responses(tmp_path: Path, rate: float, taps: int | None) -> None:
    az, el = _grid(15.0)
    head = _head_set(az, el, rate)
    written = head if taps is None else _shortened(head, taps, first_onset=2)
    write_sofa(tmp_path / "head.sofa", written)
    receiver = SofaReceiver(tmp_path / "head.sofa")
    query = MEASURED_15
    assert np.max(_itd_error_us(receiver, query)) < 5.0
    # The level survives resampling, and an arrival at the very start is not faded out.
    got = receiver.hrirs(np.radians(query), 0.0, RENDER_RATE).astype(np.float64)
    want = HEAD.hrirs(np.radians(query), 0.0, RENDER_RATE).astype(np.float64)
    ratio = np.sum(got**2, axis=1) / np.sum(want**2, axis=1)
    assert np.allclose(ratio, 1.0, atol=0.1), ratio.min()


@pytest.mark.parametrize("delays", ["absent", "one pair", "integer", "fractional"])
def test_data_delay_is_applied(tmp_path: Path, delays: str) -> None:
    az, el = _grid(30.0)
    truth = _head_set(az, el, 48000.0)
    rng = np.random.default_rng(4)
    m, _, n = truth.ir.shape
    if delays == "absent":
        delay = np.zeros((1, 2))
    elif delays == "one pair":
        delay = np.array([[3.0, 7.0]])
    elif delays == "integer":
        delay = rng.integers(0, 9, (m, 2)).astype(float)
    else:
        delay = rng.uniform(0.0, 8.0, (m, 2))
    # Stored responses start ``delay`` earlier (cutting a few samples of silence); Data.Delay
    # says by how much.
    omega = 2 * math.pi * np.fft.rfftfreq(2 * n)
    spectra = np.fft.rfft(truth.ir.astype(np.float64), n=2 * n, axis=-1)
    advanced = np.fft.irfft(
        spectra * np.exp(1j * omega * np.broadcast_to(delay, (m, 2))[:, :, None]), axis=-1
    )
    stored = SofaHrirSet(advanced[:, :, :n], truth.source_positions, 48000.0)
    path = tmp_path / "delayed.sofa"
    write_sofa(path, stored)
    with h5py.File(path, "r+") as f:
        del f["Data.Delay"]
        if delays != "absent":
            f.create_dataset("Data.Delay", data=delay)
    back = read_sofa(path)
    peak = float(np.abs(truth.ir).max())
    assert back.ir.shape[2] >= n
    # The first 9 samples were cut. A fractional shift cannot keep the phase of the Nyquist
    # bin (real in every DFT).
    tolerance = 1e-3 if delays == "fractional" else 1e-6
    assert np.max(np.abs(back.ir[:, :, 9:n] - truth.ir[:, :, 9:])) < tolerance * peak
    assert np.max(_itd_error_us(SofaReceiver(path), MEASURED_30)) < 5.0


def test_a_data_delay_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    az, el = _grid(30.0)
    path = tmp_path / "head.sofa"
    write_sofa(path, _head_set(az, el, 16000.0))
    with h5py.File(path, "r+") as f:
        del f["Data.Delay"]
        f.create_dataset("Data.Delay", data=np.zeros((3, 2)))
    with pytest.raises(InputFormatError, match=r"Data.Delay has shape \(3, 2\)"):
        read_sofa(path)
