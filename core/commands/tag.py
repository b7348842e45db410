"""`mothtui tag RUN [+name|name|-name ...] [--runs DIR]`: add or remove a run's tags; none given: print them.

The changes are parsed here, not by argparse, so `-name` (remove) is not taken for an option.
Tags are stored in the run's attributes through `Run.set_labels`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli import resolve_runs, run_id_argument, runs_option
from core.errors import MothError
from core.runstore import check_tag, open_run


def parse_changes(items: list[str]) -> tuple[list[str], list[str], Path | None]:
    """(tags to add, tags to remove, --runs DIR or None) of the words after the run id."""
    add: list[str] = []
    remove: list[str] = []
    runs: Path | None = None
    words = iter(items)
    for word in words:
        if word == "--runs":
            given = next(words, None)
            if given is None:
                raise MothError("--runs needs a directory")
            runs = Path(given)
        elif word.startswith("--runs="):
            runs = Path(word.split("=", 1)[1])
        elif word.startswith("-"):
            remove.append(check_tag(word[1:]))
        else:
            add.append(check_tag(word[1:] if word.startswith("+") else word))
    return add, remove, runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    runs_option(parser)
    run_id_argument(parser)
    parser.add_argument("changes", nargs=argparse.REMAINDER, metavar="+TAG|-TAG",
                        help="tags to add (+name) or remove (-name); --runs DIR may follow")


def run(args) -> int:
    add, remove, runs = parse_changes(args.changes)
    if runs is not None:
        args.runs = runs
    run_store = open_run(resolve_runs(args), args.run_id)
    if add or remove:
        tags = [t for t in run_store.tags if t not in remove] + add
        run_store.set_labels(tags=tags)
    print(" ".join(run_store.tags))
    return 0
