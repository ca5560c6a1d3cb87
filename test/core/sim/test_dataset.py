"""Sharded datasets: byte-identical output for any worker count, resume, reading back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from slfm_ros.core.errors import DatasetError
from slfm_ros.core.hashing import sha256_file
from slfm_ros.core.sim.dataset import (
    MANIFEST,
    OnTheFlyDataset,
    ShardedDataset,
    write_dataset,
)
from slfm_ros.core.sim.scene import SceneConfig
from slfm_ros.core.sim.shard_io import (
    dequantize_audio,
    memmap_npz,
    quantize_audio,
    write_npz,
)

CFG = SceneConfig.from_dict(
    {
        "clip_seconds": 0.25,
        "views": {"num_views": 2},
        "image": {"width": 48, "height": 32, "effects": {}},
        "panoramas": {"width": 128},
        "room": {
            "anechoic_probability": 0.5,
            "rt60_range_s": [0.15, 0.25],
            "dims_max_m": [4.0, 4.0, 3.0],
        },
        "sources": {"target_kinds": ["noise", "speech"], "interferers": [0, 1]},
    }
)
NUM, SHARD = 5, 2  # three shards, the last one partial


def _write(out: Path, workers: int, num: int = NUM) -> dict:
    return write_dataset(
        CFG,
        out,
        num,
        "train",
        seed=11,
        workers=workers,
        shard_size=SHARD,
        progress=False,
        image_format="png",
    )


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The same dataset written by one and by two worker processes."""
    out = {}
    for workers in (1, 2):
        root = tmp_path_factory.mktemp(f"workers{workers}")
        _write(root, workers)
        out[workers] = root
    return out


def test_same_seed_gives_identical_bytes_for_any_worker_count(written: dict[int, Path]) -> None:
    one, two = _files(written[1]), _files(written[2])
    assert (
        sorted(one)
        == sorted(two)
        == sorted(
            [MANIFEST] + [f"shard-{k:05d}.{ext}" for k in range(3) for ext in ("npz", "json")]
        )
    )
    for name in one:
        assert one[name] == two[name], name


def test_manifest_lists_complete_shards_with_hashes(written: dict[int, Path]) -> None:
    root = written[1]
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["complete"] is True
    assert manifest["num_samples"] == NUM and manifest["num_shards"] == 3
    assert manifest["split"] == "train" and manifest["seed"] == 11
    assert [e["count"] for e in manifest["shards"]] == [2, 2, 1]
    for entry in manifest["shards"]:
        assert sha256_file(root / entry["npz"]) == entry["npz_sha256"]
        assert sha256_file(root / entry["json"]) == entry["json_sha256"]
    counts = manifest["counts"]
    assert counts["samples"] == NUM == counts["anechoic"] + counts["reverberant"]
    assert SceneConfig.from_dict(manifest["config"]) == CFG


def test_reading_back_matches_on_the_fly_generation(written: dict[int, Path]) -> None:
    data = ShardedDataset(written[2])
    fly = OnTheFlyDataset(CFG, "train", seed=11)
    assert len(data) == NUM
    for i in (0, 3, 4, -1):
        stored, fresh = data[i], fly[i % NUM]
        np.testing.assert_array_equal(stored.images, fresh.images)  # PNG is lossless
        peak = np.max(np.abs(fresh.audio), axis=(1, 2))
        tolerance = peak.max() / 32767.0
        np.testing.assert_allclose(stored.audio, fresh.audio, atol=tolerance)
        np.testing.assert_array_equal(stored.yaws, fresh.yaws)
        np.testing.assert_allclose(stored.source_azimuths, fresh.source_azimuths)
        assert stored.metadata == json.loads(json.dumps(fresh.metadata))
    with pytest.raises(IndexError):
        data[NUM]


