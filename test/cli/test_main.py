"""The `slfm` command registry: every subcommand loads, and only the chosen one is imported."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from slfm_ros.cli.main import COMMANDS, build_parser, main


def test_every_registered_command_has_the_module_interface() -> None:
    assert len({c.name for c in COMMANDS}) == len(COMMANDS)
    for command in COMMANDS:
        module = importlib.import_module(command.module)
        assert callable(module.add_arguments) and callable(module.run), command.module
        build_parser(command.name)  # its arguments register without clashes


def test_help_lists_the_commands_without_importing_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from slfm_ros.cli.main import build_parser\n"
        "text = build_parser().format_help()\n"
        "heavy = [m for m in ('torch', 'rclpy', 'cv2', 'scipy') if m in sys.modules]\n"
        "print(heavy)\n"
        "print(text)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[0] == "[]"
    assert all(c.name in out for c in COMMANDS)


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["fly"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
