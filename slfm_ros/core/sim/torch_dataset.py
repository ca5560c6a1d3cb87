"""torch.utils.data adapters of the multi-view datasets (the only sim module importing torch).

``TorchMultiView(source)``: map-style, over a ``ShardedDataset`` or an ``OnTheFlyDataset``.
``TorchStream(cfg, split, seed)``: endless on-the-fly stream; DataLoader worker w of n renders
indices start + w, start + w + n, ..., so workers never repeat a sample.

Each item is a dict of tensors:
    images           (K, H, W, 3) uint8 RGB
    audio            (K, F, 2) float32, channel 0 left
    yaws             (K,) float32, world yaw of each view, radians
    turns            (K,) float32, theta_i = yaw_i - yaw_0 (turns[0] = 0), radians
    target_azimuths  (K,) float32, azimuth of the target source in each view, radians
    index            () int64, sample index in the split (metadata: ``source.metadata(index)``
                     for sharded data)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.utils.data

from slfm_ros.core.sim.dataset import OnTheFlyDataset, SampleSource
from slfm_ros.core.sim.scene import MultiViewSample, SceneConfig


def sample_tensors(sample: MultiViewSample, index: int) -> dict[str, torch.Tensor]:
    """The tensors of one sample (see the module docstring)."""
    return {
        "images": torch.from_numpy(np.ascontiguousarray(sample.images)),
        "audio": torch.from_numpy(np.ascontiguousarray(sample.audio, dtype=np.float32)),
        "yaws": torch.from_numpy(sample.yaws.astype(np.float32)),
        "turns": torch.from_numpy(sample.turns.astype(np.float32)),
        "target_azimuths": torch.from_numpy(sample.target_azimuths.astype(np.float32)),
        "index": torch.tensor(index, dtype=torch.int64),
    }


class TorchMultiView(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Map-style dataset of sample tensors."""

    def __init__(self, source: SampleSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return sample_tensors(self.source[int(index)], int(index))


class TorchStream(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """Endless iterable dataset of on-the-fly samples, split across DataLoader workers."""

    def __init__(self, cfg: SceneConfig, split: str, seed: int, start: int = 0):
        self.source = OnTheFlyDataset(cfg, split, seed)
        self.start = int(start)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        index = self.start + worker
        while True:
            yield sample_tensors(self.source[index], index)
            index += workers
