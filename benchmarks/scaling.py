"""Engine throughput against the number of networks trained at once: a markdown table for the README.

    python benchmarks/scaling.py [--nets 8,32,128,400] [--hidden 400,400,400,16] [--batch 128]
        [--steps auto] [--repeats 3] [--precision float32] [--json]

For each N, the engine's compiled training chunk (`core.engine.bench.engine_rate`: K steps per
call, donated state, masks, per-network early-stop bookkeeping) is timed on N full-size networks
after one compile call; the rate is the best of `--repeats` timed calls (the machine may be
shared). `--steps auto` runs max(2, 256 // N) steps per call, so every timed call does about the
same work (a CPU call of 8 networks is otherwise too short to time well). Columns: steps/s, network-samples/s (steps/s x batch x N), model GFLOP/s (6 x batch x
weights per network and step) and that as a fraction of this machine's float32 matmul peak
measured in the same process. On a CPU the defaults finish in a few minutes; on a GPU use
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

    from core.engine.bench import engine_rate, matmul_peak

    peak = matmul_peak()
    rows = []
    for nets in nets_list:
        t0 = time.perf_counter()
        k = max(2, 256 // nets) if steps == "auto" else int(steps)
        rate = engine_rate(nets, batch, tuple(hidden), k, precision, repeats)
        rows.append({"nets": nets, "steps_per_call": k, **rate, "peak_fraction": rate["flops_per_s"] / peak,
                     "wall_s": time.perf_counter() - t0})
        print(f"  N={nets}: {rate['steps_per_s']:.3g} steps/s ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    return {"layers": [10, *hidden, 7], "batch": batch, "precision": precision,
            "platform": jax.default_backend(), "device": str(jax.local_devices()[0].device_kind),
            "devices": len(jax.local_devices()), "cpu_count": os.cpu_count(),
            "machine": platform.processor() or platform.machine(), "jax": jax.__version__,
            "load_average": os.getloadavg()[0], "matmul_peak_flops": peak, "rows": rows}


def table(result: dict) -> str:
    """The README's markdown table of one measurement."""
    head = (f"{'-'.join(map(str, result['layers']))}, batch {result['batch']}, {result['precision']}, "
            f"{result['platform']} ({result['device']}, {result['devices']} device(s), "
            f"{result['cpu_count']} cores), jax {result['jax']}; float32 matmul peak "
            f"{result['matmul_peak_flops'] / 1e9:.1f} GFLOP/s; 1-min load average at start "
            f"{result['load_average']:.1f}")
    lines = [head, "", "| networks N | steps per call | steps/s | network-samples/s | model GFLOP/s | of matmul peak |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['nets']} | {r['steps_per_call']} | {r['steps_per_s']:.3g} | {r['network_samples_per_s']:,.0f} | "
                     f"{r['flops_per_s'] / 1e9:.1f} | {r['peak_fraction']:.0%} |")
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
