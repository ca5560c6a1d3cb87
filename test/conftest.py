"""Shared test set-up.

- The repository root is importable (``slfm_ros``, ``training``) even without an editable install.
- ROS 2 traffic stays on this host and in a ROS domain that no other test run on the machine uses:
  the session claims one domain for itself, the ``ros_env`` fixture a fresh one per test.
- ``pulse_server``: a private PulseAudio daemon with a null sink, so audio capture is tested on a
  real sound server without hardware. Audio played into the sink comes back from its monitor
  source; with PULSE_SINK and PULSE_SOURCE set, PortAudio's ALSA device ``pulse`` plays into the
  sink and captures its monitor.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pytest

if TYPE_CHECKING:
    from slfm_ros.core.sim.scene import SceneConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Numeric libraries: one thread each, the machine is shared (a caller's setting wins).
os.environ.setdefault("OMP_NUM_THREADS", "1")

# ROS 2: discovery on this host only (Humble reads the first variable, Jazzy and later the second).
os.environ["ROS_LOCALHOST_ONLY"] = "1"
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

# Domain ids 1..100 are free of port clashes on Linux; 0 is everyone's default.
ROS_DOMAINS = range(1, 101)
_DOMAIN_LOCKS = Path(tempfile.gettempdir()) / "slfm_ros-ros-domains"
_domain_counter = itertools.count(os.getpid())


def _claim_ros_domain() -> tuple[int, IO[str]]:
    """Claims a ROS domain id no other process on this machine holds, by an exclusive lock on a
    file per id; the id stays claimed until the returned file is closed (or the process ends).
    The search starts at a process-dependent id so consecutive claims differ."""
    _DOMAIN_LOCKS.mkdir(exist_ok=True)
    start = next(_domain_counter)
    for k in range(len(ROS_DOMAINS)):
        domain = ROS_DOMAINS[(start + k) % len(ROS_DOMAINS)]
        handle = open(_DOMAIN_LOCKS / f"{domain}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return domain, handle
    raise RuntimeError(
        f"all ROS domain ids {ROS_DOMAINS.start}..{ROS_DOMAINS.stop - 1} are held by other test "
        f"runs (locks in {_DOMAIN_LOCKS}); wait for them to finish"
    )


_session_domain: IO[str] | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Puts the whole session in a domain of its own, for tests that start ROS without
    ``ros_env``."""
    global _session_domain
    domain, _session_domain = _claim_ros_domain()
    os.environ["ROS_DOMAIN_ID"] = os.environ["SLFM_TEST_SESSION_DOMAIN"] = str(domain)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _session_domain is not None:
        _session_domain.close()


