"""Engine throughput against the number of networks trained at once: a markdown table for the README.

    python benchmarks/scaling.py [--nets 8,32,128,400] [--hidden 400,400,400,16] [--batch 128]
        [--steps auto] [--repeats 3] [--precision float32] [--json]

For each N, the engine's compiled training chunk (`core.engine.bench.engine_rate`: K steps per
call, donated state, masks, per-network early-stop bookkeeping) is timed on N full-size networks
after one compile call, and so is the engine's evaluation of the same N networks
(`core.engine.bench._Evaluation`: whole blocks of the engine's block rows, in its network groups,
about 3 x steps x batch rows: the FLOPs of one training call), alternately; each rate is the best
of `--repeats` timed calls (the machine may be shared). `--steps auto` runs max(32, 256 // N)
steps per call: on a CPU the networks train in small groups that each run all the call's steps
(`core.engine.train.auto_group`), and a group's first step of a call brings its state in from
memory, so short calls under-state the rate (400 networks: 18 % slower per step at 8 steps than
at 32). Columns: the training group, steps/s, network-samples/s (steps/s x batch x N), model
GFLOP/s (6 x batch x weights per network and step) and that as a fraction of this machine's
float32 matmul peak measured in the same process; evaluation GFLOP/s (2 x rows x weights per
network) and its fraction. On a CPU the defaults take about ten minutes; on a GPU use
`--steps 200` (the engine's steps_per_call) so that dispatch does not dominate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def measure(nets_list, hidden, batch, steps, repeats, precision) -> dict:
    import jax

    from core.engine import train
    from core.engine.bench import _EngineLoop, _eval_rates, _Evaluation, _rates, matmul_peak

    load = os.getloadavg()[0]
    peak = matmul_peak()
    rows = []
    for nets in nets_list:
        t0 = time.perf_counter()
        k = max(32, 256 // nets) if steps == "auto" else int(steps)
        engine = _EngineLoop(nets, batch, tuple(hidden), k, precision)
        evaluation = _Evaluation(nets, tuple(hidden), 3 * k * batch, precision, 65_536)
        best_train = best_eval = float("inf")
        for _ in range(repeats):
            best_train = min(best_train, engine.run())
            best_eval = min(best_eval, evaluation.run())
        rate = _rates(k / best_train, nets, batch, engine.sizes)
        ev = _eval_rates(best_eval, nets, evaluation.rows, evaluation.sizes)
        rows.append({"nets": nets, "steps_per_call": k, **rate, "peak_fraction": rate["flops_per_s"] / peak,
                     "group": train.group_size(engine.sc, nets, engine.sizes, batch),
                     "evaluation": {**ev, "peak_fraction": ev["flops_per_s"] / peak, "block_rows": evaluation.block,
                                    "rows": evaluation.rows},
                     "wall_s": time.perf_counter() - t0})
        del engine, evaluation
        print(f"  N={nets}: {rate['steps_per_s']:.3g} steps/s ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    peak = max(peak, matmul_peak(repeats=2))
    for r in rows:  # fractions of the best peak seen
        r["peak_fraction"] = r["flops_per_s"] / peak
        r["evaluation"]["peak_fraction"] = r["evaluation"]["flops_per_s"] / peak
    return {"layers": [10, *hidden, 7], "batch": batch, "precision": precision,
            "platform": jax.default_backend(), "device": str(jax.local_devices()[0].device_kind),
            "devices": len(jax.local_devices()), "cpu_count": os.cpu_count(),
            "machine": platform.processor() or platform.machine(), "jax": jax.__version__,
            "load_average": load, "load_average_end": os.getloadavg()[0], "matmul_peak_flops": peak, "rows": rows}


def table(result: dict) -> str:
    """The README's markdown table of one measurement."""
    head = (f"{'-'.join(map(str, result['layers']))}, batch {result['batch']}, {result['precision']}, "
            f"{result['platform']} ({result['device']}, {result['devices']} device(s), "
            f"{result['cpu_count']} cores), jax {result['jax']}; float32 matmul peak "
            f"{result['matmul_peak_flops'] / 1e9:.1f} GFLOP/s; 1-min load average "
            f"{result['load_average']:.1f} at start, {result.get('load_average_end', float('nan')):.1f} at end")
    lines = [head, "", "| networks N | steps per call | group | steps/s | network-samples/s | model GFLOP/s | "
             "of matmul peak | evaluation GFLOP/s | of matmul peak |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        ev = r["evaluation"]
        lines.append(f"| {r['nets']} | {r['steps_per_call']} | {r['group']} | {r['steps_per_s']:.3g} | "
                     f"{r['network_samples_per_s']:,.0f} | {r['flops_per_s'] / 1e9:.1f} | {r['peak_fraction']:.0%} | "
                     f"{ev['flops_per_s'] / 1e9:.1f} | {ev['peak_fraction']:.0%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="8,32,128,400", help="comma-separated network counts")
    parser.add_argument("--hidden", default="400,400,400,16")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", default="auto", help="training steps per compiled call, or auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="float32", choices=("float32", "tf32", "bf16"))
    parser.add_argument("--json", action="store_true", help="print the measurement as JSON too")
    args = parser.parse_args()
    result = measure(_ints(args.nets), _ints(args.hidden), args.batch, args.steps, args.repeats, args.precision)
    print(table(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
