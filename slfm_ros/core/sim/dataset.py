"""Sharded on-disk multi-view datasets, and datasets generated on the fly.

``write_dataset`` renders samples ``0 .. num-1`` of one split into shards of ``shard_size``
samples (layout in docs/dataset-format.md). Sample ``i`` depends only on (seed, split, i), so the
bytes are the same for any number of workers. Each shard is written under a temporary name and
renamed, then listed with its SHA-256 in ``manifest.json``; a rerun after an interruption checks
the listed shards against their hashes, keeps the good ones untouched and renders the rest.

``ShardedDataset`` reads a dataset without torch (memory-mapped shards, random access);
``OnTheFlyDataset`` renders samples when asked. ``slfm_ros.core.sim.torch_dataset`` adapts
either to ``torch.utils.data`` for the trainer.
"""

from __future__ import annotations

import bisect
import json
import math
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from slfm_ros.core.atomic_io import atomic_write, atomic_write_bytes
from slfm_ros.core.config_io import from_mapping, to_mapping
from slfm_ros.core.errors import ConfigError, DatasetError
from slfm_ros.core.hashing import sha256_file
from slfm_ros.core.sim.scene import (
    SPLITS,
    MultiViewSample,
    SceneConfig,
    sample_rng,
    sample_scene,
)
from slfm_ros.core.sim.shard_io import (
    IMAGE_FORMATS,
    decode_image,
    dequantize_audio,
    encode_image,
    memmap_npz,
    quantize_audio,
    write_npz,
)

FORMAT_NAME = "slfm_ros multiview dataset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DEFAULT_SHARD_SIZE = 64


def shard_stem(shard: int) -> str:
    return f"shard-{shard:05d}"


@dataclass(frozen=True)
class EncodedSample:
    """One sample in its stored form (what a worker process sends back)."""

    index: int
    images: tuple[bytes, ...]
    audio: npt.NDArray[np.int16]  # (K, F, 2)
    audio_scale: npt.NDArray[np.float32]  # (K,)
    yaws: npt.NDArray[np.float64]  # (K,)
    target_azimuths: npt.NDArray[np.float64]  # (K,)
    metadata: dict[str, Any]


def encode_sample(
    sample: MultiViewSample, index: int, image_format: str, image_quality: int
) -> EncodedSample:
    audio, scale = quantize_audio(sample.audio)
    return EncodedSample(
        index=index,
        images=tuple(encode_image(img, image_format, image_quality) for img in sample.images),
        audio=audio,
        audio_scale=scale,
        yaws=np.asarray(sample.yaws, dtype=np.float64),
        target_azimuths=np.asarray(sample.target_azimuths, dtype=np.float64),
        metadata=sample.metadata,
    )


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8")


def write_shard(out_dir: Path, shard: int, samples: Sequence[EncodedSample]) -> dict[str, Any]:
    """Write one shard (.npz + .json) atomically; returns its manifest entry."""
    images = [img for s in samples for img in s.images]
    offsets = np.zeros(len(images) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in images])
    arrays: dict[str, npt.NDArray[Any]] = {
        "image_bytes": np.frombuffer(b"".join(images), dtype=np.uint8),
        "image_offsets": offsets,
        "audio": np.stack([s.audio for s in samples]),
        "audio_scale": np.stack([s.audio_scale for s in samples]),
        "yaws": np.stack([s.yaws for s in samples]),
        "target_azimuths": np.stack([s.target_azimuths for s in samples]),
        "sample_index": np.array([s.index for s in samples], dtype=np.int64),
    }
    stem = shard_stem(shard)
    npz_path = out_dir / f"{stem}.npz"
    atomic_write(npz_path, lambda fh: write_npz(fh, arrays))
    meta = {
        "format_version": FORMAT_VERSION,
        "shard": shard,
        "start": samples[0].index,
        "count": len(samples),
        "samples": [s.metadata for s in samples],
    }
    json_path = out_dir / f"{stem}.json"
    atomic_write_bytes(json_path, _json_bytes(meta))
    return {
        "shard": shard,
        "npz": npz_path.name,
        "json": json_path.name,
        "start": samples[0].index,
        "count": len(samples),
        "npz_sha256": sha256_file(npz_path),
        "json_sha256": sha256_file(json_path),
    }