@pytest.fixture
def ros_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment for a test that talks ROS 2: a ROS_DOMAIN_ID of its own (also set in this
    process, so ``rclpy.init()`` uses it) and localhost-only discovery. Pass the returned dict as
    ``env=`` to node subprocesses."""
    domain, lock = _claim_ros_domain()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    try:
        yield dict(os.environ)
    finally:
        lock.close()


PULSE_SINK_NAME = "slfm_test_sink"
PULSE_RATE = 48000


@dataclass
class Playback:
    """A signal being played. Wall times (time.time_ns) of its first frame: ``written_ns`` when
    it was handed to PortAudio, ``first_sample_ns`` when the sink reports playing it (PortAudio's
    output DAC time, which includes the sink's latency)."""

    done: threading.Event = field(default_factory=threading.Event)
    origins_ns: list[float] = field(default_factory=list)
    written_ns: int = 0
    stream: Any = None

    @property
    def first_sample_ns(self) -> int:
        return round(statistics.median(self.origins_ns))

    def wait(self, timeout: float = 10.0) -> None:
        if not self.done.wait(timeout):
            raise TimeoutError(f"playback did not finish within {timeout} s")
        self.stream.stop()
        self.stream.close()


@dataclass
class PulseServer:
    """A running private PulseAudio daemon; ``env`` holds the variables clients need."""

    runtime_dir: Path
    sink: str
    env: dict[str, str]

    def play(self, samples: npt.NDArray[np.float32], sample_rate: int = PULSE_RATE) -> Playback:
        """Starts playing (frames, channels) float32 ``samples`` into the sink; returns at once."""
        import sounddevice as sd

        playback = Playback()
        position = 0

        def callback(outdata: Any, frames: int, time_info: Any, status: Any) -> None:
            nonlocal position
            now_ns = time.time_ns()
            dac_ns = now_ns + (time_info.outputBufferDacTime - time_info.currentTime) * 1e9
            if position == 0:
                playback.written_ns = now_ns
            if position < len(samples):
                playback.origins_ns.append(dac_ns - position * 1e9 / sample_rate)
            chunk = samples[position : position + frames]
            outdata[: len(chunk)] = chunk
            outdata[len(chunk) :] = 0
            position += frames
            # A little silence after the signal so the sink renders all of it.
            if position >= len(samples) + sample_rate // 4:
                playback.done.set()

        playback.stream = sd.OutputStream(
            device="pulse",
            samplerate=sample_rate,
            channels=samples.shape[1],
            dtype="float32",
            blocksize=sample_rate // 100,
            callback=callback,
        )
        playback.stream.start()
        return playback


def _refresh_portaudio() -> None:
    import sounddevice as sd

    sd._terminate()
    sd._initialize()


@pytest.fixture(scope="session")
def pulse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    """A private PulseAudio daemon with a 48 kHz stereo null sink, for this test session.

    The test process's environment points at it while it runs (PortAudio is re-initialised so
    the ``pulse`` device appears); ``server.env`` is the environment for node subprocesses.
    """
    binary = shutil.which("pulseaudio")
    if binary is None:
        pytest.skip("the 'pulseaudio' binary is not installed (Debian package pulseaudio)")
    runtime_dir = tmp_path_factory.mktemp("pulse")
    env = {
        "XDG_RUNTIME_DIR": str(runtime_dir),
        "PULSE_SERVER": f"unix:{runtime_dir}/pulse/native",
        "PULSE_SINK": PULSE_SINK_NAME,
        "PULSE_SOURCE": f"{PULSE_SINK_NAME}.monitor",
    }
    started = subprocess.run(
        [
            binary,
            "--daemonize=yes",
            "--exit-idle-time=-1",
            "-n",
            f"--log-target=file:{runtime_dir}/pulse.log",
            "--load=module-native-protocol-unix",
            f"--load=module-null-sink sink_name={PULSE_SINK_NAME} rate={PULSE_RATE} channels=2",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    pid_file = runtime_dir / "pulse" / "pid"
    socket = runtime_dir / "pulse" / "native"
    deadline = time.monotonic() + 10.0
    while not (socket.exists() and pid_file.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    if started.returncode != 0 or not socket.exists():
        raise RuntimeError(
            f"pulseaudio did not start (exit {started.returncode}): {started.stderr.strip()}"
        )
    pid = int(pid_file.read_text().split()[0])
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        _refresh_portaudio()
        try:
            yield PulseServer(runtime_dir=runtime_dir, sink=PULSE_SINK_NAME, env=env)
        finally:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5.0
            while pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
    _refresh_portaudio()


@pytest.fixture(scope="session")
def save_tiny_model() -> Callable[..., Path]:
    """save_tiny_model(folder, seed=0, **card_extra): a randomly initialised model folder (card
    + weights) of the ``small`` preset with a 48 x 64 quarter-width visual network, fast enough
    for tests; ``card_extra`` adds card entries."""
    import torch

    from slfm_ros.core.models.audio_direction import AudioDirectionNet
    from slfm_ros.core.models.checkpoint import save_model
    from slfm_ros.core.models.config import load_model_config
    from slfm_ros.core.models.visual_pose import VisualPoseNet

    cfg = load_model_config(
        {"preset": "small", "visual": {"image_height": 48, "image_width": 64, "width_mult": 0.25}}
    )

    def save(folder: Path, seed: int = 0, **card_extra: object) -> Path:
        torch.manual_seed(seed)
        return save_model(
            folder,
            cfg,
            AudioDirectionNet(cfg.audio),
            VisualPoseNet(cfg.visual),
            card_extra=card_extra,
        )

    return save


@pytest.fixture(scope="session")
def clean_speech_scene() -> Callable[..., SceneConfig]:
    """clean_speech_scene(num_views=3, max_turn_deg=40.0, azimuth_deg=(-90, 90),
    snr_db=(30, 40), **overrides) -> SceneConfig: a small, fast world for tests that score
    estimators on a few samples: 1 s clips, one speech target and no interferers in free field,
    1024-pixel panoramas, images without effects. ``overrides`` replace whole top-level entries
    of the config (``clip_seconds``, ``image``, ``receivers``, ...)."""
    from slfm_ros.core.sim.scene import SceneConfig

    def build(
        num_views: int = 3,
        max_turn_deg: float = 40.0,
        azimuth_deg: tuple[float, float] = (-90.0, 90.0),
        snr_db: tuple[float, float] = (30.0, 40.0),
        **overrides: Any,
    ) -> SceneConfig:
        data: dict[str, Any] = {
            "clip_seconds": 1.0,
            "views": {"num_views": num_views, "max_turn_deg": max_turn_deg},
            "image": {"effects": {}},
            "panoramas": {"width": 1024},
            "room": {"anechoic_probability": 1.0},
            "sources": {
                "target_kinds": ["speech"],
                "interferers": [0, 0],
                "target_azimuth_deg": list(azimuth_deg),
            },
            "noise": {"snr_db": list(snr_db)},
        }
        return SceneConfig.from_dict({**data, **overrides})

    return build