def test_resume_keeps_finished_shards_and_redoes_the_rest(
    written: dict[int, Path], tmp_path: Path
) -> None:
    root = tmp_path / "resumed"
    shutil.copytree(written[1], root)
    reference = _files(written[1])
    kept = root / "shard-00000.npz"
    kept_stat = kept.stat().st_mtime_ns
    # An interrupted run: shard 1 never written, shard 2 damaged, a temp file left behind,
    # and the manifest not yet complete.
    (root / "shard-00001.npz").unlink()
    (root / "shard-00001.json").unlink()
    damaged = bytearray((root / "shard-00002.npz").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (root / "shard-00002.npz").write_bytes(bytes(damaged))
    (root / ".shard-00003.npz.999.tmp").write_bytes(b"half")
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["complete"] = False
    (root / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="incomplete"):
        ShardedDataset(root)

    _write(root, workers=1)
    assert kept.stat().st_mtime_ns == kept_stat  # not rewritten
    assert _files(root) == reference  # the redone shards are the same bytes
    assert len(ShardedDataset(root)) == NUM


def test_resume_accepts_a_manifest_without_later_config_keys(
    written: dict[int, Path], tmp_path: Path
) -> None:
    root = tmp_path / "older"
    shutil.copytree(written[1], root)
    kept = root / "shard-00000.npz"
    kept_stat = kept.stat().st_mtime_ns
    manifest = json.loads((root / MANIFEST).read_text())
    # A folder written before the config gained a key with a default value.
    del manifest["config"]["receivers"]
    manifest["complete"] = False
    (root / MANIFEST).write_text(json.dumps(manifest))
    _write(root, workers=1)
    assert kept.stat().st_mtime_ns == kept_stat
    assert len(ShardedDataset(root)) == NUM
    manifest["config"]["clip_seconds"] = 9.0  # a real change is still refused
    (root / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="config"):
        _write(root, workers=1)


def test_resume_refuses_other_settings_and_foreign_folders(
    written: dict[int, Path], tmp_path: Path
) -> None:
    root = tmp_path / "other"
    shutil.copytree(written[1], root)
    with pytest.raises(DatasetError, match="seed"):
        write_dataset(
            CFG,
            root,
            NUM,
            "train",
            seed=12,
            workers=1,
            shard_size=SHARD,
            progress=False,
            image_format="png",
        )
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        _write(foreign, workers=1)
    with pytest.raises(DatasetError, match="does not exist"):
        ShardedDataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match=r"no manifest\.json"):
        ShardedDataset(foreign)


def test_audio_quantisation_error_is_below_one_step() -> None:
    rng = np.random.default_rng(0)
    audio = (rng.normal(0, 0.2, (3, 1000, 2)) * np.array([1.0, 1e-3, 0.0])[:, None, None]).astype(
        np.float32
    )
    q, scale = quantize_audio(audio)
    assert q.dtype == np.int16 and scale.shape == (3,)
    back = dequantize_audio(q, scale)
    for v in range(3):
        step = max(float(np.max(np.abs(audio[v]))), 1e-30) / 32767.0
        # Half a quantisation step, plus float32 rounding of the scaling.
        assert np.max(np.abs(back[v] - audio[v])) <= 0.5 * step * (1 + 1e-3) + 1e-12


def test_npz_members_are_memory_mapped_and_readable_by_numpy(tmp_path: Path) -> None:
    arrays = {
        "a": np.arange(12, dtype=np.int16).reshape(3, 4),
        "b": np.linspace(0, 1, 5),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    path = tmp_path / "x.npz"
    write_npz(path, arrays)
    mapped = memmap_npz(path)
    with np.load(path) as loaded:
        for key, value in arrays.items():
            np.testing.assert_array_equal(mapped[key], value)
            np.testing.assert_array_equal(loaded[key], value)
    first = path.read_bytes()
    write_npz(path, arrays)
    assert path.read_bytes() == first


def test_torch_adapter_batches_samples(written: dict[int, Path]) -> None:
    torch = pytest.importorskip("torch")
    from slfm_ros.core.sim.torch_dataset import TorchMultiView, TorchStream

    loader = torch.utils.data.DataLoader(TorchMultiView(ShardedDataset(written[1])), batch_size=2)
    batch = next(iter(loader))
    assert batch["images"].shape == (2, 2, 32, 48, 3) and batch["images"].dtype == torch.uint8
    assert batch["audio"].shape == (2, 2, CFG.clip_frames, 2)
    assert torch.all(batch["turns"][:, 0] == 0)
    assert batch["index"].tolist() == [0, 1]
    stream = iter(TorchStream(CFG, "train", seed=11, start=3))
    item = next(stream)
    assert int(item["index"]) == 3
    np.testing.assert_allclose(
        item["target_azimuths"].numpy(), ShardedDataset(written[1])[3].target_azimuths, atol=1e-6
    )
