"""Rendering physics of every receiver model: which ear hears a source first and louder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import correlate, correlation_lags, fftconvolve, resample_poly

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.geometry.interaural import SPEED_OF_SOUND_M_S
from slfm_ros.core.sim.receivers import (
    Receiver,
    SofaReceiver,
    SphericalHead,
    StereoArray,
    broadband_itd,
    make_receiver,
)
from slfm_ros.core.sim.sofa import SofaHrirSet, write_sofa

SR = 16000


def _head_sofa(path: Path) -> Path:
    """A SOFA file of spherical-head HRIRs measured every 10 degrees, elevations -40..90."""
    az, el = [], []
    for e in range(-40, 91, 10):
        n = max(1, round(36 * math.cos(math.radians(e))))
        az += [2 * math.pi * k / n for k in range(n)]
        el += [math.radians(e)] * n
    az_a, el_a = np.array(az), np.array(el)
    irs = SphericalHead().hrirs(az_a, el_a, 48000)
    positions = np.stack([az_a, el_a, np.full_like(az_a, 1.5)], axis=1)
    write_sofa(path, SofaHrirSet(irs.transpose(0, 2, 1), positions, 48000.0))
    return path


@pytest.fixture(scope="module")
def sofa_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _head_sofa(tmp_path_factory.mktemp("sofa") / "head.sofa")


@pytest.fixture(scope="module")
def receivers(sofa_path: Path) -> dict[str, Receiver]:
    return {
        "head": SphericalHead(),
        "stereo": StereoArray(),
        "stereo_near": StereoArray(source_distance_m=1.0),
        "sofa": SofaReceiver(sofa_path),
    }


def _rendered(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    noise = np.random.default_rng(0).standard_normal(4000)
    return fftconvolve(noise, h[:, 0]), fftconvolve(noise, h[:, 1])


def _lag(h: np.ndarray, up: int = 8) -> float:
    """Samples by which the right channel lags the left (cross-correlation of white noise)."""
    left, right = _rendered(h)
    left, right = resample_poly(left, up, 1), resample_poly(right, up, 1)
    cc = correlate(right, left, mode="full")
    lags = correlation_lags(right.size, left.size, mode="full")
    window = np.abs(lags) <= 20 * up
    return float(lags[window][np.argmax(cc[window])]) / up


def _band_level_db(h: np.ndarray, lo: float, hi: float) -> np.ndarray:
    spec = np.abs(np.fft.rfft(h, n=4096, axis=0)) ** 2
    f = np.fft.rfftfreq(4096, 1 / SR)
    band = (f >= lo) & (f < hi)
    return 10 * np.log10(spec[band].mean(axis=0))


@pytest.mark.parametrize("name", ["head", "stereo", "stereo_near", "sofa"])
def test_left_source_is_earlier_in_left_channel(receivers: dict[str, Receiver], name: str) -> None:
    rec = receivers[name]
    assert _lag(rec.hrir(math.radians(60), 0.0, SR)) > 3.0
    assert _lag(rec.hrir(math.radians(-60), 0.0, SR)) < -3.0


@pytest.mark.parametrize("name", ["head", "sofa"])
def test_left_source_is_louder_in_left_ear(receivers: dict[str, Receiver], name: str) -> None:
    h = receivers[name].hrir(math.radians(60), 0.0, SR)
    broadband = 10 * np.log10(np.sum(h.astype(np.float64) ** 2, axis=0))
    high = _band_level_db(h, 3000, 7000)
    assert broadband[0] - broadband[1] > 3.0
    assert high[0] - high[1] > 8.0


def test_near_stereo_pair_is_louder_at_the_nearer_mic(receivers: dict[str, Receiver]) -> None:
    h = receivers["stereo_near"].hrir(math.radians(60), 0.0, SR).astype(np.float64)
    level = 10 * np.log10(np.sum(h**2, axis=0))
    # 1/r with mics 0.14 m apart and a source 1 m away at 60 degrees: about 1.05 dB.
    d_left = np.linalg.norm([math.cos(math.radians(60)), math.sin(math.radians(60)) - 0.07])
    d_right = np.linalg.norm([math.cos(math.radians(60)), math.sin(math.radians(60)) + 0.07])
    assert level[0] - level[1] == pytest.approx(20 * math.log10(d_right / d_left), abs=0.05)


def test_far_field_stereo_pair_has_no_level_difference(receivers: dict[str, Receiver]) -> None:
    h = receivers["stereo"].hrir(math.radians(60), 0.0, SR).astype(np.float64)
    level = 10 * np.log10(np.sum(h**2, axis=0))
    assert abs(level[0] - level[1]) < 0.05


@pytest.mark.parametrize("name", ["head", "stereo", "sofa"])
def test_itd_grows_with_lateral_angle_up_to_90_degrees(
    receivers: dict[str, Receiver], name: str
) -> None:
    lags = [_lag(receivers[name].hrir(math.radians(a), 0.0, SR)) for a in range(0, 91, 15)]
    assert lags[0] == pytest.approx(0.0, abs=0.13)
    assert np.all(np.diff(lags) > 0.2), lags


@pytest.mark.parametrize("name", ["head", "stereo", "sofa"])
def test_itd_is_equal_for_front_back_mirror_directions(
    receivers: dict[str, Receiver], name: str
) -> None:
    rec = receivers[name]
    for az in (30, 60, -45):
        mirror = math.copysign(180, az) - az
        itd = broadband_itd(rec.hrirs(np.radians([az, mirror]), 0.0, SR), SR) * SR
        assert itd[0] == pytest.approx(itd[1], abs=0.07)


def test_head_ild_grows_with_frequency(receivers: dict[str, Receiver]) -> None:
    h = receivers["head"].hrir(math.radians(60), 0.0, SR)
    ilds = [
        np.subtract(*_band_level_db(h, lo, hi))
        for lo, hi in [(200, 500), (1000, 2000), (3000, 6000)]
    ]
    assert 0.0 < ilds[0] < ilds[1] < ilds[2]
    assert ilds[0] < 2.0 and ilds[2] > 8.0


def test_fractional_interaural_delay_is_exact_for_the_stereo_pair() -> None:
    rec = StereoArray(spacing_m=0.2)
    for az_deg in (10, 37, 80):
        h = rec.hrir(math.radians(az_deg), 0.0, SR).astype(np.float64)
        spec = np.fft.rfft(h, n=4096, axis=0)
        f = np.fft.rfftfreq(4096, 1 / SR)
        band = (f > 100) & (f < 5000)
        phase = np.unwrap(np.angle(spec[band, 1] * np.conj(spec[band, 0])))
        delay_s = -np.polyfit(2 * math.pi * f[band], phase, 1)[0]
        expected = 0.2 / SPEED_OF_SOUND_M_S * math.sin(math.radians(az_deg))
        assert delay_s == pytest.approx(expected, abs=0.01 / SR)


def test_extra_delay_shifts_both_ears_by_a_fraction_of_a_sample() -> None:
    rec = SphericalHead()
    plain, shifted = rec.hrirs([0.3, 0.3], 0.0, SR, delays_samples=[0.0, 0.37])
    spec = np.fft.rfft(np.stack([plain, shifted]).astype(np.float64), n=4096, axis=1)
    f = np.fft.rfftfreq(4096, 1 / SR)
    band = (f > 100) & (f < 5000)
    for ch in range(2):
        phase = np.unwrap(np.angle(spec[1, band, ch] * np.conj(spec[0, band, ch])))
        assert -np.polyfit(2 * math.pi * f[band] / SR, phase, 1)[0] == pytest.approx(0.37, abs=0.01)


@pytest.mark.parametrize("name", ["head", "stereo", "sofa"])
def test_geometry_predicts_the_broadband_itd(receivers: dict[str, Receiver], name: str) -> None:
    rec = receivers[name]
    az = np.radians(np.arange(0, 91, 10))
    measured = broadband_itd(rec.hrirs(az, 0.0, SR), SR)
    assert np.max(np.abs(measured - rec.geometry.itd(az))) * SR < 0.5


def test_itd_in_seconds_does_not_depend_on_sample_rate() -> None:
    rec = SphericalHead()
    az = np.radians([20.0, 70.0])
    itd_16 = broadband_itd(rec.hrirs(az, 0.0, 16000), 16000)
    itd_48 = broadband_itd(rec.hrirs(az, 0.0, 48000), 48000)
    assert np.allclose(itd_16, itd_48, atol=0.04e-3)


def test_frontal_source_reaches_both_ears_identically(receivers: dict[str, Receiver]) -> None:
    for rec in receivers.values():
        h = rec.hrir(0.0, 0.0, SR)
        assert h.shape == (rec.n_taps(SR), 2) and h.dtype == np.float32
        assert np.allclose(h[:, 0], h[:, 1], atol=1e-4 * np.abs(h).max())


def test_registry_builds_every_kind_and_rejects_unknown(sofa_path: Path) -> None:
    assert isinstance(make_receiver("spherical_head", radius_m=0.1), SphericalHead)
    assert isinstance(make_receiver("stereo_array", spacing_m=0.1), StereoArray)
    assert isinstance(make_receiver("sofa", path=sofa_path), SofaReceiver)
    with pytest.raises(ConfigError, match="expected one of"):
        make_receiver("cardioid")
    with pytest.raises(ConfigError, match="bad parameters"):
        make_receiver("stereo_array", radius_m=0.1)
    with pytest.raises(ConfigError, match="radius_m"):
        SphericalHead(radius_m=2.0)
    assert SphericalHead(0.08).name != SphericalHead(0.09).name
