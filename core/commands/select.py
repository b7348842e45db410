"""`mothtui select RUN_ID [--threshold T] [--split val] [--override NET=LEVEL ...] [--json]`: the sparse pick of every network.

Prints a table of the picks, the histogram of chosen sparsity over the ensemble (the paper's main
figure) and the median / p10 / p90 loss per level (or, with --json, the contract's document, which
carries the same under "histogram" and "loss_by_level"). Exits non-zero with one line on stderr
when no network passes, so scripts notice an empty selection (with --json, after printing the
document, whose networks then all have `"level": null`).
"""

from __future__ import annotations

import argparse
import json

from core.cli import json_option, resolve_runs, run_id_argument, runs_option, selection_options
from core.formatting import fmt_value
from core.runstore import open_run
from core.schema import check_split
from core.select import Selection, check_threshold, histogram_lines, parse_overrides, require_any, select_run



def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_id_argument(parser)
    runs_option(parser)
    selection_options(parser)
    json_option(parser)


def run(args) -> int:
    threshold = None if args.threshold is None else check_threshold(args.threshold)
    split = check_split(args.split)
    run_store = open_run(resolve_runs(args), args.run_id)
    overrides = parse_overrides(args.overrides)
    selection = select_run(run_store, threshold, split, overrides)
    if args.json:  # the document even when empty (every network "level": null), then the exit status
        print(json.dumps(selection.to_dict()))
    require_any(selection)
    if args.json:
        return 0
    print(f"run {selection.run} · threshold {selection.threshold:g} ({selection.split}) · "
          f"{run_store.levels_complete}/{run_store.levels} levels complete")
    print(f"{'net':>5} {'level':>5} {'sparsity':>8} {split + ' loss':>10}  {'best loss':>9}")
    for c in selection.choices:
        level = fmt_value(c.level, "d") + ("*" if c.manual else "")
        print(f"{c.network:>5} {level:>5} {fmt_value(c.sparsity, '.3f'):>8} "
              f"{fmt_value(c.loss, '.3g'):>10}  {fmt_value(c.best_loss, '.3g'):>9}")
    print(f"{selection.passing}/{len(selection.choices)} networks pass · "
          f"median sparsity {selection.median_sparsity:.3f}"
          + (" · * chosen by hand" if any(c.manual for c in selection.choices) else ""))
    print()
    print(f"chosen sparsity over {len(selection.choices)} networks (sparsity, level, count):")
    for line in histogram_lines(selection.histogram()):
        print(f"  {line}")
    print()
    _print_loss_by_level(selection)
    return 0


def _print_loss_by_level(selection: Selection) -> None:
    """Median, 10th and 90th percentile loss of each level over the ensemble's finite losses."""
    print(f"{selection.split} loss per level over the ensemble:")
    print(f"{'level':>5} {'sparsity':>8} {'p10':>10} {'median':>10} {'p90':>10} {'nets':>5}")
    for row in selection.loss_by_level:
        print(f"{row.level:>5} {row.sparsity:>8.3f} {fmt_value(row.p10, '.3g'):>10} {fmt_value(row.median, '.3g'):>10} "
              f"{fmt_value(row.p90, '.3g'):>10} {row.finite:>5}")
