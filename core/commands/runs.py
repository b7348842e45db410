"""`mothtui runs [--runs DIR] [--json]`: every run of the store, newest first (damaged ones described),
with its tags and its disk use (and the total)."""

from __future__ import annotations

import json

from core.cli import resolve_runs
from core.diskcache import disk_usages
from core.runlist import fmt_bytes, list_runs


def run(args) -> int:
    runs_dir = resolve_runs(args)
    summaries = list_runs(runs_dir)
    sizes = disk_usages(runs_dir, summaries)  # remembered in <runs>/.cache while a run does not change
    total = sum(sizes.values())
    if args.json:
        print(json.dumps({"runs_dir": str(runs_dir), "disk_bytes": total,
                          "runs": [{**s.to_dict(), "disk_bytes": sizes[s.run_id]} for s in summaries]}))
        return 0
    if not summaries:
        print(f"no runs in {runs_dir}")
        return 0
    print(f"{'run':<28} {'status':<12} {'nets':>5} {'levels':>7}  {'created':<25} {'disk':>8}")
    for s in summaries:
        levels = "–" if s.levels_complete is None else f"{s.levels_complete}/{s.levels}"
        nets = "–" if s.nets is None else str(s.nets)
        note = f"  ({s.damaged})" if s.damaged else ""
        if s.owner is not None:  # who writes it: `pid 123` here, `HOST (last heard from 2m ago)` elsewhere
            note += f"  [{s.owner.where()}]"
        tags = ("  " + " ".join(f"#{t}" for t in s.tags)) if s.tags else ""
        print(f"{s.run_id:<28} {s.status:<12} {nets:>5} {levels:>7}  {s.created or '–':<25} "
              f"{fmt_bytes(sizes[s.run_id]):>8}{tags}{note}")
    print(f"{len(summaries)} runs, {fmt_bytes(total)} on disk")
    return 0
