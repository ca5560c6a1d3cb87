from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.dsp.stft import StftConfig, binaural_features, stft
from slfm_ros.core.errors import ConfigError, InputFormatError


def _binaural(samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    noise = 0.05 * rng.standard_normal((samples, 2))
    return (noise + np.stack([tone, 0.5 * tone], axis=1)).astype(np.float32)


def test_reference_config_hop_and_shape() -> None:
    cfg = StftConfig()
    assert cfg.hop_length == 160
    assert cfg.raw_frames == 256
    features = binaural_features(_binaural(40800), cfg)
    assert features.shape == (4, 256, 256)
    assert features.dtype == np.float32


def test_one_second_config() -> None:
    cfg = StftConfig.for_duration(1.0)
    assert cfg.clip_samples == 16000
    assert cfg.hop_length == 62
    assert cfg.raw_frames >= cfg.time_frames
    assert binaural_features(_binaural(16000), cfg).shape == (4, 256, 256)


def test_value_ranges_and_channel_layout() -> None:
    features = binaural_features(_binaural(40800))
    magnitude, phase = features[[0, 2]], features[[1, 3]]
    assert magnitude.min() >= -1.0 and magnitude.max() <= 1.0
    assert phase.min() >= -1.0 and phase.max() <= 1.0
    # The 440 Hz tone is 6 dB louder on the left: 6 dB is 6 / 80 of the [-1, 1] range.
    tone_bin = round(440 / 16000 * 512)
    level_diff = features[0, tone_bin].mean() - features[2, tone_bin].mean()
    assert level_diff == pytest.approx(20 * math.log10(2) / 80, abs=0.01)


def test_silence_maps_to_floor_and_loud_clips() -> None:
    features = binaural_features(np.zeros((40800, 2), np.float32))
    np.testing.assert_array_equal(features[[0, 2]], -1.0)
    loud = binaural_features(np.full((40800, 2), 1e4, np.float32))
    assert loud[0, 0].max() == 1.0


def test_stft_matches_direct_dft_of_a_frame() -> None:
    cfg = StftConfig()
    x = _binaural(40800)[:, 0].astype(np.float64)
    spec = stft(x, cfg)
    # Frame 10 is centred on sample 1600; the 400-sample window sits in the middle of 512.
    frame = np.zeros(512)
    frame[56:456] = x[1600 - 256 + 56 : 1600 - 256 + 456]
    np.testing.assert_allclose(spec[:, 10], np.fft.rfft(frame)[:256], atol=1e-9)


def test_matches_torch_stft_without_window() -> None:
    torch = pytest.importorskip("torch")
    cfg = StftConfig()
    x = _binaural(40800)[:, 1].astype(np.float64)
    reference = torch.stft(
        torch.from_numpy(x),
        n_fft=512,
        hop_length=160,
        win_length=400,
        window=torch.ones(400, dtype=torch.float64),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    ).numpy()[:256, :256]
    np.testing.assert_allclose(stft(x, cfg), reference, atol=1e-8)


def test_torch_stft_matches_numpy_stft() -> None:
    torch = pytest.importorskip("torch")
    from slfm_ros.core.dsp.stft import stft_torch

    cfg = StftConfig.for_duration(1.0)
    x = _binaural(cfg.clip_samples)
    got = stft_torch(torch.from_numpy(x.T.copy()), cfg).numpy()
    assert got.shape == (2, cfg.freq_bins, cfg.time_frames)
    for ch in range(2):
        np.testing.assert_allclose(got[ch], stft(x[:, ch], cfg), atol=2e-4, rtol=0)


@pytest.mark.parametrize(
    ("seconds", "phase_reference"),
    [(2.55, "absolute"), (1.0, "absolute"), (1.0, "interaural")],
)
def test_numpy_and_torch_features_agree(seconds: float, phase_reference: str) -> None:
    torch = pytest.importorskip("torch")
    from slfm_ros.core.dsp.stft import binaural_features_torch

    torch.set_num_threads(1)
    cfg = StftConfig.for_duration(seconds, phase_reference=phase_reference)
    batch = np.stack([_binaural(cfg.clip_samples, seed) for seed in range(2)])
    expected = np.stack([binaural_features(a, cfg) for a in batch])
    got = binaural_features_torch(torch.from_numpy(batch).transpose(1, 2), cfg).numpy()
    assert got.shape == (2, 4, 256, cfg.time_frames)
    np.testing.assert_allclose(got[:, [0, 2]], expected[:, [0, 2]], atol=1e-4, rtol=0)
    # Phase is compared on the circle (-1 and 1 are the same angle).
    phase_diff = np.angle(np.exp(1j * math.pi * (got[:, [1, 3]] - expected[:, [1, 3]])))
    assert np.abs(phase_diff).max() / math.pi < 1e-4


def _delayed_noise(samples: int, delay: int, seed: int) -> np.ndarray:
    """White noise at the left ear and the same noise ``delay`` samples later at the right."""
    noise = np.random.default_rng(seed).standard_normal(samples + delay)
    return np.stack([noise[delay:], noise[:samples]], axis=1).astype(np.float32)


def test_interaural_phase_is_the_delay_whatever_the_signal() -> None:
    cfg = StftConfig.for_duration(1.0, phase_reference="interaural")
    delay = 3  # samples: the right ear hears the source 3 / 16000 s later
    first = binaural_features(_delayed_noise(cfg.clip_samples, delay, seed=0), cfg)
    second = binaural_features(_delayed_noise(cfg.clip_samples, delay, seed=1), cfg)
    low = slice(1, 40)  # bins whose phase difference 2 pi k delay / n_fft stays below pi
    expected = 2 * np.arange(low.start, low.stop) * delay / cfg.n_fft  # in units of pi
    for features in (first, second):
        left_plane = np.median(features[1, low], axis=1)
        np.testing.assert_allclose(left_plane, expected, atol=0.02)
        np.testing.assert_allclose(features[3], -features[1], atol=1e-6)
    # The absolute phases of the same clips have nothing in common.
    absolute = StftConfig.for_duration(1.0)
    a = binaural_features(_delayed_noise(cfg.clip_samples, delay, seed=0), absolute)[1, low]
    b = binaural_features(_delayed_noise(cfg.clip_samples, delay, seed=1), absolute)[1, low]
    circular_difference = np.angle(np.exp(1j * math.pi * (a - b))) / math.pi
    assert np.abs(circular_difference).mean() > 0.3  # independent phases: 0.5 on average


@pytest.mark.parametrize("phase_reference", ["absolute", "interaural"])
def test_swapping_the_ears_permutes_the_planes(phase_reference: str) -> None:
    cfg = StftConfig.for_duration(1.0, phase_reference=phase_reference)
    clip = _binaural(cfg.clip_samples)
    features = binaural_features(clip, cfg)
    swapped = binaural_features(clip[:, ::-1].copy(), cfg)
    np.testing.assert_allclose(swapped, features[[2, 3, 0, 1]], atol=1e-6)


def test_wrong_length_and_bad_config() -> None:
    with pytest.raises(InputFormatError, match="40800"):
        binaural_features(np.zeros((16000, 2), np.float32))
    with pytest.raises(InputFormatError):
        binaural_features(np.zeros((40800,), np.float32))
    with pytest.raises(ConfigError, match="win_length"):
        StftConfig(win_length=600)
    with pytest.raises(ConfigError, match="freq_bins"):
        StftConfig(freq_bins=300)
    with pytest.raises(ConfigError, match="phase_reference"):
        StftConfig(phase_reference="relative")
