"""StreamingLocalizer on synthetic streams with known truth, and on each kind of bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.conventions import angular_error
from slfm_ros.core.dsp.audio_format import encode_interleaved
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.events import EventLevel, PipelineEvent
from slfm_ros.core.sim.synthetic_stream import SyntheticScene, SyntheticStream
from slfm_ros.core.streaming.config import PipelineConfig
from slfm_ros.core.streaming.pipeline import StreamingLocalizer, WindowResult

NS = 1_000_000_000
START_NS = 1_700_000_000 * NS + 123_456_789  # arbitrary epoch stamp, off the hop grid
CHUNK_S = 0.02


def classic(**overrides: object) -> PipelineConfig:
    return PipelineConfig(estimator="classic", **overrides)  # type: ignore[arg-type]


def feed(
    loc: StreamingLocalizer,
    stream: SyntheticStream,
    sample_format: str = "S16LE",
    images: bool = True,
    audio: bool = True,
) -> tuple[list[WindowResult], list[PipelineEvent]]:
    """Interleave audio chunks and images in capture order, stepping after every message."""
    messages: list[tuple[int, str, object]] = []
    if audio:
        for stamp, chunk in stream.audio_chunks(CHUNK_S):
            # A chunk is complete (and sent) at the end of its last sample.
            messages.append((stamp + int(CHUNK_S * NS), "audio", (stamp, chunk)))
    if images:
        for stamp in stream.image_stamps():
            messages.append((stamp, "image", stamp))
    messages.sort(key=lambda m: (m[0], m[1]))
    results: list[WindowResult] = []
    events: list[PipelineEvent] = []
    for _, kind, payload in messages:
        if kind == "audio":
            stamp, chunk = payload  # type: ignore[misc]
            events += loc.on_audio(encode_interleaved(chunk, sample_format), stamp)
        else:
            stamp = payload  # type: ignore[assignment]
            events += loc.on_image(stream.image_at(stamp), stamp)
        for r in loc.step():
            results.append(r)
            events += r.events
    return results, events


def codes(events: list[PipelineEvent] | tuple[PipelineEvent, ...]) -> set[str]:
    return {e.code for e in events}


@pytest.fixture(scope="module")
def stream() -> SyntheticStream:
    return SyntheticStream(SyntheticScene(), duration_s=3.0, start_ns=START_NS)


@pytest.fixture(scope="module")
def steady(stream: SyntheticStream) -> tuple[list[WindowResult], list[PipelineEvent]]:
    loc = StreamingLocalizer(classic())
    assert loc.on_audio_info(2, 48000, "S16LE", "wave") == []
    return feed(loc, stream)


def test_windows_lie_on_the_hop_grid_one_hop_apart(steady) -> None:
    results, events = steady
    hop = int(0.1 * NS)
    ends = [r.end_ns for r in results]
    assert len(ends) >= 25
    assert all(e % hop == 0 for e in ends)
    assert np.all(np.diff(ends) == hop)
    assert events == []


def test_azimuth_matches_the_truth_once_a_full_window_is_buffered(steady, stream) -> None:
    results, _ = steady
    full = [r for r in results if r.end_ns - NS >= stream.start_ns]
    early = [r for r in results if r.end_ns - NS < stream.start_ns]
    assert len(full) >= 15
    assert all(r.azimuth is None and r.audio_note for r in early)
    errors = [math.degrees(angular_error(r.azimuth.angle, stream.scene.azimuth_rad)) for r in full]
    assert max(errors) < 2.0
    assert all(r.audio_fill == 1.0 for r in full)


def test_camera_yaw_and_rate_follow_the_turn(steady, stream) -> None:
    results, _ = steady
    yaws = [r.yaw for r in results if r.yaw is not None and r.yaw.integrated is not None]
    assert len(yaws) >= 20
    first_image = stream.image_stamps()[0]
    for y in yaws:
        truth = stream.yaw_at(y.image_ns) - stream.yaw_at(first_image)
        assert abs(y.integrated - truth) < math.radians(1.5)
        assert y.image_ns <= max(r.end_ns for r in results)
    rates = [y.rate for y in yaws[5:]]
    assert np.median(rates) == pytest.approx(stream.scene.yaw_rate_rad_s, rel=0.05)


def test_same_input_sequence_gives_the_same_results(stream) -> None:
    short = SyntheticStream(stream.scene, duration_s=1.2, start_ns=START_NS)
    runs = []
    for _ in range(2):
        loc = StreamingLocalizer(classic())
        loc.on_audio_info(2, 48000, "S16LE", "wave")
        results, _ = feed(loc, short)
        runs.append(
            [
                (
                    r.end_ns,
                    None if r.azimuth is None else r.azimuth.angle,
                    None if r.yaw is None else (r.yaw.image_ns, r.yaw.integrated),
                )
                for r in results
            ]
        )
    assert runs[0] == runs[1]


def test_audio_at_another_rate_and_format_is_resampled(stream) -> None:
    scene = SyntheticScene(sample_rate=44100, azimuth_rad=math.radians(-50.0))
    other = SyntheticStream(scene, duration_s=1.5, start_ns=START_NS)
    loc = StreamingLocalizer(classic())
    assert loc.on_audio_info(2, 44100, "F32LE", "wave") == []
    results, events = feed(loc, other, sample_format="F32LE", images=False)
    valid = [r.azimuth for r in results if r.azimuth is not None and r.azimuth.valid]
    assert valid and events == []
    assert all(angular_error(a.angle, scene.azimuth_rad) < math.radians(2.0) for a in valid)
    assert all(r.yaw is None for r in results)


def test_camera_only_windows_follow_image_stamps(stream) -> None:
    loc = StreamingLocalizer(classic())
    results, events = feed(loc, SyntheticStream(stream.scene, 1.5, START_NS), audio=False)
    assert events == []
    assert results and all(r.azimuth is None for r in results)
    assert all(r.end_ns % int(0.1 * NS) == 0 for r in results)
    assert sum(r.yaw is not None and r.yaw.integrated is not None for r in results) >= 10


@pytest.mark.parametrize(
    ("info", "code"),
    [
        ((1, 48000, "S16LE", "wave"), "audio_channels"),
        ((3, 48000, "S16LE", "wave"), "audio_channels"),
        ((2, 48000, "S16LE", "mp3"), "audio_coding"),
        ((2, 48000, "U8", "wave"), "audio_sample_format"),
    ],
)
def test_unusable_audio_info_is_an_error_and_stops_audio(info, code, stream) -> None:
    loc = StreamingLocalizer(classic())
    events = loc.on_audio_info(*info)
    assert [e.code for e in events] == [code]
    assert events[0].level == EventLevel.ERROR
    stamp, chunk = stream.audio_chunks(CHUNK_S)[0]
    dropped = loc.on_audio(encode_interleaved(chunk, "S16LE"), stamp)
    assert [e.code for e in dropped] == ["audio_dropped"]
    assert events[0].message in dropped[0].message
    # A good AudioInfo brings audio back.
    assert loc.on_audio_info(2, 48000, "S16LE", "wave") == []
    assert loc.on_audio(encode_interleaved(chunk, "S16LE"), stamp) == []


def test_audio_before_any_info_is_dropped_with_a_warning(stream) -> None:
    loc = StreamingLocalizer(classic())
    stamp, chunk = stream.audio_chunks(CHUNK_S)[0]
    events = loc.on_audio(encode_interleaved(chunk, "S16LE"), stamp)
    assert [(e.code, e.level) for e in events] == [("audio_no_info", EventLevel.WARN)]


def _chunks_bytes(stream: SyntheticStream, fmt: str = "S16LE") -> list[tuple[int, bytes]]:
    return [(s, encode_interleaved(c, fmt)) for s, c in stream.audio_chunks(CHUNK_S)]


def test_gap_overlap_and_rate_change_are_reported(stream) -> None:
    loc = StreamingLocalizer(classic(audio_buffer_s=2.0))
    loc.on_audio_info(2, 48000, "S16LE", "wave")
    chunks = _chunks_bytes(stream)
    events: list[PipelineEvent] = []
    for stamp, data in chunks[:10]:
        events += loc.on_audio(data, stamp)
    assert events == []
    gap = loc.on_audio(chunks[15][1], chunks[15][0])  # 100 ms missing
    assert [e.code for e in gap] == ["audio_gap"] and "100.0 ms" in gap[0].message
    dup = loc.on_audio(chunks[15][1], chunks[15][0])
    assert [e.code for e in dup] == ["audio_overlap"]
    change = loc.on_audio_info(2, 44100, "S16LE", "wave")
    assert [(e.code, e.level) for e in change] == [("audio_rate_change", EventLevel.WARN)]
    assert loc.audio_format == (2, 44100, "S16LE")


def test_non_finite_samples_are_an_error_and_not_buffered(stream) -> None:
    loc = StreamingLocalizer(classic())
    loc.on_audio_info(2, 48000, "F32LE", "wave")
    chunks = stream.audio_chunks(CHUNK_S)
    assert loc.on_audio(encode_interleaved(chunks[0][1], "F32LE"), chunks[0][0]) == []
    bad = chunks[1][1].copy()
    bad[5, 0], bad[7, 1] = np.nan, np.inf
    events = loc.on_audio(encode_interleaved(bad, "F32LE"), chunks[1][0])
    assert [(e.code, e.level) for e in events] == [("audio_non_finite", EventLevel.ERROR)]
    assert "2 NaN/Inf" in events[0].message
    after = loc.on_audio(encode_interleaved(chunks[2][1], "F32LE"), chunks[2][0])
    assert [e.code for e in after] == ["audio_gap"] and "dropped chunk" in after[0].message


def test_silent_window_gives_no_azimuth(stream) -> None:
    loc = StreamingLocalizer(classic())
    loc.on_audio_info(2, 48000, "S16LE", "wave")
    silent = np.zeros((int(CHUNK_S * 48000), 2), dtype=np.float32)
    results: list[WindowResult] = []
    for stamp, _ in stream.audio_chunks(CHUNK_S)[:60]:
        loc.on_audio(encode_interleaved(silent, "S16LE"), stamp)
        results += loc.step()
    full = [r for r in results if r.azimuth is not None]
    assert full, "a full window of silence was buffered"
    assert all(not r.azimuth.valid and "silent" in r.audio_note for r in full)
    assert all("audio_silent" in codes(r.events) for r in full)
    assert not any(r.has_output for r in results)


def test_images_out_of_order_and_far_from_audio_are_reported(stream) -> None:
    loc = StreamingLocalizer(classic())
    loc.on_audio_info(2, 48000, "S16LE", "wave")
    stamps = stream.image_stamps()
    image = stream.image_at(stamps[0])
    assert loc.on_image(image, stamps[3]) == []
    older = loc.on_image(image, stamps[1])
    assert [(e.code, e.level) for e in older] == [("image_out_of_order", EventLevel.WARN)]

    # Images stamped 5 s ahead of the audio: no image at or before the window ends.
    loc = StreamingLocalizer(classic())
    loc.on_audio_info(2, 48000, "S16LE", "wave")
    loc.on_image(image, stamps[0] + 5 * NS, arrival_ns=stamps[0])
    results: list[WindowResult] = []
    for stamp, data in _chunks_bytes(stream)[:30]:
        loc.on_audio(data, stamp, arrival_ns=stamp)
        results += loc.step()
    assert results
    skew = [e for r in results for e in r.events if e.code == "image_audio_skew"]
    assert len(skew) == len(results) and "after it" in skew[0].message
    assert all(r.yaw is None for r in results)


def test_missing_model_falls_back_to_classic_and_says_so(tmp_path) -> None:
    loc = StreamingLocalizer(PipelineConfig(estimator="slfm", model_dir=str(tmp_path / "none")))
    assert loc.estimators.backend == "classic"
    assert loc.estimators.fallback_reason
    [event] = loc.startup_events
    assert event.code == "model_fallback" and event.level == EventLevel.WARN
    assert str(tmp_path / "none") in event.message and "gcc_phat" in event.message


def test_too_many_due_windows_are_skipped_and_counted(stream) -> None:
    loc = StreamingLocalizer(classic(max_pending_windows=3))
    loc.on_audio_info(2, 48000, "S16LE", "wave")
    chunks = _chunks_bytes(stream)
    for stamp, data in chunks[:60]:
        loc.on_audio(data, stamp)
    loc.step()  # first window at the newest grid point
    for stamp, data in chunks[60:120]:  # 1.2 s without stepping: 12 windows due
        loc.on_audio(data, stamp)
    results = loc.step()
    assert len(results) == 3
    assert "windows_skipped" in codes(results[0].events)
    assert "9 window(s) skipped" in results[0].events[0].message


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="audio_buffer_s"):
        PipelineConfig(window_s=3.0, audio_buffer_s=2.0)
    with pytest.raises(ConfigError, match="hop_s"):
        PipelineConfig(hop_s=0.0)


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory: pytest.TempPathFactory):
    torch = pytest.importorskip("torch")
    from slfm_ros.core.models.audio_direction import AudioDirectionNet
    from slfm_ros.core.models.checkpoint import save_model
    from slfm_ros.core.models.config import preset
    from slfm_ros.core.models.visual_pose import VisualPoseNet

    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = preset("small")
    path = tmp_path_factory.mktemp("models") / "small"
    save_model(path, cfg, AudioDirectionNet(cfg.audio), VisualPoseNet(cfg.visual))
    return path


def test_learned_models_run_in_the_pipeline(small_model_dir, stream) -> None:
    config = PipelineConfig(estimator="slfm", model_dir=str(small_model_dir), backend="torch")
    loc = StreamingLocalizer(config)
    assert loc.startup_events == () and loc.estimators.fallback_reason == ""
    assert loc.estimators.backend == "torch"
    assert "torch (cpu, fp32)" in loc.estimators.description
    assert loc.estimators.audio_sample_rate == loc.audio_estimator.config.sample_rate
    loc.on_audio_info(2, 48000, "S16LE", "wave")
    results, events = feed(loc, SyntheticStream(stream.scene, 1.5, START_NS))
    assert events == []
    # Untrained weights: only that every window with audio and images got an estimate.
    full = [r for r in results if r.end_ns - NS >= START_NS]
    assert full and all(r.azimuth is not None and math.isfinite(r.azimuth.angle) for r in full)
    assert any(r.yaw is not None and r.yaw.integrated is not None for r in results)


def test_incompatible_model_falls_back(small_model_dir, tmp_path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("card.yaml", "weights.pt"):
        (broken / name).write_bytes((small_model_dir / name).read_bytes())
    (broken / "weights.pt").write_bytes(b"not a checkpoint")
    loc = StreamingLocalizer(PipelineConfig(estimator="slfm", model_dir=str(broken)))
    assert loc.estimators.backend == "classic"
    [event] = loc.startup_events
    assert event.code == "model_fallback" and "ModelError" in event.message


def test_split_steps_equal_step_and_a_clock_restart_resets(stream) -> None:
    short = SyntheticStream(stream.scene, 1.2, START_NS)
    whole, split = StreamingLocalizer(classic()), StreamingLocalizer(classic())
    for loc in (whole, split):
        loc.on_audio_info(2, 48000, "S16LE", "wave")
    chunks = _chunks_bytes(short)
    images = {s: short.image_at(s) for s in short.image_stamps()}
    out_whole, out_split = [], []
    for stamp, data in chunks:
        for loc in (whole, split):
            for s in [s for s in images if stamp <= s < stamp + int(CHUNK_S * NS)]:
                loc.on_image(images[s], s)
            loc.on_audio(data, stamp)
        out_whole += [(r.end_ns, r.azimuth, r.yaw) for r in whole.step()]
        pending = split.step_audio()
        out_split += [(r.end_ns, r.azimuth, r.yaw) for r in map(split.finish_window, pending)]
    assert out_whole == out_split and len(out_whole) >= 8

    # The stamps restart 10 s earlier (a bag loop): buffer and window sequence restart.
    back = chunks[0][0] - 10 * NS
    events = whole.on_image(images[short.image_stamps()[0]], back)
    events += whole.on_audio(chunks[0][1], back)
    assert [e.code for e in events] == ["image_time_jump", "audio_time_jump"]
    restarted = whole.step()
    assert restarted and "time_jump" in codes(restarted[0].events)
    assert restarted[0].end_ns < out_whole[0][0]


def test_model_with_an_untrained_network_falls_back(small_model_dir, tmp_path) -> None:
    import yaml

    audio_only = tmp_path / "audio_only"
    audio_only.mkdir()
    (audio_only / "weights.pt").write_bytes((small_model_dir / "weights.pt").read_bytes())
    card = yaml.safe_load((small_model_dir / "card.yaml").read_text())
    card["untrained_networks"] = ["visual"]
    (audio_only / "card.yaml").write_text(yaml.safe_dump(card))
    loc = StreamingLocalizer(PipelineConfig(estimator="slfm", model_dir=str(audio_only)))
    assert loc.estimators.backend == "classic"
    [event] = loc.startup_events
    assert event.code == "model_fallback" and "visual network" in event.message
    assert "never trained" in event.message
