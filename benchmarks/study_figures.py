"""The figures docs/science.md compares with the seed's, from one stored run (numpy only, no JAX).

    python benchmarks/study_figures.py study --runs runs [--threshold 1e-3]

Prints Markdown: median, p10 and p90 validation loss per level with the steps trained, the
sparsest level under the threshold for each network, the per-layer remaining fraction and the
first-layer connections kept per input at each network's chosen level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_id")
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--threshold", type=float, default=None)
    args = parser.parse_args()

    import numpy as np

    from core.analysis.structure import input_connections, remaining_fractions
    from core.runstore import open_run
    from core.schema import INPUT_NAMES
    from core.select import select_run

    run = open_run(args.runs, args.run_id)
    threshold = args.threshold if args.threshold is not None else run.config.threshold
    val, sparsity = run.losses("val"), run.sparsity
    print(f"run `{run.run_id}`: {run.nets} networks {'-'.join(map(str, run.config.layer_sizes))}, "
          f"{run.levels_complete}/{run.levels} levels, threshold {threshold:g}\n")
    print("| level | target | median val | p10 | p90 |")
    print("|---:|---:|---:|---:|---:|")
    for level in range(run.levels_complete):
        p10, med, p90 = np.percentile(val[level], [10, 50, 90])
        print(f"| {level} | {sparsity[level]:.2f} | {med:.2e} | {p10:.2e} | {p90:.2e} |")
    selection = select_run(run, threshold=threshold)
    chosen = [(c.network, c.level) for c in selection.choices]
    print("\n| network | sparsest level under the threshold | its target | its val loss |")
    print("|---:|---:|---:|---:|")
    for net, level in chosen:
        print(f"| {net} | {level} | {sparsity[level]:.2f} | {val[level, net]:.2e} |" if level is not None
              else f"| {net} | – | – | – |")
    levels = [lv for _, lv in chosen if lv is not None]
    if levels:
        print(f"\nmedian chosen sparsity: {np.median([sparsity[lv] for lv in levels]):.3f} "
              f"({len(levels)} of {run.nets} networks pass)")
    rows, inputs = [], []
    for net, level in chosen:
        if level is None:
            continue
        masks = run.level(level, [net]).weight_masks
        rows.append(remaining_fractions([m for m in masks])[0])
        inputs.append(input_connections(masks[0])[0])
    if rows:
        print("\nremaining fraction per layer at the chosen levels (mean over networks): "
              + ", ".join(f"{x:.4f}" for x in np.mean(rows, axis=0)))
        width = run.config.layer_sizes[1]
        print("\nfirst-layer connections kept per input at the chosen levels (median % of "
              f"{width}): " + ", ".join(f"{name} {100 * v / width:.1f}"
                                        for name, v in zip(INPUT_NAMES, np.median(inputs, axis=0))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
