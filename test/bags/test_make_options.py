"""``slfm bag make --receiver KIND[:VALUE]`` and ``--no-ground-truth``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest

from slfm_ros.bags.reader import open_bag
from slfm_ros.bags.scenarios import StreamSettings, receiver_settings
from slfm_ros.core.errors import ConfigError

SOFA = Path(__file__).resolve().parents[1] / "data" / "MIT_KEMAR_large_pinna.sofa"


def test_receiver_forms() -> None:
    assert receiver_settings("stereo_array") == {"receiver": "stereo_array"}
    assert receiver_settings("stereo_array:0.3") == {
        "receiver": "stereo_array",
        "mic_spacing_m": 0.3,
    }
    assert receiver_settings("spherical_head:0.09") == {
        "receiver": "spherical_head",
        "head_radius_m": 0.09,
    }
    assert receiver_settings(f"sofa:{SOFA}") == {"receiver": "sofa", "sofa_path": str(SOFA)}
    for bad, message in (
        ("sofa", "needs its file"),
        ("stereo_array:wide", "not a size in metres"),
        ("spherical_head:3", "0.01-1 m"),
        ("cardioid:0.2", "expected sofa:FILE"),
    ):
        with pytest.raises(ConfigError, match=message):
            receiver_settings(bad)
    with pytest.raises(ConfigError, match="needs sofa_path"):
        StreamSettings(receiver="sofa")


def test_the_receiver_spacing_sets_the_interaural_delay() -> None:
    wide = StreamSettings(**receiver_settings("stereo_array:0.30")).make_receiver()  # type: ignore[arg-type]
    narrow = StreamSettings(**receiver_settings("stereo_array:0.10")).make_receiver()  # type: ignore[arg-type]
    assert wide.geometry.max_itd == pytest.approx(3 * narrow.geometry.max_itd, rel=1e-6)


def _itd_sign(audio: np.ndarray) -> float:
    """Sign of the lag of the cross-correlation peak: + when the right channel lags."""
    left, right = audio[:, 0].astype(np.float64), audio[:, 1].astype(np.float64)
    spec = np.fft.rfft(right, 4 * left.size) * np.conj(np.fft.rfft(left, 4 * left.size))
    corr = np.fft.irfft(spec / np.maximum(np.abs(spec), 1e-12))
    lag = int(np.argmax(np.concatenate([corr[-60:], corr[:61]]))) - 60
    return float(np.sign(lag))


def test_bag_without_ground_truth_through_a_measured_head(
    tmp_path: Path, slfm: Callable[[Iterable[str]], object]
) -> None:
    out = tmp_path / "robot"
    argv = ["bag", "make", "--scenario", "turning-speaker", "--out", str(out), "--seconds", "2"]
    result = slfm([*argv, "--receiver", f"sofa:{SOFA}", "--no-ground-truth", "--fps", "5"])
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    with open_bag(out) as reader:
        topics = set(reader.topics)
        assert topics == {
            "/audio/audio_info",
            "/audio/audio_stamped",
            "/camera/image_raw",
            "/camera/camera_info",
            "/odom",  # a robot records its odometry; only the simulator knows the truth
        }
    with_truth = tmp_path / "truth"
    assert slfm([*argv[:4], "--out", str(with_truth), "--seconds", "2"]).code == 0  # type: ignore[attr-defined]
    with open_bag(with_truth) as reader:
        assert "/ground_truth/sound_direction" in reader.topics


def test_the_measured_head_is_what_the_bag_hears() -> None:
    """From 4 to 5 s the talker of turning-speaker is 20-48 deg to the left: through the
    KEMAR the left ear hears it first and louder."""
    from slfm_ros.bags.scenarios import render_scene

    settings = StreamSettings(sample_rate=16000, **receiver_settings(f"sofa:{SOFA}"))  # type: ignore[arg-type]
    scene = render_scene("turning-speaker", 5.0, seed=1, settings=settings)
    assert np.degrees(scene.source_azimuth(np.array([4.0, 5.0]))) == pytest.approx(
        [20, 48.3], abs=0.5
    )
    audio = scene.audio[64000:80000]
    assert _itd_sign(audio) > 0
    assert float(np.mean(audio[:, 0] ** 2)) > float(np.mean(audio[:, 1] ** 2))
