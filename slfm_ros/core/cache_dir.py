"""Where slfm_ros keeps what it can rebuild: ONNX exports, TensorRT engines, room responses."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$SLFM_CACHE_DIR``, else ``$XDG_CACHE_HOME/slfm_ros``, else ``~/.cache/slfm_ros``."""
    if os.environ.get("SLFM_CACHE_DIR"):
        return Path(os.environ["SLFM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "slfm_ros"
