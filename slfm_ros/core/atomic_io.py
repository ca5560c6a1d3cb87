"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one.

Data goes to a hidden temporary file beside the target (``.<name>.<random>.tmp``, same folder,
hence same file system), is flushed and fsynced, then renamed over the target with os.replace.
On any failure the temporary file is removed and an existing target is left as it was.

Permissions: by default the new file gets what a plain ``open(path, "w")`` would give
(0o666 less the umask, 0o644 under the usual umask 022), unlike ``tempfile.mkstemp``, whose
files stay owner-only (0o600).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _open_temp(path: Path) -> tuple[int, Path]:
    """Create a new temporary file beside ``path``; the kernel applies the umask to 0o666."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, _CREATE_FLAGS, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], object],
    mode: int | None = None,
    fsync: bool = True,
) -> Path:
    """Write ``path`` through ``write(handle)`` (a binary file object) and return the path.

    mode: permission bits of the new file; None gives 0o666 less the umask, like ``open``.
    fsync: flush the data to disk before the rename; False suits caches that can be rebuilt.
    """
    target = Path(path)
    fd, tmp = _open_temp(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, mode: int | None = None, fsync: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically (see ``atomic_write``)."""
    return atomic_write(path, lambda handle: handle.write(data), mode=mode, fsync=fsync)


def atomic_write_text(
    path: str | os.PathLike[str],
    text: str,
    encoding: str = "utf-8",
    mode: int | None = None,
    fsync: bool = True,
) -> Path:
    """Write ``text`` (encoded with ``encoding``, newlines as given) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode(encoding), mode=mode, fsync=fsync)
