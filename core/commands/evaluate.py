"""`mothtui evaluate RUN_ID --scale S[,S...] [--samples N] [--json]`: the run's networks on other body sizes.

Claims the run first (one writer: never beside training or an analysis), simulates held-out
strokes at each scale (cached under `<runs>/.datasets/`), evaluates every completed level of
every network and stores the result in `<run>/extrapolation` (core.analysis.extrapolate).
"""

from __future__ import annotations

import argparse
import json
import sys

from core.analysis.extrapolate import evaluate_scales, parse_scales
from core.cli import json_option, resolve_runs, runs_option
from core.commands.compare import _loss
from core.owner import claim
from core.runstore import open_run, run_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id")
    runs_option(parser)
    parser.add_argument("--scale", required=True, metavar="S[,S...]", help="body scales, e.g. 0.5,2")
    parser.add_argument("--samples", type=int, default=20_000, metavar="N",
                        help="held-out strokes simulated per scale (default 20000; cached)")
    json_option(parser)


def run(args) -> int:
    scales = parse_scales(args.scale)
    runs_dir = resolve_runs(args)
    open_run(runs_dir, args.run_id)  # an unknown run is one line before anything is claimed
    with claim(run_path(runs_dir, args.run_id), run_id=args.run_id):
        run_store = open_run(runs_dir, args.run_id)
        say = None if args.json else (lambda text: print(text, file=sys.stderr, flush=True))
        summary = evaluate_scales(run_store, runs_dir, scales, args.samples, progress=say)
    if args.json:
        print(json.dumps({"run": run_store.run_id, **summary}))
        return 0
    print(f"run {run_store.run_id} · level 0 test loss (s = {run_store.config.scale:g}) "
          f"{_loss(summary['level0_test_median'])} · median over {run_store.nets} networks")
    print(f"{'level':>5} {'target':>6} {'own test':>9} " + " ".join(f"{'s=' + format(s, 'g'):>9}"
                                                             for s in summary["scales"]))
    for level in range(summary["levels"]):
        print(f"{level:>5} {summary['sparsity'][level]:>6.2f} {_loss(summary['test_loss_median'][level]):>9} "
              + " ".join(f"{_loss(m[level]):>9}" for m in summary["loss_median"]))
    for s, q, v, n in zip(summary["scales"], summary["ratio_to_level0"], summary["valid_fraction"],
                          summary["rows"]):
        ratio = "–" if q is None else f"{q:.0f}×"
        print(f"s = {s:g}: level 0 {ratio} its own test loss · {n:,} valid strokes ({v:.0%})")
    return 0
