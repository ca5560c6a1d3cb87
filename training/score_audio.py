"""Score compact audio networks and GCC-PHAT on data with ground truth (a measuring tool).

    python -m slfm_training.score_audio --nets A [B ...] --split DIR [--limit N]
        a split written by ``slfm simulate``: every view clip whose target is in front, as
        ``slfm_ros.evaluation.synthetic_eval`` scores it (GCC-PHAT with the split's receiver)
    python -m slfm_training.score_audio --nets A [B ...] --bags BAG [...] --receiver SPEC
        bags with /ground_truth/sound_direction (``slfm bag make``): every 1 s window with
        sound, against the truth at its centre; GCC-PHAT with the true geometry of SPEC
    python -m slfm_training.score_audio --nets A [B ...] --receiver SPEC --scenes N [--seed S]
        N fresh single-window renders through the receiver SPEC, azimuths over the full circle,
        rooms and sources as the training distribution (``slfm_ros.core.sim.audio_examples``)

A net is a folder holding audio_net.pt or the file. SPEC is ``sofa:FILE``,
``spherical_head:RADIUS_M`` or ``stereo_array:SPACING_M``. Errors are front-folded (degrees).
Networks are scored with the receiver known (as GCC-PHAT is given the geometry: its largest
interaural delay is an input, and the card's lobe refinement runs, as in the node) and unknown
(``--aperture unknown``, as ``slfm train adapt`` learns without it).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from slfm_ros.core.estimators.base import AudioEstimator
from slfm_ros.core.estimators.cue_audio import CueAudioEstimator
from slfm_ros.core.geometry.interaural import InterauralGeometry
from slfm_ros.evaluation.metrics import azimuth_errors
from slfm_training.audio_net_io import AudioNet, load_audio_net


def cue_estimator(
    model: AudioNet, geometry: InterauralGeometry | None, max_windows: int = 4
) -> CueAudioEstimator:
    """The CueAudioEstimator of a loaded network, run by torch on the CPU. With the
    receiver's geometry it is read as the node reads it (the lobe refinement of the card;
    no geometry for a network that learned without it)."""
    net = model.net.eval()
    if not model.receiver_input:
        geometry = None

    def run(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        with torch.inference_mode():
            return net(torch.from_numpy(np.ascontiguousarray(rows))).numpy()

    return CueAudioEstimator(
        model.cues,
        net.cfg,
        run,
        max_windows=max_windows,
        geometry=geometry,
        lobe_refine_itd=model.lobe_refine_itd if geometry is not None else 0.0,
        lobe_widening=model.lobe_widening,
    )


def receiver_of(spec: str) -> Any:
    from slfm_ros.bags.scenarios import StreamSettings, receiver_settings

    return StreamSettings(**receiver_settings(spec)).make_receiver()  # type: ignore[arg-type]


def gcc_phat(geometry: InterauralGeometry) -> AudioEstimator:
    from slfm_ros.core.estimators.registry import make_audio_estimator

    return make_audio_estimator("gcc_phat", geometry=geometry)


def _mae(pred: list[float], truth: list[float]) -> dict[str, float]:
    p = np.nan_to_num(np.asarray(pred, dtype=np.float64))
    err = np.degrees(azimuth_errors(p, np.asarray(truth, dtype=np.float64)))
    return {"n": int(err.size), "mae_deg": float(err.mean()), "median_deg": float(np.median(err))}


def score_clips(
    clips: list[tuple[np.ndarray, int, float]], estimators: dict[str, AudioEstimator]
) -> dict[str, dict[str, float]]:
    """(audio, sample rate, true azimuth) clips -> folded error of every estimator."""
    out = {}
    for name, est in estimators.items():
        pred = []
        for audio, rate, _ in clips:
            e = est.estimate(audio, rate)
            pred.append(float(e.angle) if e.valid else 0.0)
        out[name] = _mae(pred, [t for _, _, t in clips])
    return out


def split_clips(
    folder: str, limit: int | None
) -> tuple[list[tuple[np.ndarray, int, float]], InterauralGeometry]:
    from slfm_ros.core.sim.dataset import ShardedDataset
    from slfm_ros.evaluation.synthetic_eval import dataset_geometry

    data = ShardedDataset(folder)
    n = len(data) if limit is None else min(limit, len(data))
    clips = []
    for i in range(n):
        sample = data[i]
        for v in range(sample.num_views):
            truth = float(sample.target_azimuths[v])
            if abs(truth) <= math.pi / 2:
                clips.append((sample.audio[v], sample.sample_rate, truth))
    return clips, dataset_geometry(data)


def bag_clips(bags: list[str], hop_s: float = 0.5) -> list[tuple[np.ndarray, int, float]]:
    """1 s windows of bags with ground truth, each with the true azimuth at its centre."""
    from slfm_ros.bags.inputs import interp_angle
    from slfm_ros.bags.reader import MessageTypes, open_bag
    from slfm_ros.bags.sensor_streams import plan_sensor_topics, read_audio
    from slfm_ros.core.conventions import yaw_from_quaternion
    from slfm_ros.core.dsp.iid import rms_dbfs
    from slfm_ros.nodes import msg_conversions as conv

    clips = []
    for bag in bags:
        with open_bag(bag) as reader:
            topics = plan_sensor_topics(reader)
            audio = read_audio(reader, topics)
            truth = []
            types = MessageTypes()
            for m in reader.messages(["/ground_truth/sound_direction"]):
                msg = types.decode(m)
                o = msg.pose.pose.orientation
                truth.append(
                    (
                        conv.stamp_to_ns(msg.header.stamp),
                        float(yaw_from_quaternion(o.x, o.y, o.z, o.w)),
                    )
                )
        rate = audio.sample_rate
        hop = int(hop_s * rate)
        for s in range(0, audio.samples.shape[0] - rate + 1, hop):
            window = audio.samples[s : s + rate]
            if rms_dbfs(window) < -50:
                continue
            centre = audio.start_ns + int((s + rate / 2) * 1e9 / rate)
            az = float(np.angle(np.exp(1j * interp_angle([centre], truth)[0])))
            clips.append((window, rate, az))
    return clips


def render_clips(spec: str, scenes: int, seed: int) -> list[tuple[np.ndarray, int, float]]:
    import yaml

    from slfm_ros.core.sim.audio_examples import AudioExampleConfig, example_rng, render_examples

    base = yaml.safe_load(
        (Path(__file__).parent / "configs" / "cue_audio" / "audio_cues.yaml").read_text()
    )
    examples = dict(base["examples"])
    kind, _, value = spec.partition(":")
    receivers: dict[str, Any] = {"weights": [0.0, 0.0, 0.0], "sofa_files": []}
    if kind == "sofa":
        receivers.update(sofa_files=[value], weights=[0.0, 0.0, 1.0])
    elif kind == "spherical_head":
        receivers.update(spherical_head_radius_m=[float(value)] * 2, weights=[1.0, 0.0, 0.0])
    else:
        receivers.update(stereo_spacing_m=[float(value)] * 2, weights=[0.0, 1.0, 0.0])
    examples.update(receivers=receivers, windows_per_scene=1)
    cfg = AudioExampleConfig.from_dict(examples)
    clips = []
    for i in range(scenes):
        for ex in render_examples(cfg, example_rng(seed, i)):
            clips.append((ex.window, cfg.sample_rate, ex.label))
    return clips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slfm_training.score_audio", description=__doc__
    )
    parser.add_argument("--nets", nargs="*", default=[])
    parser.add_argument("--split")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--bags", nargs="+")
    parser.add_argument("--receiver")
    parser.add_argument("--scenes", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--aperture", choices=("known", "unknown", "both"), default="both")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.split:
        clips, geometry = split_clips(args.split, args.limit)
    elif args.receiver:
        geometry = receiver_of(args.receiver).geometry
        clips = (
            bag_clips(args.bags)
            if args.bags
            else render_clips(args.receiver, args.scenes, args.seed)
        )
    else:
        parser.error("give --split DIR, or --receiver SPEC with --bags or --scenes")
    estimators: dict[str, AudioEstimator] = {"gcc_phat": gcc_phat(geometry)}
    for net_path in args.nets:
        model = load_audio_net(net_path)
        if args.aperture in ("known", "both"):
            estimators[f"{net_path} (receiver known)"] = cue_estimator(model, geometry)
        if args.aperture in ("unknown", "both"):
            estimators[f"{net_path} (receiver unknown)"] = cue_estimator(model, None)
    results = score_clips(clips, estimators)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for name, r in results.items():
            print(f"{r['mae_deg']:7.2f} deg MAE  {r['median_deg']:6.2f} median  n={r['n']}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
