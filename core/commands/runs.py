"""`mothtui runs [--runs DIR] [--json]`: every run of the store, newest first (damaged ones described)."""

from __future__ import annotations

import json

from core.cli import resolve_runs
from core.runstore import list_runs


def run(args) -> int:
    runs_dir = resolve_runs(args)
    summaries = list_runs(runs_dir)
    if args.json:
        print(json.dumps({"runs_dir": str(runs_dir), "runs": [s.to_dict() for s in summaries]}))
        return 0
    if not summaries:
        print(f"no runs in {runs_dir}")
        return 0
    print(f"{'run':<28} {'status':<12} {'nets':>5} {'levels':>7}  created")
    for s in summaries:
        levels = "–" if s.levels_complete is None else f"{s.levels_complete}/{s.levels}"
        nets = "–" if s.nets is None else str(s.nets)
        note = f"  ({s.damaged})" if s.damaged else ""
        if s.owner is not None:  # who writes it: `pid 123` here, `HOST (last heard from 2m ago)` elsewhere
            note += f"  [{s.owner.where()}]"
        print(f"{s.run_id:<28} {s.status:<12} {nets:>5} {levels:>7}  {s.created or '–'}{note}")
    return 0
