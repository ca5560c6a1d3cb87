"""The delay curve of a measured head, and the node's ``receiver: measured``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.gcc_phat import GccPhatAzimuth
from slfm_ros.core.geometry.interaural import MeasuredItdCurve, SphericalHeadGeometry
from slfm_ros.core.geometry.measured_head import itd_curve_from_hrirs, measured_receiver
from slfm_ros.core.sim.receivers import SofaReceiver
from slfm_ros.core.sim.sofa import SofaHrirSet, horizontal_ring, write_sofa
from slfm_ros.core.streaming.config import PipelineConfig
from slfm_ros.core.streaming.estimator_setup import receiver_geometry

KEMAR_LARGE = Path(__file__).resolve().parents[2] / "data" / "MIT_KEMAR_large_pinna.sofa"
RATE = 48000.0


def delayed_impulse(delay_samples: float, taps: int = 256) -> np.ndarray:
    """A band-limited impulse at a fractional delay."""
    n = np.arange(taps)
    return (np.sinc(n - delay_samples) * np.hanning(taps)).astype(np.float32)


def sphere_ring(azimuths_deg: np.ndarray, radius_m: float = 0.09) -> SofaHrirSet:
    """HRIRs that are pure delays following a rigid sphere's interaural delays, the far ear
    quieter."""
    sphere = SphericalHeadGeometry(radius_m)
    ir = []
    for az in np.radians(azimuths_deg):
        itd = float(sphere.itd(az)) * RATE
        side = 0.5 * math.sin(az)
        left, right = delayed_impulse(100 - itd / 2), delayed_impulse(100 + itd / 2)
        ir.append([(1 + side) * left, (1 - side) * right])
    return horizontal_ring(np.array(ir), np.radians(azimuths_deg), RATE, 1.4)


def test_the_curve_of_pure_delays_is_their_delay_and_inverts() -> None:
    azimuths = np.arange(-180.0, 180.0, 10.0)
    curve = itd_curve_from_hrirs(sphere_ring(azimuths), max_frequency_hz=20000.0)
    sphere = SphericalHeadGeometry(0.09)
    probe = np.radians([-80.0, -35.0, 0.0, 20.0, 65.0])
    assert np.allclose(curve.itd(probe), sphere.itd(probe), atol=3e-6)
    # A source behind shares its front mirror's delay, as in the geometric models.
    behind, front = curve.itd(np.radians([150.0, 30.0]))
    assert behind == pytest.approx(front)
    found = curve.azimuth_from_itd(float(sphere.itd(math.radians(42.0))))
    assert math.degrees(found) == pytest.approx(42.0, abs=1.0)


def test_a_curve_that_wiggles_is_made_increasing() -> None:
    az = np.radians([-90.0, -60.0, -30.0, 0.0, 30.0, 60.0, 75.0, 90.0])
    itd = np.array([-700, -520, -260, 0, 260, 520, 720, 690]) * 1e-6
    curve = MeasuredItdCurve(tuple(az), tuple(itd))
    assert np.all(np.diff(curve.itds_s) > 0)
    # The two last points pool to their mean, the rest are kept.
    assert curve.itds_s[-1] == pytest.approx(705e-6, abs=1e-8)
    assert curve.itds_s[3] == pytest.approx(0.0, abs=1e-8)
    assert curve.max_itd == pytest.approx(705e-6, abs=1e-8)


def test_a_measured_kemar_curve_lets_gcc_phat_place_sounds_through_that_head() -> None:
    curve = measured_receiver(KEMAR_LARGE)
    assert np.all(np.diff(curve.itds_s) > 0)
    assert 5e-4 < curve.max_itd < 9e-4
    head = SofaReceiver(KEMAR_LARGE)
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(16000)
    errors = {}
    for name, geometry in (("measured", curve), ("sphere", SphericalHeadGeometry(0.0875))):
        gcc = GccPhatAzimuth(geometry)
        found = []
        for az in (-70.0, -40.0, -15.0, 10.0, 35.0, 55.0, 80.0):
            hrir = head.hrir(math.radians(az), 0.0, 16000)
            audio = np.stack([np.convolve(noise, hrir[:, ear]) for ear in (0, 1)], 1)
            found.append(abs(math.degrees(gcc.estimate(audio, 16000).angle) - az))
        errors[name] = float(np.mean(found))
    assert errors["measured"] < 3.0
    assert errors["measured"] < errors["sphere"]


def test_a_set_without_a_horizontal_ring_is_refused(tmp_path: Path) -> None:
    ring = sphere_ring(np.arange(-180.0, 180.0, 30.0))
    raised = ring.source_positions.copy()
    raised[:, 1] = math.radians(30.0)
    path = tmp_path / "raised.sofa"
    write_sofa(path, SofaHrirSet(ring.ir, raised, RATE))
    with pytest.raises(InputFormatError, match="horizontal plane"):
        measured_receiver(path)


def test_the_node_reads_a_measured_receiver_and_explains_a_missing_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="hrtf_path"):
        PipelineConfig(receiver="measured")
    geometry = receiver_geometry(PipelineConfig(receiver="measured", hrtf_path=str(KEMAR_LARGE)))
    assert isinstance(geometry, MeasuredItdCurve)
    missing = PipelineConfig(receiver="measured", hrtf_path=str(tmp_path / "none.sofa"))
    with pytest.raises(ConfigError, match="receiver: measured: SOFA file not found"):
        receiver_geometry(missing)
