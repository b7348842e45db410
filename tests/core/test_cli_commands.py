"""The command line's structure: `core.cli.COMMANDS` names each command's module, which owns its
arguments and its run; parsing a command imports that module alone, and `--help` imports none."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import COMMANDS, Command, build_parser

ROOT = Path(__file__).resolve().parents[2]


def _leaves(commands: tuple[Command, ...]) -> list[Command]:
    return [leaf for c in commands for leaf in (_leaves(c.commands) if c.commands else [c])]


@pytest.mark.parametrize("command", _leaves(COMMANDS), ids=lambda c: c.name)
def test_each_command_module_owns_its_arguments_and_its_run(command):
    module = importlib.import_module(f"core.commands.{command.module}")
    assert callable(getattr(module, command.arguments)) and callable(module.run)


def test_every_command_is_complete_for_the_shell_completion():
    parser = build_parser(complete=True)
    sub = next(a for a in parser._actions if a.dest == "command")
    assert list(sub.choices) == [c.name for c in COMMANDS]
    train = sub.choices["train"]
    assert {"--preset", "--config", "--set", "--runs", "--distributed", "--coordinator"} <= set(
        train._option_string_actions)


def _modules_after(argv: list[str]) -> list[str]:
    code = ("import sys, json\nfrom core.cli import build_parser\n"
            f"try:\n    build_parser().parse_args({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('core.commands', 'numpy', 'zarr', 'jax')))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_imports_no_command_and_a_command_only_its_own():
    assert _modules_after(["--help"]) == []
    assert [m for m in _modules_after(["queue", "list"]) if m.startswith("core.commands.")] == ["core.commands.queue"]


def test_one_command_line_builder_quotes_for_the_shell(tmp_path, monkeypatch):
    import shlex

    from core import cmdline, owner

    runs = tmp_path / "my runs"
    hint = cmdline.resume_hint("r1", runs)
    assert f"'{runs}'" in hint and shlex.split(hint) == ["mothtui", "resume", "r1", "--runs", str(runs)]
    assert cmdline.argv(["resume", "r1"]) == [sys.executable, "-m", "core", "resume", "r1"]
    monkeypatch.setattr(sys, "argv", [str(ROOT / "core" / "__main__.py"), "train", "--set", "hidden=[8, 8]"])
    assert owner.command_line() == "mothtui train --set 'hidden=[8, 8]'"
