"""`mothtui sweep --preset P [--config F] [--set k=v ...] --grid key=v1,v2,... [--id NAME]
[--parallel K] [--slurm FILE] [--dry-run] [--json]`: one run per point of a grid, all members of a named sweep.

Every point's config is resolved first (a bad value is refused, naming the point, and nothing is
written). Then the sweep's record is written (`core.sweep`) and its runs go into the local queue
(`core.queue`), whose supervisor runs them one after the other (or `--parallel K` at once); with
`--slurm FILE` a SLURM job-array script is written instead (`core.slurm`), one array task per point.
Prints the sweep's name last.
"""

from __future__ import annotations

import json
from pathlib import Path

from core import queue as q
from core.cli import resolve_runs
from core.config import DEFAULT_PRESET
from core.errors import MothError
from core.sweep import SweepSpec, default_name, plan_sweep, toml_value, write_sweep


def run(args) -> int:
    runs_dir = resolve_runs(args)
    preset = args.preset or DEFAULT_PRESET
    if args.parallel is not None and args.parallel < 1:
        raise MothError(f"--parallel must be 1 or more, got {args.parallel}")
    spec = SweepSpec.build(preset, args.config, args.overrides, args.grid)
    name = args.sweep_id or default_name(preset)
    where = f"slurm:{Path(args.slurm).resolve()}" if args.slurm else "queue"
    record = plan_sweep(runs_dir, spec, name, where=where, parallel=args.parallel)
    if args.json:
        print(json.dumps(record.to_dict()))
    else:
        for point in record.points:
            values = " ".join(f"{k}={toml_value(v)}" for k, v in point.values.items())
            print(f"  {point.run:<28} {values}")
    if args.dry_run:
        return 0
    if args.slurm:
        from core.slurm import write_script

        path = write_script(Path(args.slurm), record, spec, runs_dir)  # refuses to overwrite a file
        try:
            write_sweep(runs_dir, record)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if not args.json:
            print(f"{len(record.points)} runs: submit with `sbatch {path}` (again to resume what did not finish)")
            print(name)
        return 0
    entries = [q.Entry(p.run, spec.train_args(p.values), sweep=name) for p in record.points]
    write_sweep(runs_dir, record)
    state = q.enqueue(runs_dir, entries, args.parallel)
    if not args.json:
        ahead = len(state.with_state("queued", "paused")) - len(entries)
        print(f"{len(entries)} runs queued" + (f" after {ahead} others" if ahead > 0 else "")
              + (" (the queue is paused: `mothtui queue resume`)" if state.paused else ""))
        print(name)
    return 0
