"""mic_node as a separate process on a real sound server (PulseAudio null sink), over DDS.

The test plays a binaural signal (up-chirp left, down-chirp right) into the sink while mic_node
captures the sink's monitor; the samples it publishes must be the played ones, in the right
channels, with stamps one chunk apart, and AudioInfo must reach a subscriber that joins late.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import chirp

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("audio_common_msgs")

from audio_common_msgs.msg import AudioDataStamped, AudioInfo  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from node_process import ListenerNode, start_node, stop  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from slfm_ros.core.dsp.audio_format import decode_interleaved  # noqa: E402
from slfm_ros.nodes.msg_conversions import stamp_to_ns  # noqa: E402

RATE = 48000
CHUNK_MS = 20


def binaural_chirps(duration_s: float) -> np.ndarray:
    """(frames, 2) float32: an up-chirp on the left, a down-chirp on the right."""
    t = np.arange(int(duration_s * RATE)) / RATE
    fade = np.minimum(1.0, np.minimum(t, duration_s - t) / 0.01)
    left = chirp(t, 300.0, duration_s, 4000.0) * fade
    right = chirp(t, 4000.0, duration_s, 300.0) * fade
    return (0.4 * np.stack([left, right], axis=1)).astype(np.float32)


def correlation_at_best_lag(captured: np.ndarray, played: np.ndarray) -> tuple[float, int]:
    """(Pearson correlation, lag in frames) of ``played`` found inside ``captured``."""
    n = len(played)
    size = 2 * len(captured)
    xcorr = np.fft.irfft(np.fft.rfft(captured, size) * np.conj(np.fft.rfft(played, size)))
    lag = int(np.argmax(xcorr[: len(captured) - n + 1]))
    return float(np.corrcoef(captured[lag : lag + n], played)[0, 1]), lag


class Listener(ListenerNode):
    """A test node in its own context, on the domain of ``ros_env``."""

    def __init__(self, ns: str) -> None:
        super().__init__("mic_test_listener")
        self.ns = ns
        self.audio: list[AudioDataStamped] = []
        self.infos: list[AudioInfo] = []
        self.diagnostics: list[DiagnosticArray] = []
        reliable = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(
            AudioDataStamped, f"{ns}/audio/audio_stamped", self.audio.append, reliable
        )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)

    def subscribe_info(self) -> None:
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.node.create_subscription(
            AudioInfo, f"{self.ns}/audio/audio_info", self.infos.append, latched
        )


def test_mic_node_publishes_the_played_signal_with_capture_stamps(pulse_server, ros_env) -> None:
    ns = "/mic_test"
    listener = Listener(ns)
    node = start_node(
        "slfm_ros.nodes.mic_node",
        ros_env,
        ns,
        "device:=pulse",
        f"chunk_ms:={CHUNK_MS}",
        "sample_format:=S16LE",
    )
    try:
        assert listener.spin_until(lambda: len(listener.audio) >= 5, 20.0), stop(node)[1]
        played = binaural_chirps(0.8)
        playback = pulse_server.play(played)
        listener.spin_until(playback.done.is_set, 10.0)
        playback.wait()
        n = len(listener.audio)
        listener.spin_until(lambda: len(listener.audio) >= n + 15, 3.0)
        # A subscriber that joins now still receives the AudioInfo published at start.
        listener.subscribe_info()
        assert listener.spin_until(lambda: bool(listener.infos), 5.0)
        listener.spin_until(lambda: bool(listener.diagnostics), 3.0)
    finally:
        code, out = stop(node)
        listener_msgs, infos, diags = listener.audio, listener.infos, listener.diagnostics
        listener.close()
    assert code == 0, out

    info = infos[0]
    assert (info.channels, info.sample_rate, info.sample_format, info.coding_format) == (
        2,
        RATE,
        "S16LE",
        "wave",
    )
    frames = RATE * CHUNK_MS // 1000
    assert all(len(m.audio.data) == frames * 2 * 2 for m in listener_msgs)
    assert {m.header.frame_id for m in listener_msgs} == {"mic_link"}

    stamps = np.array([stamp_to_ns(m.header.stamp) for m in listener_msgs])
    deltas_ms = np.diff(stamps) / 1e6
    print(
        f"stamp deltas: mean {deltas_ms.mean():.4f} ms, max |delta - {CHUNK_MS}| "
        f"{np.abs(deltas_ms - CHUNK_MS).max():.4f} ms over {len(deltas_ms)} chunks"
    )
    assert np.all(np.abs(deltas_ms - CHUNK_MS) < 0.5)

    captured = decode_interleaved(b"".join(bytes(m.audio.data) for m in listener_msgs), "S16LE", 2)
    corr_l, lag_l = correlation_at_best_lag(captured[:, 0], played[:, 0])
    corr_r, lag_r = correlation_at_best_lag(captured[:, 1], played[:, 1])
    swapped, _ = correlation_at_best_lag(captured[:, 0], played[:, 1])
    print(f"correlation left {corr_l:.4f}, right {corr_r:.4f}, left vs played right {swapped:.3f}")
    assert corr_l > 0.9 and corr_r > 0.9
    assert abs(lag_l - lag_r) <= 1
    assert swapped < 0.3

    # Stamp of the first played frame against the time it was written to the player; see
    # test_audio_device for why a null sink allows it to be up to one render period early.
    captured_ns = stamps[0] + lag_l * 1e9 / RATE
    after_write_ms = (captured_ns - playback.written_ns) / 1e6
    print(f"stamp of the first played frame - its write time: {after_write_ms:+.1f} ms")
    assert -30.0 < after_write_ms < 50.0

    statuses = [s for d in diags for s in d.status if s.name == "mic_node: audio capture"]
    assert statuses, "no mic_node status on /diagnostics"
    values = {kv.key: kv.value for kv in statuses[-1].values}
    assert values["device"] == "pulse"
    assert values["overflows"] == "0"
    assert statuses[-1].level == b"\x00", statuses[-1].message


def test_mic_node_with_a_wrong_device_lists_the_devices_and_fails(pulse_server, ros_env) -> None:
    node = start_node("slfm_ros.nodes.mic_node", ros_env, "/mic_bad", "device:=no_such_microphone")
    code, out = node.returncode, ""
    try:
        out, _ = node.communicate(timeout=20)
        code = node.returncode
    finally:
        if node.poll() is None:
            code, out = stop(node)
    assert code != 0
    assert "no_such_microphone" in out
    assert "available input devices" in out and "'pulse'" in out
