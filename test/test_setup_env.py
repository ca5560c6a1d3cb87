"""tools/setup_env.sh says which Debian packages it is about to install before it installs them.

dpkg-query and apt-get are replaced by scripts on PATH (the real apt-get would change the
machine): every package looks missing, and apt-get records its call and fails, which ends the
set-up right there.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tools" / "setup_env.sh"


def _tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_the_package_list_is_printed_before_apt_get_runs(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _tool(bin_dir, "dpkg-query", "exit 1")
    _tool(bin_dir, "apt-get", 'echo "apt-get was called: $*"; exit 3')
    _tool(bin_dir, "sudo", 'exec "$@"')
    venv = tmp_path / "v"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "VENV": str(venv)}
    try:
        run = subprocess.run(
            ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    finally:  # the set-up's lock file for this environment
        lock = hashlib.sha256(str(venv).encode()).hexdigest()[:12]
        Path(f"/tmp/slfm-setup-{lock}.lock").unlink(missing_ok=True)
    assert run.returncode != 0  # the recording apt-get fails
    lines = run.stdout.splitlines()
    announce = next(i for i, line in enumerate(lines) if "about to install" in line)
    called = next(i for i, line in enumerate(lines) if line.startswith("apt-get was called"))
    assert announce < called
    for package in ("libportaudio2", "pulseaudio", "espeak-ng", "libmysofa1", "cmake", "g++"):
        assert package in lines[announce]
    assert not venv.exists()  # nothing past the packages ran
