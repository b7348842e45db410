"""`mothtui compare RUN|SWEEP ... [--threshold T] [--split val] [--json]`: runs side by side.

A sweep's name stands for its runs (those with a completed level), and adds the chosen sparsity
against the swept keys (`core.sweep_study`; `"sweeps"` in the JSON).

Read-only (claims nothing): the config keys that differ, the loss per level (median and p10-p90
over networks), the chosen-sparsity histograms, the structure at the chosen levels and the
stored extrapolation to other body scales. The numbers are `core.study`'s, as in the app.
"""

from __future__ import annotations

import argparse
import json

from core.cli import comparison_options, json_option, resolve_runs, runs_option
from core.study import Comparison, compare_ids, short_value


#: The widest a config value's column grows before its values are cut (with `…`).
MAX_VALUE_WIDTH = 40


def _cell(text: str, width: int) -> str:
    """`text` in a column of `width`: cut with `…` so that two spaces always separate it from the next."""
    text = str(text)
    if len(text) > width - 2:
        text = text[: max(1, width - 3)] + "…"
    return f"{text:<{width}}"


def _loss(value) -> str:
    return "–" if value is None or value != value else f"{value:.2e}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_ids", nargs="+", metavar="RUN|SWEEP", help="runs, or sweeps (all their runs)")
    runs_option(parser)
    comparison_options(parser)
    json_option(parser)


def run(args) -> int:
    from core.sweep_study import expand_names, sweep_lines, sweep_view

    runs_dir = resolve_runs(args)
    run_ids, sweeps = expand_names(runs_dir, args.run_ids)  # a sweep's name stands for its runs
    comparison = compare_ids(runs_dir, run_ids, args.threshold, args.split)
    views = [sweep_view(record, comparison) for record in sweeps]
    if args.json:
        print(json.dumps({**comparison.to_dict(), "sweeps": views}))
        return 0
    _print(comparison)
    for view in views:
        print("\n".join(sweep_lines(view)))
    return 0


def _print(c: Comparison) -> None:
    ids = c.run_ids
    width = max(12, *(len(i) for i in ids)) + 2
    at = "each run's own threshold" if c.threshold is None else f"threshold {c.threshold:g}"
    print(f"compare · {len(ids)} runs · {at} ({c.split})")
    for r in c.runs:  # branches (train --from): where each starts
        if r.parent:
            print(f"lineage: {r.run_id} from {r.parent['run']} level {r.parent['level']}")
    print("config: only what differs" if c.diff else "config: identical")
    if c.diff:
        shown = {key: [short_value(v) for v in values] for key, values in c.diff.items()}
        longest = max(len(text) for values in shown.values() for text in values)
        vwidth = max(width, min(MAX_VALUE_WIDTH, longest + 2))
        kwidth = max(18, *(len(key) + 2 for key in shown))
        print("  " + _cell("key", kwidth) + "".join(_cell(i, vwidth) for i in ids))
        for key, values in shown.items():
            print("  " + _cell(key, kwidth) + "".join(_cell(v, vwidth) for v in values))
    print(f"median {c.split} loss per level [p10–p90]")
    levels = max(len(r.sparsity) for r in c.runs)
    cell = max(width, 35)
    print(f"  {'level':<6}" + "".join(_cell(i, cell) for i in ids))
    for level in range(levels):
        cells = []
        for r in c.runs:
            if level < len(r.sparsity):
                cells.append(f"{r.sparsity[level]:.2f} {_loss(r.loss_median[level])} "
                             f"[{_loss(r.loss_p10[level])}–{_loss(r.loss_p90[level])}]")
            else:
                cells.append("")
        print(f"  {level:<6}" + "".join(_cell(text, cell) for text in cells))
    print("chosen sparsity, networks per level")
    print(f"  {'sparsity':<9}" + "".join(f"{i:<{width}}" for i in ids))
    for s in c.sparsities:
        print(f"  {s:<9.2f}" + "".join(f"{'#' * min(r.histogram.get(s, 0), width - 5):<{width - 4}}"
                                        f"{r.histogram.get(s, 0):>3} " for r in c.runs))
    print(f"  {'none':<9}" + "".join(f"{'':<{width - 4}}{r.nets - r.chosen:>3} " for r in c.runs))
    print("at the chosen levels (median over chosen networks)")
    for r in c.runs:
        if r.remaining is None or r.inputs is None:  # both None together: no network chosen
            print(f"  {r.run_id}: no network chosen")
            continue
        layers = " ".join(f"{f:.3f}" for f in r.remaining)
        print(f"  {r.run_id}: median sparsity {r.chosen_median:.2f} · kept per layer {layers}")
        print("    first-layer connections kept: " +
              ", ".join(f"{name} {kept:.2f}" for name, kept in r.inputs.items()))
    for r in c.runs:
        e = r.extrapolation
        if not e:
            continue
        parts = [f"s={s:g}: level 0 {_loss(m[0])} ({'–' if q is None else f'{q:.0f}'}× own test), "
                 f"{v:.0%} valid" for s, m, q, v in zip(e["scales"], e["loss_median"], e["ratio_to_level0"],
                                                         e["valid_fraction"])]
        print(f"extrapolation {r.run_id} (level 0 test {_loss(e['level0_test_median'])}): " + "; ".join(parts))
