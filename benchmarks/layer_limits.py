"""Per level and per layer, where a run's networks give out: the tables of docs/science.md's
"beyond the paper" section and docs/cluster.md's precision comparison (numpy only, no JAX).

    python benchmarks/layer_limits.py RUN [RUN ...] [--runs runs] [--nets 0,1] [--threshold 1e-3] [--side-by-side]

For each run, one Markdown table, a row per complete level: the target, the median val loss
[p10-p90] and how many networks are at most the threshold, then per weight layer the median count
of weights kept, per hidden layer the median count of live units (units with a path in and out:
`core.analysis.structure.ghost_free`), and the outputs left with no weight (summed over the
networks). Then each network's chosen level (the sparsest at most the threshold, as `select`) with
its val loss and kept weights per layer. `--nets` restricts everything to those networks, so that
a run of 2 networks compares with the same 2 networks of a run of 4 (network i is drawn from
fold_in(seed, i) whatever the count). `--side-by-side`: one table instead, each network's val loss
per level in every run, then each network's chosen target and kept weights per layer (the runs must
share the schedule: the precision comparison). `--float64 ROWS`: with `--side-by-side`, each
network's val loss again, recomputed in float64 numpy from the stored weights on the first ROWS
rows of the val split (the contract's forward pass), so that a precision's effect on training is
told apart from its rounding of the stored evaluation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def level_rows(run, nets: list[int], threshold: float) -> list[str]:
    from core.analysis.structure import ghost_free

    sizes = run.config.layer_sizes
    layers = len(sizes) - 1
    head = (["level", "target", "median val [p10–p90]", f"≤ {threshold:g}"]
            + [f"kept L{k} ({sizes[k]}×{sizes[k + 1]})" for k in range(layers)]
            + [f"live h{k + 1}" for k in range(layers - 1)] + ["dead outputs"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    val = run.losses("val")[:, nets]
    for level in range(run.levels_complete):
        masks = [np.asarray(m, bool) for m in run.level(level, nets).weight_masks]
        kept = [np.median(m.reshape(len(nets), -1).sum(axis=1)) for m in masks]
        _, ghosts = ghost_free(masks)
        live = [np.median(sizes[k + 1] - ghosts[:, k]) for k in range(layers - 1)]
        dead = int((masks[-1].sum(axis=1) == 0).sum())
        p10, med, p90 = np.percentile(val[level], [10, 50, 90])
        cells = ([str(level), f"{run.sparsity[level]:.3f}", f"{med:.2e} [{p10:.2e}–{p90:.2e}]",
                  f"{int((val[level] <= threshold).sum())}/{len(nets)}"]
                 + [f"{k:g}" for k in kept] + [f"{u:g}" for u in live] + [str(dead)])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def chosen_rows(run, nets: list[int], threshold: float) -> list[str]:
    from core.select import select_run

    choices = {c.network: c.level for c in select_run(run, threshold=threshold).choices}
    val = run.losses("val")
    lines = ["| network | chosen level | target | val loss | kept weights per layer |", "|---:|---:|---:|---:|---|"]
    for n in nets:
        level = choices.get(n)
        if level is None:
            lines.append(f"| {n} | – | – | – | – |")
            continue
        masks = run.level(level, [n]).weight_masks
        kept = ", ".join(str(int(np.asarray(m).sum())) for m in masks)
        lines.append(f"| {n} | {level} | {run.sparsity[level]:.3f} | {val[level, n]:.2e} | {kept} |")
    return lines


def float64_val(run, nets: list[int], rows: int) -> np.ndarray:
    """(levels, len(nets)) MSE in float64 of the stored weights on the first `rows` val rows."""
    from core.data import prepare

    data = prepare(run.attrs["dataset"], run.config.splits, scaler=run.attrs["scaler"])
    x = data.splits["val"].x[:rows].astype(np.float64)
    y = data.splits["val"].y[:rows].astype(np.float64)
    out = np.zeros((run.levels_complete, len(nets)))
    for level in range(run.levels_complete):
        arrays = run.level(level, nets)
        for i in range(len(nets)):
            h = x
            for k, (w, b) in enumerate(zip(arrays.weights, arrays.biases)):
                h = h @ np.asarray(w[i], np.float64) + np.asarray(b[i], np.float64)
                h = np.tanh(h) if k < len(arrays.weights) - 1 else h
            out[level, i] = np.mean((h - y) ** 2)
    return out


def side_by_side(runs: list, nets: list[int], threshold: float, float64_rows: int = 0) -> list[str]:
    from core.select import select_run

    head = ["level", "target"] + [f"{r.config.precision} net {n}" for r in runs for n in nets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    vals = [r.losses("val") for r in runs]
    for level in range(min(r.levels_complete for r in runs)):
        cells = [str(level), f"{runs[0].sparsity[level]:.3g}"] + [f"{v[level, n]:.2e}" for v in vals for n in nets]
        lines.append("| " + " | ".join(cells) + " |")
    chosen, kept = ["chosen target", ""], ["kept per layer at it", ""]
    for r in runs:
        choices = {c.network: c.level for c in select_run(r, threshold=threshold).choices}
        for n in nets:
            level = choices.get(n)
            chosen.append("–" if level is None else f"{r.sparsity[level]:.3g}")
            kept.append("–" if level is None else
                        "/".join(str(int(np.asarray(m).sum())) for m in r.level(level, [n]).weight_masks))
    lines += ["| " + " | ".join(chosen) + " |", "| " + " | ".join(kept) + " |"]
    if float64_rows:
        again = [float64_val(r, nets, float64_rows) for r in runs]
        lines += ["", f"val loss recomputed in float64 on the first {float64_rows:,} val rows:", "",
                  lines[0], lines[1]]
        for level in range(min(r.levels_complete for r in runs)):
            cells = [str(level), f"{runs[0].sparsity[level]:.3g}"] + [f"{a[level, i]:.2e}" for a in again
                                                                       for i in range(len(nets))]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_ids", nargs="+")
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--nets", default=None, help="networks to show, e.g. 0,1 (default: all)")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--side-by-side", action="store_true", help="one table of every run's networks")
    parser.add_argument("--float64", type=int, default=0, metavar="ROWS",
                        help="with --side-by-side: the val loss again, in float64 on ROWS val rows")
    args = parser.parse_args()

    from core.runstore import open_run

    if args.side_by_side:
        runs = [open_run(args.runs, r) for r in args.run_ids]
        nets = [int(n) for n in args.nets.split(",")] if args.nets else list(range(min(r.nets for r in runs)))
        threshold = args.threshold if args.threshold is not None else runs[0].config.threshold
        print("\n".join(side_by_side(runs, nets, threshold, args.float64)))
        return 0

    for run_id in args.run_ids:
        run = open_run(args.runs, run_id)
        nets = [int(n) for n in args.nets.split(",")] if args.nets else list(range(run.nets))
        threshold = args.threshold if args.threshold is not None else run.config.threshold
        parent = run.attrs.get("parent")
        origin = f", branch of {parent['run']}:{parent['level']}" if parent else ""
        print(f"### `{run_id}`: {'-'.join(map(str, run.config.layer_sizes))}, networks {nets}, "
              f"precision {run.config.precision}{origin}\n")
        print("\n".join(level_rows(run, nets, threshold)))
        print()
        print("\n".join(chosen_rows(run, nets, threshold)))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
