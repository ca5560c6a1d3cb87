"""Stable train/val/test splits of files, decided by a hash of the file name alone.

The same name lands in the same split on any machine, whatever its folder or the order of a
listing, so splits never share a file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from slfm_ros.core.errors import ConfigError

SPLITS = ("train", "val", "test")


def split_of(name: str, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """Split ("train", "val" or "test") of the file ``name`` (its folder part is ignored).

    fractions: train/val/test shares, non-negative, normalised to sum to one.
    """
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise ConfigError(
            f"split fractions must be three non-negative shares with a positive sum, "
            f"got {fractions}"
        )
    digest = hashlib.sha256(Path(name).name.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2.0**64
    total = sum(fractions)
    if position < fractions[0] / total:
        return "train"
    if position < (fractions[0] + fractions[1]) / total:
        return "val"
    return "test"