# ---------------------------------------------------------------------------------------------
# Writing


@dataclass(frozen=True)
class _Job:
    config: SceneConfig
    split: str
    seed: int
    image_format: str
    image_quality: int


_WORKER_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job
    # Several render processes share the cores: one numeric thread each.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def _render(index: int) -> EncodedSample:
    job = _WORKER_JOB
    if job is None:
        raise RuntimeError("worker used before _init_worker")
    rng = sample_rng(job.seed, job.split, index)
    sample = sample_scene(job.config, rng, job.split, index, job.seed)
    return encode_sample(sample, index, job.image_format, job.image_quality)


def _manifest_header(
    cfg: SceneConfig,
    num: int,
    split: str,
    seed: int,
    shard_size: int,
    image_format: str,
    image_quality: int,
) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "split": split,
        "seed": seed,
        "num_samples": num,
        "shard_size": shard_size,
        "num_shards": math.ceil(num / shard_size),
        "num_views": cfg.views.num_views,
        "sample_rate": cfg.sample_rate,
        "clip_frames": cfg.clip_frames,
        "image_width": cfg.image.width,
        "image_height": cfg.image.height,
        "image_format": image_format,
        "image_quality": image_quality,
        "audio_encoding": "int16 scaled by audio_scale (per-clip peak)",
        "config": to_mapping(cfg),
    }


# Keys whose change makes existing shards unusable for the requested dataset.
_RESUME_KEYS = (
    "format_version",
    "split",
    "seed",
    "shard_size",
    "image_format",
    "image_quality",
    "config",
)


def _same_setting(key: str, old: Any, new: Any) -> bool:
    if key != "config" or old == new:
        return old == new
    # Compare parsed configs: a key added to SceneConfig later, at its default, is no change.
    try:
        return bool(from_mapping(SceneConfig, old) == from_mapping(SceneConfig, new))
    except (ConfigError, TypeError):
        return False


