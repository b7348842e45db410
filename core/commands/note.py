"""`mothtui note RUN [TEXT ...] [--runs DIR]`: set a run's note ('' clears it); no text: print it."""

from __future__ import annotations

from core.cli import resolve_runs
from core.runstore import open_run


def run(args) -> int:
    run_store = open_run(resolve_runs(args), args.run_id)
    if args.text:
        run_store.set_labels(note=" ".join(args.text))
    print(run_store.note)
    return 0
