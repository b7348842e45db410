"""`mothtui sweep --preset P [--config F] [--set k=v ...] --grid key=v1,v2,... [--id NAME]
[--parallel K] [--slurm FILE] [--dry-run] [--json]`: one run per point of a grid, all members of a named sweep.

Every point's config is resolved first (a bad value is refused, naming the point, and nothing is
written). Then the sweep's record is written (`core.sweep`) and its runs go into the local queue
(`core.queue`), whose supervisor runs them one after the other (or `--parallel K` at once); with
`--slurm FILE` a SLURM job-array script is written instead (`core.slurm`), one array task per point.
Prints the sweep's name last.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core import queue as q
from core.cli import config_options, json_option, parallel_option, resolve_runs, runs_option
from core.config import DEFAULT_PRESET
from core.errors import MothError
from core.sweep import SweepSpec, default_name, plan_sweep, toml_value, write_sweep


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config_options(parser)
    runs_option(parser)
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="a swept key and its values (repeatable: the grids are crossed); "
                             "commas inside [...] belong to a value")
    parser.add_argument("--id", dest="sweep_id", default=None, metavar="NAME",
                        help="sweep name; its runs are NAME-01, NAME-02, ... (default: date, time and preset)")
    parallel_option(parser)
    parser.add_argument("--slurm", type=Path, default=None, metavar="FILE",
                        help="write a SLURM job-array script (one task per point) instead of queueing here")
    parser.add_argument("--dry-run", action="store_true", help="check and list the points; write nothing")
    json_option(parser)


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


def plan(args) -> int:
    """`mothtui plan ... --grid ...`: the plan of each distinct config of the sweep (points that differ
    only in `seed` share one) and the total: the largest memory per device, the summed time here and
    on each named GPU (divided by `--parallel`, the runs the queue runs at once)."""
    from core.commands.plan import text as plan_text
    from core.errors import DoesNotFit
    from core.plan import DEFAULT_CALIBRATION_S, build_plan
    from core.config import resolve
    from core.formatting import fmt_bytes, fmt_duration

    runs_dir = resolve_runs(args)
    preset = args.preset or DEFAULT_PRESET
    spec = SweepSpec.build(preset, args.config, args.overrides, args.grid)
    points = spec.expand()
    groups: dict[str, list[dict]] = {}
    for values in points:  # seeds change no shape and no time: one plan for all of them
        shape = {k: v for k, v in values.items() if k != "seed"}
        groups.setdefault(json.dumps(shape, sort_keys=True), []).append(values)
    calibration = args.calibration or max(1.0, DEFAULT_CALIBRATION_S / len(groups))
    parallel = args.parallel or 1
    rows: list[dict[str, Any]] = []
    fits = True
    for members in groups.values():
        values = {k: v for k, v in members[0].items() if k != "seed"}
        config = resolve(preset, args.config, spec.point_overrides(members[0]))
        label = " ".join(f"{k}={toml_value(v)}" for k, v in values.items()) or "(seeds only)"
        try:
            p = build_plan(config, preset, runs_dir, calibration_s=calibration).to_json()
        except DoesNotFit as err:
            fits = False
            rows.append({"values": values, "runs": len(members), "fits": False, "error": str(err)})
            continue
        rows.append({"values": values, "runs": len(members), "fits": p["memory"]["fits"],
                     "memory_peak": p["memory"]["peak"], "time_here_s": p["time"]["here"]["total_s"],
                     "time_gpus_s": {k: g["run_s"] for k, g in p["time"]["gpus"].items()}, "label": label})
        fits = fits and p["memory"]["fits"]
    ok = [r for r in rows if "memory_peak" in r]
    total: dict[str, Any] = {"runs": len(points), "distinct_configs": len(groups), "parallel": parallel, "fits": fits,
             "memory_peak": max((r["memory_peak"] for r in ok), default=None),
             "time_here_s": sum(r["time_here_s"] * r["runs"] for r in ok) / parallel,
             "time_gpus_s": {k: sum(r["time_gpus_s"][k] * r["runs"] for r in ok) / parallel
                             for k in (ok[0]["time_gpus_s"] if ok else {})}}
    if args.json:
        print(json.dumps({"preset": preset, "keys": spec.keys, "configs": rows, "total": total}))
    else:
        print(f"plan of a sweep: {len(points)} runs, {len(groups)} distinct configs, {parallel} at a time")
        for r in rows:
            if "error" in r:
                print(f"  {r['runs']:>3} × {' '.join(f'{k}={toml_value(v)}' for k, v in r['values'].items())}: "
                      f"{r['error']}")
                continue
            gpus = " · ".join(f"{k} {fmt_duration(s)}" for k, s in r["time_gpus_s"].items())
            print(f"  {r['runs']:>3} × {r['label']}: peak {fmt_bytes(r['memory_peak'])} per device"
                  f"{'' if r['fits'] else ' (does NOT fit)'} · here {fmt_duration(r['time_here_s'])} each · {gpus}")
        gpus = " · ".join(f"{k} {fmt_duration(s)}" for k, s in total["time_gpus_s"].items())
        print(f"total: peak {fmt_bytes(total['memory_peak'])} per device · here {fmt_duration(total['time_here_s'])}"
              f" · {gpus}" + ("" if fits else " · some configs do NOT fit"))
    if not fits:
        raise DoesNotFit("a config of the sweep does not fit (see above)")
    return 0