def _load_existing(out_dir: Path, header: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Verified shard entries of an earlier run into ``out_dir`` (empty if none)."""
    path = out_dir / MANIFEST
    if not path.exists():
        strangers = [
            p.name
            for p in out_dir.iterdir()
            if not (p.name.startswith("shard-") or p.name.endswith(".tmp"))
        ]
        if strangers:
            raise DatasetError(
                f"{out_dir} is not empty and has no {MANIFEST} (found {sorted(strangers)[:5]}); "
                "give an empty or new folder as --out"
            )
        return {}
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(
            f"{path} is unreadable ({exc}); delete the folder and start again"
        ) from exc
    different = [k for k in _RESUME_KEYS if not _same_setting(k, old.get(k), header.get(k))]
    if different:
        raise DatasetError(
            f"{out_dir} holds a dataset made with different settings ({', '.join(different)}); "
            "resume with the same config, split, seed and shard size, or choose another --out"
        )
    kept: dict[int, dict[str, Any]] = {}
    for entry in old.get("shards", []):
        shard = int(entry["shard"])
        start = shard * header["shard_size"]
        count = min(header["shard_size"], header["num_samples"] - start)
        if entry.get("start") != start or entry.get("count") != count:
            continue  # a last shard of an earlier, different --num
        npz, js = out_dir / entry["npz"], out_dir / entry["json"]
        if (
            npz.is_file()
            and js.is_file()
            and sha256_file(npz) == entry["npz_sha256"]
            and sha256_file(js) == entry["json_sha256"]
        ):
            kept[shard] = entry
    return kept


def _write_manifest(out_dir: Path, header: dict[str, Any], shards: dict[int, dict]) -> None:
    manifest = dict(header)
    manifest["shards"] = [shards[k] for k in sorted(shards)]
    manifest["complete"] = len(shards) == header["num_shards"]
    if manifest["complete"]:
        manifest["counts"] = _count_kinds(out_dir, manifest["shards"])
    atomic_write_bytes(out_dir / MANIFEST, _json_bytes(manifest))


def _count_kinds(out_dir: Path, shards: list[dict[str, Any]]) -> dict[str, Any]:
    kinds: Counter[str] = Counter()
    receivers: Counter[str] = Counter()
    anechoic = 0
    for entry in shards:
        meta = json.loads((out_dir / entry["json"]).read_text(encoding="utf-8"))
        for s in meta["samples"]:
            kinds[s["target_kind"]] += 1
            receivers[s["receiver_kind"]] += 1
            anechoic += int(s["room"]["anechoic"])
    total = sum(e["count"] for e in shards)
    return {
        "samples": total,
        "target_kind": dict(sorted(kinds.items())),
        "receiver_kind": dict(sorted(receivers.items())),
        "anechoic": anechoic,
        "reverberant": total - anechoic,
    }


def write_dataset(
    cfg: SceneConfig,
    out_dir: str | Path,
    num: int,
    split: str,
    seed: int,
    workers: int = 2,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: bool = True,
    image_format: str = "jpeg",
    image_quality: int = 95,
) -> dict[str, Any]:
    """Render ``num`` samples of ``split`` into ``out_dir``; returns the final manifest.

    workers: render processes (1 renders in this process). Resumes an interrupted run into
    the same folder with the same settings; finished, intact shards are not rewritten.
    """
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
    if num < 1 or shard_size < 1 or workers < 1:
        raise DatasetError(
            f"num, shard_size and workers must be >= 1, got {num}, {shard_size}, {workers}"
        )
    if image_format not in IMAGE_FORMATS:
        raise DatasetError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} exists and is not a folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    header = _manifest_header(cfg, num, split, seed, shard_size, image_format, image_quality)
    done = _load_existing(out, header)
    for stale in out.glob(".*.tmp"):
        stale.unlink()
    _write_manifest(out, header, done)

    todo_shards = [k for k in range(header["num_shards"]) if k not in done]
    indices = [
        i for k in todo_shards for i in range(k * shard_size, min((k + 1) * shard_size, num))
    ]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=num, initial=num - len(indices), unit="sample", desc=f"simulate {split}")
    job = _Job(cfg, split, seed, image_format, image_quality)
    pending: dict[int, list[EncodedSample]] = {}
    try:
        for encoded in _render_all(job, indices, workers):
            shard = encoded.index // shard_size
            pending.setdefault(shard, []).append(encoded)
            expected = min(shard_size, num - shard * shard_size)
            if len(pending[shard]) == expected:
                done[shard] = write_shard(out, shard, pending.pop(shard))
                _write_manifest(out, header, done)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return json.loads((out / MANIFEST).read_text(encoding="utf-8"))


def _render_all(job: _Job, indices: list[int], workers: int) -> Iterator[EncodedSample]:
    """Encoded samples in index order, rendered by ``workers`` processes."""
    if not indices:
        return
    if workers == 1:
        _init_worker(job)
        for i in indices:
            yield _render(i)
        return
    # fork starts fast and needs no importable __main__; spawn where fork does not exist.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(job,)) as pool:
        yield from pool.imap(_render, indices, chunksize=1)


# ---------------------------------------------------------------------------------------------
# Reading


class SampleSource(Protocol):
    config: SceneConfig  # what the samples were (or are) rendered with

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> MultiViewSample: ...


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    """The manifest of a dataset folder, checked for format and completeness."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist; pass the --out of simulate")
    path = root / MANIFEST
    if not path.is_file():
        raise DatasetError(f"{root} has no {MANIFEST}: not a dataset written by slfm simulate")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path} is unreadable: {exc}") from exc
    if manifest.get("format") != FORMAT_NAME or manifest.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{path}: format {manifest.get('format')!r} version "
            f"{manifest.get('format_version')!r}; expected {FORMAT_NAME!r} version "
            f"{FORMAT_VERSION}"
        )
    if not manifest.get("complete"):
        done = sum(e["count"] for e in manifest.get("shards", []))
        raise DatasetError(
            f"{root} is incomplete ({done} of {manifest.get('num_samples')} samples); rerun "
            "the same slfm simulate command to finish it"
        )
    return manifest


