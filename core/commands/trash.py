"""`mothtui delete RUN`, `mothtui restore RUN`, `mothtui purge [--older-than 7d] [--yes]` (core.trash).

Purging is the one command that deletes a run for good, so it never does so unasked: on a terminal
it lists what it would remove and asks (y/N); without a terminal (a script, cron) it refuses unless
`--yes` is given.
"""

from __future__ import annotations

import argparse
import sys

from core import cmdline
from core.cli import resolve_runs, runs_option
from core.errors import MothError
from core.trash import Trashed, delete_run, parse_age, purge, purgeable, restore_run


def _plural(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"


def _confirmed(runs: list[Trashed]) -> bool:
    """--yes was not given: ask on the terminal, refuse without one."""
    ids = ", ".join(t.run_id for t in runs)
    if not sys.stdin.isatty():
        raise MothError(f"purge would delete {_plural(len(runs))} for good ({ids}); "
                        "stdin is not a terminal, so pass --yes to confirm")
    print(f"delete {_plural(len(runs))} for good: {ids}? [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def add_delete_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id")
    runs_option(parser)


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id")
    runs_option(parser)


def add_purge_arguments(parser: argparse.ArgumentParser) -> None:
    runs_option(parser)
    parser.add_argument("--older-than", default=None, metavar="AGE",
                        help="only runs deleted longer ago than AGE, with a unit: 30m, 12h, 7d, 2w (default: all)")
    parser.add_argument("--yes", "-y", action="store_true",
                        help="do not ask (needed when stdin is not a terminal: scripts, cron)")


def run(args) -> int:
    runs_dir = resolve_runs(args)
    if args.action == "delete":
        where = delete_run(runs_dir, args.run_id)
        print(f"moved {args.run_id} to {where} ({cmdline.shell(['restore', args.run_id])} brings it back)")
    elif args.action == "restore":
        print(restore_run(runs_dir, args.run_id))
    else:
        age = 0.0 if args.older_than is None else parse_age(args.older_than)
        candidates = purgeable(runs_dir, age)
        if candidates and not args.yes and not _confirmed(candidates):
            print("nothing purged", file=sys.stderr)
            return 1
        gone = purge(runs_dir, age, only=candidates) if candidates else []
        print(f"purged {_plural(len(gone))}" + (f": {', '.join(t.run_id for t in gone)}" if gone else ""))
    return 0
