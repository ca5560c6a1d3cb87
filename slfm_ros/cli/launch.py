"""``slfm launch [name:=value ...]``: start the slfm_ros nodes without ``ros2 launch``.

It starts the nodes of ``slfm_ros.nodes.launch_description`` (the same description that
launch/slfm.launch.py uses) as child processes with the same parameter file, overrides,
remappings and namespace, prefixes their output with the node name, forwards Ctrl-C /
SIGTERM to them, and exits as soon as one of them exits (stopping the others).

Exit status: that of the first node that exited on its own (128 + N when signal N killed it),
0 after Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from typing import IO

from slfm_ros.core.errors import ConfigError

# Seconds a node gets to exit after SIGINT before SIGTERM, and again before SIGKILL.
STOP_GRACE_S = 5.0


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["use_mic:=false", ...]`` -> ``{"use_mic": "false"}``."""
    values = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise ConfigError(f"launch argument {item!r}: expected name:=value")
        values[name] = value
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from slfm_ros.nodes.launch_description import LAUNCH_ARGS

    lines = [f"  {a.name}:={a.default or repr('')}  {a.help}" for a in LAUNCH_ARGS]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "launch arguments (name:=value):\n" + "\n".join(lines)
    parser.add_argument("assignments", nargs="*", metavar="name:=value")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the node command lines and exit"
    )


def _pump(name: str, stream: IO[str], out: IO[str], lock: threading.Lock) -> None:
    for line in stream:
        with lock:
            out.write(f"[{name}] {line}")
            out.flush()


class Launcher:
    """The running child processes of one launch."""

    def __init__(
        self,
        commands: list[tuple[str, list[str]]],
        env: dict[str, str],
        out: IO[str] = sys.stdout,
    ):
        self.commands = commands
        self.env = env
        self.out = out
        self._lock = threading.Lock()
        self.procs: list[tuple[str, subprocess.Popen[str]]] = []
        self._threads: list[threading.Thread] = []
        self.stop_requested = False

    def say(self, text: str) -> None:
        with self._lock:
            self.out.write(f"[slfm launch] {text}\n")
            self.out.flush()

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        for name, cmd in self.commands:
            # Own session: Ctrl-C in the terminal reaches the nodes once, through us.
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                bufsize=1,
                env=env,
                start_new_session=True,
            )
            self.procs.append((name, proc))
            self.say(f"started {name} (pid {proc.pid}): {shlex.join(cmd)}")
            assert proc.stdout is not None
            thread = threading.Thread(
                target=_pump, args=(name, proc.stdout, self.out, self._lock), daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def wait_first_exit(self, poll_s: float = 0.1) -> tuple[str, int] | None:
        """Block until a node exits (its name and code) or a stop is requested (None)."""
        while not self.stop_requested:
            for name, proc in self.procs:
                code = proc.poll()
                if code is not None:
                    return name, code
            time.sleep(poll_s)
        return None

    def stop(self) -> None:
        """SIGINT to every running node, then SIGTERM, then SIGKILL for the stubborn."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            running = [(n, p) for n, p in self.procs if p.poll() is None]
            if not running:
                break
            for _, proc in running:
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + STOP_GRACE_S
            while time.monotonic() < deadline and any(p.poll() is None for _, p in running):
                time.sleep(0.05)
            if any(p.poll() is None for _, p in running) and sig != signal.SIGKILL:
                names = ", ".join(n for n, p in running if p.poll() is None)
                self.say(f"{names} still running after {signal.Signals(sig).name}; escalating")
        for thread in self._threads:
            thread.join(timeout=1.0)


def run(args: argparse.Namespace) -> int:
    from slfm_ros.nodes.launch_description import node_command, plan_nodes

    plans = plan_nodes(parse_assignments(args.assignments))
    commands = [(plan.name, node_command(plan)) for plan in plans]
    env = plans[0].env if plans else {}
    if args.dry_run:
        for key, value in env.items():
            print(f"env {key}={value}")
        for name, cmd in commands:
            print(f"{name}: {shlex.join(cmd)}")
        return 0
    return supervise(Launcher(commands, env))


def supervise(launcher: Launcher) -> int:
    """Start ``launcher``'s nodes and wait until one exits or Ctrl-C / SIGTERM arrives, then
    stop them all; the exit status described in the module doc."""
    for key, value in launcher.env.items():
        launcher.say(f"{key}={value}")

    def request_stop(signum: int, _frame: object) -> None:
        launcher.stop_requested = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        launcher.start()
        first = launcher.wait_first_exit()
        if first is None:
            launcher.say("stopping the nodes")
        else:
            name, code = first
            how = f" (killed by {signal.Signals(-code).name})" if code < 0 else ""
            launcher.say(f"{name} exited with code {code}{how}; stopping the other nodes")
            # Shell convention for a child killed by a signal.
            code = 128 - code if code < 0 else code
    finally:
        launcher.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
