"""`mothtui note RUN [TEXT ...] [--runs DIR]`: set a run's note ('' clears it); no text: print it."""

from __future__ import annotations

import argparse

from core.cli import resolve_runs, run_id_argument, runs_option
from core.runstore import open_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_id_argument(parser)
    parser.add_argument("text", nargs="*", help="the note (words are joined with spaces)")
    runs_option(parser)


def run(args) -> int:
    run_store = open_run(resolve_runs(args), args.run_id)
    if args.text:
        run_store.set_labels(note=" ".join(args.text))
    print(run_store.note)
    return 0
