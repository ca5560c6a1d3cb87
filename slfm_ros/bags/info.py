"""``slfm bag info``: what a bag holds, and whether its streams are continuous.

Per topic: message type, count, record-time rate. For stamped messages (with a
``std_msgs/Header``): the median stamp period and stamp gaps (steps longer than
``GAP_FACTOR`` periods, or stamps that go backwards). For audio, with its AudioInfo, the
chunks' stamps are checked against their lengths: a gap or an overlap is a step that differs
from the previous chunk's duration by more than ``AUDIO_TOLERANCE_S``.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from slfm_ros.bags.reader import MessageTypes, open_bag
from slfm_ros.bags.topics import AUDIO_INFO_TYPE, AUDIO_TYPE
from slfm_ros.core.errors import InputFormatError

_NS_PER_S = 1_000_000_000
GAP_FACTOR = 1.5
AUDIO_TOLERANCE_S = 0.005


def _stamp_stats(stamps: list[int]) -> dict[str, Any]:
    if len(stamps) < 2:
        return {}
    steps = np.diff(np.array(stamps, dtype=np.float64)) / _NS_PER_S
    forward = steps[steps > 0]
    period = float(np.median(forward)) if forward.size else 0.0
    gaps = int(np.sum(steps > GAP_FACTOR * period)) if period > 0 else 0
    return {
        "stamp_period_s": round(period, 6),
        "stamp_rate_hz": round(1.0 / period, 3) if period > 0 else None,
        "stamp_gaps": gaps,
        "max_stamp_step_s": round(float(np.max(steps)), 6),
        "stamps_backwards": int(np.sum(steps <= 0)),
    }


def _audio_stats(chunks: list[tuple[int, int]], info: Any) -> dict[str, Any]:
    """Gaps and overlaps of audio chunks (stamp ns, payload bytes) given AudioInfo fields."""
    from slfm_ros.core.dsp.audio_format import bytes_per_sample

    try:
        frame_bytes = int(info.channels) * bytes_per_sample(str(info.sample_format))
    except InputFormatError as err:
        return {"audio_check": f"not checked: {err}"}
    rate = int(info.sample_rate)
    if frame_bytes <= 0 or rate <= 0:
        return {"audio_check": "not checked: AudioInfo has no channels or sample rate"}
    gaps = overlaps = 0
    worst_gap = worst_overlap = 0.0
    frames = 0
    for (s0, n0), (s1, _) in pairwise(chunks):
        expected = s0 + (n0 // frame_bytes) * _NS_PER_S / rate
        step_error = (s1 - expected) / _NS_PER_S
        if step_error > AUDIO_TOLERANCE_S:
            gaps += 1
            worst_gap = max(worst_gap, step_error)
        elif step_error < -AUDIO_TOLERANCE_S:
            overlaps += 1
            worst_overlap = max(worst_overlap, -step_error)
    for _, n in chunks:
        frames += n // frame_bytes
    span = (chunks[-1][0] - chunks[0][0]) / _NS_PER_S + (chunks[-1][1] // frame_bytes) / rate
    return {
        "audio_format": (
            f"{info.channels} ch, {rate} Hz, {info.sample_format}, {info.coding_format}"
        ),
        "audio_seconds": round(frames / rate, 3),
        "audio_span_s": round(span, 3),
        "chunk_ms": round(1000.0 * (chunks[0][1] // frame_bytes) / rate, 3),
        "audio_gaps": gaps,
        "audio_overlaps": overlaps,
        "max_audio_gap_s": round(worst_gap, 6),
        "max_audio_overlap_s": round(worst_overlap, 6),
    }


def bag_info(path: str | Path) -> dict[str, Any]:
    """Topics, types, counts, duration, rates and stamp gaps of the bag at ``path``."""
    with open_bag(path) as reader:
        types = MessageTypes()
        stamps: dict[str, list[int]] = defaultdict(list)
        audio: dict[str, list[tuple[int, int]]] = defaultdict(list)
        log_times: dict[str, list[int]] = defaultdict(list)
        infos: dict[str, Any] = {}
        undecodable: dict[str, str] = {}
        for message in reader.messages():
            log_times[message.topic].append(message.log_ns)
            if message.topic in undecodable:
                continue
            try:
                msg = types.decode(message)
            except InputFormatError as err:
                undecodable[message.topic] = str(err)
                continue
            header = getattr(msg, "header", None)
            if header is not None and hasattr(header, "stamp"):
                ns = int(header.stamp.sec) * _NS_PER_S + int(header.stamp.nanosec)
                stamps[message.topic].append(ns)
                if message.msgtype == AUDIO_TYPE:
                    audio[message.topic].append((ns, len(msg.audio.data)))
            if message.msgtype == AUDIO_INFO_TYPE:
                infos[message.topic] = msg
        info_msg = next(iter(infos.values()), None)
        topics = []
        for name, summary in sorted(reader.topics.items()):
            times = log_times.get(name, [])
            row: dict[str, Any] = {
                "topic": name,
                "type": summary.msgtype,
                "count": len(times),
            }
            if len(times) > 1:
                span = (times[-1] - times[0]) / _NS_PER_S
                row["rate_hz"] = round((len(times) - 1) / span, 3) if span > 0 else None
            row.update(_stamp_stats(stamps.get(name, [])))
            if name in audio and info_msg is not None and len(audio[name]) > 1:
                row.update(_audio_stats(audio[name], info_msg))
            elif name in audio:
                row["audio_check"] = "not checked: no AudioInfo in the bag"
            if name in undecodable:
                row["unreadable"] = undecodable[name]
            topics.append(row)
        damage = None
        if reader.damage is not None:
            damage = reader.damage.describe(
                reader.start_ns, reader.expected_end_ns or reader.end_ns
            )
        return {
            "path": str(reader.path),
            "storage": reader.storage,
            "start_s": None if reader.start_ns is None else reader.start_ns / _NS_PER_S,
            "duration_s": round(reader.duration_s, 3),
            "message_count": sum(len(v) for v in log_times.values()),
            "topics": topics,
            "damage": damage,
        }


def format_info(info: dict[str, Any]) -> str:
    """Human-readable ``bag_info``."""
    lines = [
        f"bag:       {info['path']} ({info['storage']})",
        f"duration:  {info['duration_s']:.3f} s, {info['message_count']} messages",
    ]
    if info["damage"]:
        lines.append(f"DAMAGED:   {info['damage']}")
    width = max((len(t["topic"]) for t in info["topics"]), default=5)
    for t in info["topics"]:
        rate = f"{t['rate_hz']:.2f} Hz" if t.get("rate_hz") else "-"
        lines.append(f"  {t['topic'].ljust(width)}  {t['type']}  {t['count']} msgs  {rate}")
        details = []
        if "stamp_gaps" in t:
            details.append(
                f"stamp period {t['stamp_period_s'] * 1e3:.1f} ms, gaps {t['stamp_gaps']}, "
                f"max step {t['max_stamp_step_s'] * 1e3:.1f} ms, backwards {t['stamps_backwards']}"
            )
        if "audio_format" in t:
            details.append(
                f"audio {t['audio_format']}, {t['chunk_ms']:.1f} ms chunks, "
                f"{t['audio_seconds']:.2f} s of samples over {t['audio_span_s']:.2f} s, "
                f"gaps {t['audio_gaps']} (max {t['max_audio_gap_s'] * 1e3:.1f} ms), "
                f"overlaps {t['audio_overlaps']}"
            )
        if "audio_check" in t:
            details.append(f"audio {t['audio_check']}")
        if "unreadable" in t:
            details.append(f"UNREADABLE: {t['unreadable']}")
        lines += [f"  {' ' * width}    {d}" for d in details]
    return "\n".join(lines)
