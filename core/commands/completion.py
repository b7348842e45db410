"""`mothtui completion SHELL`: the shell completion script, generated from the argument parser (shtab).

The script completes commands, options, preset names and run ids; run ids come from
`mothtui completion --list runs` (the run store of `$MOTHTUI_RUNS`, the settings, or `./runs`),
which reads directory names only (core.runlist: standard library), so a TAB answers quickly.
"""

from __future__ import annotations

import argparse

from core.errors import MothError


def script(shell: str) -> str:
    """The completion script of `shell` (bash, zsh, fish or tcsh)."""
    import shtab

    from core.cli import build_parser

    return shtab.complete(build_parser(complete=True), shell=shell)


def run_ids() -> list[str]:
    """Ids of the runs of the default run store, for the completion scripts (no zarr, no numpy)."""
    from core.settings import default_runs_dir

    runs_dir = default_runs_dir()
    if not runs_dir.is_dir():
        return []
    return sorted(p.name for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", nargs="?", choices=("bash", "zsh", "fish", "tcsh"), help="the shell")
    parser.add_argument("--list", choices=("runs",), default=None, help=argparse.SUPPRESS)  # used by the scripts


def run(args) -> int:
    if args.list == "runs":
        print("\n".join(run_ids()))
        return 0
    if args.shell is None:
        raise MothError("name a shell: mothtui completion bash|zsh|fish|tcsh")
    try:
        text = script(args.shell)
    except ImportError:
        raise MothError("shell completion needs the shtab package: pip install shtab") from None
    print(text)
    return 0