class ShardedDataset:
    """Random access to a dataset written by ``write_dataset`` (no torch needed).

    ``dataset[i]`` is a ``MultiViewSample`` (float32 audio, uint8 RGB images, metadata).
    Shards are memory-mapped on first use; a process keeps at most ``max_open`` open.
    """

    def __init__(self, data_dir: str | Path, max_open: int = 4):
        self.root = Path(data_dir)
        self.manifest = read_manifest(self.root)
        self.config: SceneConfig = from_mapping(SceneConfig, self.manifest["config"])
        self.split: str = self.manifest["split"]
        self.sample_rate: int = int(self.manifest["sample_rate"])
        self._shards = self.manifest["shards"]
        self._starts = [int(e["start"]) for e in self._shards]
        self._len = sum(int(e["count"]) for e in self._shards)
        self._max_open = max(1, max_open)
        self._open: dict[int, tuple[dict[str, npt.NDArray[Any]], list[dict[str, Any]]]] = {}

    def __len__(self) -> int:
        return self._len

    def _shard(self, k: int) -> tuple[dict[str, npt.NDArray[Any]], list[dict[str, Any]]]:
        if k not in self._open:
            if len(self._open) >= self._max_open:
                self._open.pop(next(iter(self._open)))
            entry = self._shards[k]
            arrays = memmap_npz(self.root / entry["npz"])
            json_path = self.root / entry["json"]
            try:
                meta = json.loads(json_path.read_text(encoding="utf-8"))["samples"]
            except (OSError, json.JSONDecodeError, KeyError) as exc:
                raise DatasetError(f"cannot read {json_path}: {exc}") from exc
            self._open[k] = (arrays, meta)
        return self._open[k]

    def __getitem__(self, index: int) -> MultiViewSample:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"sample {index} outside a dataset of {self._len}")
        k = bisect.bisect_right(self._starts, index) - 1
        arrays, meta = self._shard(k)
        j = index - self._starts[k]
        views = arrays["yaws"].shape[1]
        offsets = arrays["image_offsets"]
        blob = arrays["image_bytes"]
        images = np.stack(
            [
                decode_image(np.asarray(blob[offsets[j * views + v] : offsets[j * views + v + 1]]))
                for v in range(views)
            ]
        )
        audio = dequantize_audio(
            np.asarray(arrays["audio"][j]), np.asarray(arrays["audio_scale"][j])
        )
        metadata = meta[j]
        return MultiViewSample(
            images=images,
            audio=audio,
            sample_rate=self.sample_rate,
            yaws=np.array(arrays["yaws"][j], dtype=np.float64),
            source_azimuths=np.array(metadata["source_azimuths_rad"], dtype=np.float64),
            metadata=metadata,
        )

    def metadata(self, index: int) -> dict[str, Any]:
        """Metadata of sample ``index`` without decoding images or audio."""
        k = bisect.bisect_right(self._starts, index) - 1
        return self._shard(k)[1][index - self._starts[k]]


class OnTheFlyDataset:
    """Samples rendered when indexed: ``dataset[i]`` equals sample i of ``write_dataset``.

    length: the number of indices ``len`` reports (a trainer's epoch size); any index >= 0
    renders (the space of samples is unbounded).
    """

    def __init__(self, cfg: SceneConfig, split: str, seed: int, length: int = 10_000):
        if split not in SPLITS:
            raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
        self.config = cfg
        self.split = split
        self.seed = int(seed)
        self.length = int(length)
        self.sample_rate = cfg.sample_rate

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> MultiViewSample:
        if index < 0:
            raise IndexError(f"on-the-fly samples have indices >= 0, got {index}")
        rng = sample_rng(self.seed, self.split, index)
        return sample_scene(self.config, rng, self.split, index, self.seed)
