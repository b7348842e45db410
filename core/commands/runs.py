"""`mothtui runs [--runs DIR] [--json]`: every run of the store, newest first (damaged ones described),
with its tags, its parent when it is a branch (`from RUN:LEVEL`), and its disk use (and the total). A
sweep's runs are listed together under one line (done/total, the sweep's ETA; `core.sweep_status`),
and `--json` names each run's `sweep` and `parent`."""

from __future__ import annotations

import argparse
import json

from core.cli import json_option, resolve_runs, runs_option
from core.diskcache import disk_usages
from core.formatting import fmt_bytes
from core.runlist import RunSummary, list_runs
from core.sweep_status import SweepStatus, sweep_statuses

HEADER = f"{'run':<28} {'status':<12} {'nets':>5} {'levels':>7}  {'created':<25} {'disk':>8}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    runs_option(parser)
    json_option(parser)


def run(args) -> int:
    runs_dir = resolve_runs(args)
    summaries = list_runs(runs_dir)
    sizes = disk_usages(runs_dir, summaries)  # remembered in <runs>/.cache while a run does not change
    total = sum(sizes.values())
    sweeps = sweep_statuses(runs_dir, summaries)
    if args.json:
        print(json.dumps({"runs_dir": str(runs_dir), "disk_bytes": total,
                          "runs": [{**s.to_dict(), "disk_bytes": sizes[s.run_id]} for s in summaries],
                          "sweeps": [s.to_dict() for s in sweeps]}))
        return 0
    if not summaries:
        print(f"no runs in {runs_dir}")
        return 0
    print(HEADER)
    by_name = {s.name: s for s in sweeps}
    shown: set[str] = set()
    for s in summaries:
        if s.sweep and s.sweep in by_name:  # the whole sweep where its newest run would be
            if s.sweep in shown:
                continue
            shown.add(s.sweep)
            print(_sweep_line(by_name[s.sweep]))
            for member in summaries:
                if member.sweep == s.sweep:
                    print(_line(member, sizes[member.run_id], indent="  "))
            continue
        print(_line(s, sizes[s.run_id]))
    print(f"{len(summaries)} runs, {fmt_bytes(total)} on disk")
    return 0


def _sweep_line(s: SweepStatus) -> str:
    return f"▾ sweep {s.name} · {s.summary()}"


def _line(s: RunSummary, size: int, indent: str = "") -> str:
    levels = "–" if s.levels_complete is None else f"{s.levels_complete}/{s.levels}"
    nets = "–" if s.nets is None else str(s.nets)
    note = f"  ({s.damaged})" if s.damaged else ""
    if s.owner is not None:  # who writes it: `pid 123` here, `HOST (last heard from 2m ago)` elsewhere
        note += f"  [{s.owner.where()}]"
    tags = ("  " + " ".join(f"#{t}" for t in s.tags)) if s.tags else ""
    tags += f"  {s.lineage}" if s.parent else ""  # a branch: the run and level it started from
    name = indent + s.run_id
    return (f"{name:<28} {s.status:<12} {nets:>5} {levels:>7}  {s.created or '–':<25} "
            f"{fmt_bytes(size):>8}{tags}{note}")
