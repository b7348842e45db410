"""Motif analysis at the paper's scale: 400 networks x 1,000 random networks, one level.

    python benchmarks/motifs.py [--nets 400] [--samples 1000] [--pruned 0.94]
        [--hidden 400,400,400,16] [--seed 0] [--json]

Random masks of the paper's network (10-400-400-400-16-7 by default), each layer pruned to the
same fraction by keeping a uniformly random round((1 - pruned) x size) of its weights (as
layer-wise pruning keeps exactly that many), stand in for one level of a run. Timed, as
`core.analysis.pipeline` runs them for every level: ghost units found per network
(`core.analysis.structure.ghost_free`), then `core.analysis.motifs.level_motifs` (counts on the
stored and ghost-free masks, `--samples` null-model networks per network, z-scores). Prints the
wall and CPU seconds of each step and the machine's load (`os.getloadavg`) before and after: the
development machine is shared, and a process on a loaded 2-core machine gets less than a core.
With `--masks K` it also times K random networks of the first network's null model built whole, one
at a time (`null_mask` per layer pair, then `motif_counts`: the per-network loop this replaces, in
numpy), and extrapolates that to nets x samples.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.analysis import motifs as mo  # noqa: E402
from core.analysis.structure import ghost_free  # noqa: E402


def random_masks(sizes, nets: int, pruned: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Per layer `(nets, in, out)` bool masks keeping round((1 - pruned) * in * out) random weights."""
    masks = []
    for a, b in zip(sizes, sizes[1:]):
        keep = max(1, round((1 - pruned) * a * b))
        order = np.argsort(rng.random((nets, a * b)), axis=1)[:, :keep]
        m = np.zeros((nets, a * b), bool)
        np.put_along_axis(m, order, True, axis=1)
        masks.append(m.reshape(nets, a, b))
    return masks


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=400)
    parser.add_argument("--samples", type=int, default=mo.DEFAULT_SAMPLES)
    parser.add_argument("--pruned", type=float, default=0.94)
    parser.add_argument("--hidden", default="400,400,400,16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--masks", type=int, default=0, metavar="K")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = (10, *(int(h) for h in args.hidden.split(",")), 7)
    rng = np.random.default_rng(args.seed)
    masks = random_masks(sizes, args.nets, args.pruned, rng)
    load_before = os.getloadavg()
    (live, ghosts), ghost_wall, ghost_cpu = _timed(lambda: ghost_free(masks))
    result, wall, cpu = _timed(lambda: mo.level_motifs(masks, live, args.samples, [args.seed, 0]))
    load_after = os.getloadavg()
    units, edges = mo.live_layout(live)
    per_mask_cpu = None
    if args.masks:
        u, e = units[0], edges[0]

        def whole_masks():
            for _ in range(args.masks):
                mo.motif_counts([mo.null_mask(int(u[k]), int(u[k + 1]), int(e[k]), rng)[None] for k in range(len(e))])

        per_mask_cpu = _timed(whole_masks)[2] / args.masks
    report = {
        "sizes": sizes, "nets": args.nets, "samples": args.samples, "pruned": args.pruned,
        "ghost_free_wall_s": round(ghost_wall, 2), "ghost_free_cpu_s": round(ghost_cpu, 2),
        "motifs_wall_s": round(wall, 2), "motifs_cpu_s": round(cpu, 2),
        "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "live_units_median": np.median(units, axis=0).tolist(),
        "live_weights_median": np.median(edges, axis=0).tolist(),
        "ghosts_median": np.median(ghosts, axis=0).tolist(),
        "whole_mask_cpu_s_each": per_mask_cpu,
        "z_median": {name: (None if not np.isfinite(v) else round(float(v), 2))
                     for name, v in zip(mo.MOTIFS, mo._nanmedian(result.z, axis=0))},
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{args.nets} networks {'-'.join(map(str, sizes))} at {args.pruned:.0%} pruned (random masks), "
          f"{args.samples:,} random networks each")
    print(f"ghost units: {ghost_wall:.1f} s wall, {ghost_cpu:.1f} s CPU")
    print(f"motifs (counts, null model, z): {wall:.1f} s wall, {cpu:.1f} s CPU")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)")
    print(f"live units per layer (median) {report['live_units_median']}, weights {report['live_weights_median']}")
    print("median z: " + ", ".join(f"{k} {v}" for k, v in report["z_median"].items()))
    if per_mask_cpu is not None:
        print(f"whole random masks one at a time: {per_mask_cpu * 1e3:.1f} ms CPU each, "
              f"{per_mask_cpu * args.nets * args.samples:,.0f} s CPU for {args.nets} x {args.samples:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
