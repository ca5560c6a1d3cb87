"""Panorama sources for the simulator: procedural worlds and folders of real panoramas.

Both give (H, W, 3) uint8 RGB equirectangular panoramas in the convention of
``slfm_ros.core.geometry.panorama`` (W = 2 H, forward in the middle, left toward column 0) and
share ``draw(rng, split) -> (panorama, panorama_id)`` so a dataset writer can use either.
Splits never share a panorama: procedural worlds mix the split name into their seed, and folder
images are assigned to a split by a stable hash of their file name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import ConfigError, DatasetError, InputFormatError
from slfm_ros.core.geometry.panorama import validate_panorama
from slfm_ros.core.sim.courtyard_layout import build_courtyard
from slfm_ros.core.sim.irregular_layout import build_irregular_outdoor, build_irregular_room
from slfm_ros.core.sim.procedural_world import DirectionGrid, render_boxes, render_room
from slfm_ros.core.sim.room_layout import build_room
from slfm_ros.core.sim.splits import SPLITS, split_of

Panorama = npt.NDArray[np.uint8]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class PanoramaSource(Protocol):
    def draw(self, rng: np.random.Generator, split: str) -> tuple[Panorama, str]:
        """A panorama of ``split`` chosen with ``rng``, and a stable identifier of it."""
        ...


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}; got {split!r}.")


class ProceduralPanoramas:
    """Random rooms and courtyards, ray-cast to equirectangular panoramas.

    width: panorama width in pixels (height is width / 2); even, at least 64.
    seed: base seed; ``panorama(key)`` is a pure function of (seed, key).
    outdoor_probability: share of outdoor worlds (courtyards, plazas, parks).
    irregular_probability: share of worlds that are not boxes (``irregular_layout``: rooms
        with walls at any angle, curved or L-shaped rooms, clutter at any angle, plazas of
        facades at any angle, parks with a curved tree line). 0 gives only the box worlds of
        ``room_layout`` and ``courtyard_layout``, exactly as before this option existed.
    """

    def __init__(
        self,
        width: int = 2048,
        seed: int = 0,
        outdoor_probability: float = 0.2,
        irregular_probability: float = 0.5,
    ):
        if width < 64 or width % 2:
            raise ConfigError(f"panorama width must be even and >= 64; got {width}.")
        if not 0.0 <= outdoor_probability <= 1.0:
            raise ConfigError(f"outdoor_probability must be in [0, 1]; got {outdoor_probability}.")
        if not 0.0 <= irregular_probability <= 1.0:
            raise ConfigError(
                f"irregular_probability must be in [0, 1]; got {irregular_probability}."
            )
        self.width = int(width)
        self.seed = int(seed)
        self.outdoor_probability = float(outdoor_probability)
        self.irregular_probability = float(irregular_probability)
        self._grid = DirectionGrid.of(self.width)

    def generate(self, rng: np.random.Generator) -> Panorama:
        """One new world seen from its panorama centre: (width / 2, width, 3) uint8 RGB."""
        outdoor = rng.random() < self.outdoor_probability
        # No draw at all when every world is a box, so those streams stay as they were.
        irregular = self.irregular_probability > 0 and rng.random() < self.irregular_probability
        if irregular:
            world = build_irregular_outdoor(rng) if outdoor else build_irregular_room(rng)
        else:
            world = build_courtyard(rng) if outdoor else build_room(rng)
        pano = render_room(world, self.width, self._grid)
        render_boxes(pano, world, self._grid)
        # Rooms are built axis-aligned; a random turn spreads their corners over all azimuths.
        return np.roll(pano, int(rng.integers(self.width)), axis=1)

    def panorama(self, key: int, split: str = "train") -> Panorama:
        """The panorama number ``key`` of ``split`` (deterministic)."""
        _check_split(split)
        return self.generate(np.random.default_rng([self.seed, SPLITS.index(split), int(key)]))

    def draw(self, rng: np.random.Generator, split: str) -> tuple[Panorama, str]:
        key = int(rng.integers(2**62))
        return self.panorama(key, split), f"procedural:{self.seed}:{split}:{key}"


class PanoramaFolder:
    """Equirectangular jpg/png panoramas in a folder (not recursive), sorted by file name.

    split_fractions: shares of train/val/test used by ``split_of``.
    """

    def __init__(
        self, path: str | Path, split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    ):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DatasetError(
                f"panorama folder {self.path} does not exist or is not a folder; "
                "pass a folder of equirectangular .jpg/.png images."
            )
        self.files = sorted(
            p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self.files:
            raise DatasetError(
                f"panorama folder {self.path} holds no .jpg/.jpeg/.png images; "
                "add 2:1 equirectangular panoramas."
            )
        if len(split_fractions) != 3 or min(split_fractions) < 0 or sum(split_fractions) <= 0:
            raise ConfigError(
                f"split_fractions must be 3 non-negative shares; got {split_fractions}."
            )
        self.split_fractions = tuple(float(f) for f in split_fractions)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.files]

    def split_of(self, name: str) -> str:
        return split_of(name, self.split_fractions)  # type: ignore[arg-type]

    def indices(self, split: str | None = None) -> list[int]:
        """Indices of the files in ``split`` (all files for None)."""
        if split is None:
            return list(range(len(self.files)))
        _check_split(split)
        return [i for i, p in enumerate(self.files) if self.split_of(p.name) == split]

    def load(self, index: int) -> Panorama:
        """Panorama ``index`` as (H, W, 3) uint8 RGB; raises InputFormatError if unusable."""
        path = self.files[index]
        data = np.fromfile(path, dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            raise InputFormatError(f"{path}: cannot be decoded as an image; replace or remove it.")
        rgb = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        return validate_panorama(rgb, source=str(path))

    def draw(self, rng: np.random.Generator, split: str) -> tuple[Panorama, str]:
        candidates = self.indices(split)
        if not candidates:
            raise DatasetError(
                f"no panorama of {self.path} falls in split {split!r} "
                f"({len(self.files)} files); add more panoramas or change split_fractions."
            )
        index = candidates[int(rng.integers(len(candidates)))]
        return self.load(index), self.files[index].name
