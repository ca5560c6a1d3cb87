from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from slfm_ros.core.atomic_io import atomic_write, atomic_write_bytes, atomic_write_text


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_content_lands_and_no_temp_file_is_left(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    returned = atomic_write(target, lambda handle: handle.write(b"abc\x00def"))
    assert returned == target
    assert target.read_bytes() == b"abc\x00def"
    assert atomic_write_text(tmp_path / "t.txt", "héllo\n").read_text(encoding="utf-8") == "héllo\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin", "t.txt"]


def test_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "data.json"
    target.write_text("old")
    atomic_write_bytes(target, b"new", fsync=False)
    assert target.read_bytes() == b"new"


def test_failing_write_leaves_existing_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    target.write_bytes(b"good weights")

    def half_write(handle: BinaryIO) -> None:
        handle.write(b"partial")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        atomic_write(target, half_write)
    assert target.read_bytes() == b"good weights"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_failing_write_creates_nothing_for_a_new_file(tmp_path: Path) -> None:
    def fail(handle: BinaryIO) -> None:
        raise ValueError("bad data")

    with pytest.raises(ValueError):
        atomic_write(tmp_path / "new.bin", fail)
    assert list(tmp_path.iterdir()) == []


def test_default_permissions_follow_umask_not_mkstemp(tmp_path: Path, umask_022: None) -> None:
    assert _mode(atomic_write_bytes(tmp_path / "a", b"x")) == 0o644
    assert _mode(atomic_write_text(tmp_path / "b", "x")) == 0o644


def test_explicit_mode_is_applied(tmp_path: Path, umask_022: None) -> None:
    assert _mode(atomic_write_bytes(tmp_path / "a", b"x", mode=0o600)) == 0o600
    assert _mode(atomic_write_bytes(tmp_path / "b", b"x", mode=0o664)) == 0o664


def test_missing_folder_raises_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "no" / "such" / "file", b"x")
    assert list(tmp_path.iterdir()) == []
