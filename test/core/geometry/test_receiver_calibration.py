"""Receiver self-calibration: an interaural model fitted to delays heard while turning."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.dsp.binaural_cues import CueConfig, binaural_cues
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.geometry.interaural import FreeFieldPair, SphericalHeadGeometry
from slfm_ros.core.geometry.receiver_calibration import (
    CalibratedReceiver,
    CalibrationError,
    fit_receiver,
    peak_lags,
)

MAX_LAG_S = 1.5e-3


def turning_delays(
    geometry: FreeFieldPair | SphericalHeadGeometry,
    sources_deg: list[float],
    outliers: float = 0.0,
    sweep_deg: float = 120.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peak lags of windows heard while the robot sweeps its yaw, one stretch per source;
    a fraction ``outliers`` of the windows hold a reflection's lag anywhere in range."""
    rng = np.random.default_rng(seed)
    lags, yaws, ids = [], [], []
    for k, source in enumerate(sources_deg):
        yaw = np.radians(np.linspace(-sweep_deg / 2, sweep_deg / 2, 80))
        lag = geometry.itd(math.radians(source) - yaw) + rng.normal(0, 8e-6, yaw.size)
        bad = rng.random(yaw.size) < outliers
        lag[bad] = rng.uniform(-MAX_LAG_S, MAX_LAG_S, int(bad.sum()))
        lags.append(lag)
        yaws.append(yaw + 0.7 * k)  # the yaw's zero is arbitrary in every stretch
        ids.append(np.full(yaw.size, k))
    return np.concatenate(lags), np.concatenate(yaws), np.concatenate(ids)


@pytest.mark.parametrize(
    ("geometry", "receiver", "size"),
    [
        (FreeFieldPair(spacing_m=0.23), "free_field", 0.23),
        (SphericalHeadGeometry(radius_m=0.095), "spherical_head", 0.095),
    ],
)
def test_the_family_and_size_are_recovered_despite_reflections(
    geometry: FreeFieldPair | SphericalHeadGeometry, receiver: str, size: float
) -> None:
    lags, yaws, ids = turning_delays(geometry, [30.0, 150.0, -70.0], outliers=0.3)
    found = fit_receiver(lags, yaws, ids, max_lag_s=MAX_LAG_S)
    assert found.receiver == receiver
    assert found.size_m == pytest.approx(size, abs=0.002)
    assert found.runner_up["receiver"] != receiver and found.runner_up["cost_ratio"] > 1.0
    assert found.inlier_fraction == pytest.approx(0.7, abs=0.08)
    assert found.rms_residual_ms < 0.02
    assert found.max_itd_s == pytest.approx(geometry.max_itd, rel=0.02)


def test_too_little_turning_is_refused_with_what_was_found() -> None:
    lags, yaws, ids = turning_delays(FreeFieldPair(0.2), [20.0], sweep_deg=10.0)
    with pytest.raises(CalibrationError, match=r"turned by 20 deg or more; found 0 in 0"):
        fit_receiver(lags, yaws, ids, max_lag_s=MAX_LAG_S)


def test_delays_that_follow_no_curve_are_refused() -> None:
    lags, yaws, ids = turning_delays(FreeFieldPair(0.2), [20.0, -40.0], outliers=1.0)
    with pytest.raises(CalibrationError, match="follow one interaural curve"):
        fit_receiver(lags, yaws, ids, max_lag_s=MAX_LAG_S)


def test_it_round_trips_and_describes_node_parameters() -> None:
    lags, yaws, ids = turning_delays(FreeFieldPair(0.3), [45.0])
    found = fit_receiver(lags, yaws, ids, max_lag_s=MAX_LAG_S)
    again = CalibratedReceiver.from_dict(found.to_dict())
    assert again.receiver == found.receiver
    assert again.size_m == pytest.approx(found.size_m, abs=1e-5)
    params = found.node_parameters()
    assert params["receiver"] == "free_field"
    assert params["mic_spacing_m"] == pytest.approx(0.3, abs=0.002)
    with pytest.raises(ConfigError, match="outside"):
        CalibratedReceiver.from_dict({**found.to_dict(), "size_m": 3.0})
    with pytest.raises(ConfigError, match="calibrated_receiver"):
        CalibratedReceiver.from_dict({"receiver": "free_field"})


def test_peak_lags_reads_a_delay_off_the_front_end() -> None:
    cfg = CueConfig()
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(cfg.window_samples + 40)
    # The right channel lags the left by 5 samples: positive lag, source on the left.
    window = np.stack([noise[5 : 5 + cfg.window_samples], noise[: cfg.window_samples]], axis=1)
    gcc = binaural_cues(window.astype(np.float32), cfg)[None, : cfg.n_lags]
    lag, height = peak_lags(gcc, cfg.lag_seconds())
    assert lag[0] == pytest.approx(5 / cfg.sample_rate, abs=2e-6)
    assert height[0] > 0.5
