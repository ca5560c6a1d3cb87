"""Small evaluation bags shared by the bag tests (rendered once per session)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rosbags")
pytest.importorskip("rclpy")
pytest.importorskip("audio_common_msgs")

from slfm_ros.bags.make import write_scene
from slfm_ros.bags.reader import BagMessage, open_bag
from slfm_ros.bags.scenarios import RenderedScene, render_scene
from slfm_ros.bags.writer import BagWriter

SECONDS = 4.0


@pytest.fixture(scope="session")
def scene() -> RenderedScene:
    """turning-speaker, 4 s, seed 0."""
    return render_scene("turning-speaker", SECONDS, seed=0)


@pytest.fixture(scope="session")
def bag_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bags")


@pytest.fixture(scope="session")
def mcap_bag(scene: RenderedScene, bag_folder: Path) -> Path:
    return write_scene(scene, bag_folder / "turning_mcap", "mcap").path


@pytest.fixture(scope="session")
def sqlite_bag(scene: RenderedScene, bag_folder: Path) -> Path:
    return write_scene(scene, bag_folder / "turning_sqlite", "sqlite3").path


def copy_bag(
    src: Path,
    dst: Path,
    keep: Callable[[BagMessage], bool] = lambda m: True,
    change: Callable[[BagMessage], bytes] | None = None,
    storage: str = "mcap",
) -> Path:
    """A copy of ``src`` with only the messages ``keep`` accepts (topics without any are left
    out), bytes replaced by ``change``."""
    with open_bag(src) as reader:
        messages = [m for m in reader.messages() if keep(m)]
        types = {t.name: t.msgtype for t in reader.topics.values()}
    with BagWriter(dst, storage) as writer:
        for topic in dict.fromkeys(m.topic for m in messages):
            writer.add_topic(topic, types[topic])
        for m in messages:
            writer.write_raw(m.topic, m.log_ns, change(m) if change else m.raw)
    return dst


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(argv: Iterable[str]) -> CliResult:
    """Run ``slfm ARGV`` in process (the ``bag`` and ``demo`` subcommands are added to the
    registry if it does not list them yet)."""
    from slfm_ros.cli import main as cli

    commands = cli.COMMANDS
    extra = [
        cli.Command("bag", "slfm_ros.cli.bag_cmd", "evaluation bags"),
        cli.Command("demo", "slfm_ros.cli.demo_cmd", "the demo"),
    ]
    names = {c.name for c in commands}
    out, err = io.StringIO(), io.StringIO()
    try:
        cli.COMMANDS = tuple(commands) + tuple(c for c in extra if c.name not in names)
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(list(argv))
    finally:
        cli.COMMANDS = commands
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def bag_copy() -> Callable[..., Path]:
    """``copy_bag`` (see there)."""
    return copy_bag


@pytest.fixture(scope="session")
def slfm() -> Callable[[Iterable[str]], CliResult]:
    """``run_cli`` (see there)."""
    return run_cli
