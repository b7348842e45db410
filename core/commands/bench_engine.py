"""`mothtui bench engine [--nets N] [--batch B] [--steps K] [--hidden ...] [--precision P] [--eval-batch R] [--repeats N] [--json]`.

Steady-state training throughput of the engine (network-samples/s, model FLOP/s, fraction of
this machine's measured float32 matmul peak), with the seed's loop structure measured in the
same run for comparison, and the evaluation's throughput (network-rows/s, FLOP/s, fraction of
peak; `evaluation` in the JSON).
"""

from __future__ import annotations

import argparse
import json

from core.cli import json_option
from core.config import PRECISIONS
from core.errors import ConfigError


def _hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--hidden {text!r}: expected comma-separated widths, e.g. 400,400,400,16") from None
    if not widths or min(widths) < 1:
        raise ConfigError(f"--hidden {text!r}: widths must be positive")
    return widths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nets", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--hidden", default="400,400,400,16")
    parser.add_argument("--precision", default="float32", help="float32 | tf32 | bf16")
    parser.add_argument("--eval-batch", type=int, default=65_536, metavar="ROWS",
                        help="the config's eval_batch for the evaluation (default 65536; blocks are capped by the device)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each, the best kept (default 5)")
    json_option(parser)


def run(args) -> int:
    hidden = _hidden(args.hidden)
    if min(args.nets, args.batch, args.steps, args.eval_batch, args.repeats) < 1:
        raise ConfigError("--nets, --batch, --steps, --eval-batch and --repeats must be positive")
    if args.precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}")
    from core.engine.bench import benchmark

    result = benchmark(args.nets, args.batch, hidden, args.steps, args.precision, repeats=args.repeats,
                       eval_batch=args.eval_batch)
    if args.json:
        print(json.dumps(result))
        return 0
    seed = result.get("seed_loop", {})
    print(f"engine: {result['nets']} nets {'-'.join(map(str, result['layers']))}, batch {result['batch']}, "
          f"{result['steps_per_call']} steps per call, {result['precision']}, {result['devices']} device(s)")
    print(f"  {result['steps_per_s']:,.1f} steps/s · {result['network_samples_per_s']:,.0f} network-samples/s · "
          f"{result['flops_per_s'] / 1e9:,.1f} GFLOP/s = {result['peak_fraction']:.0%} of the measured "
          f"matmul peak ({result['matmul_peak_flops'] / 1e9:,.1f} GFLOP/s)")
    print(f"  networks in groups of {result['group']}")
    if seed:
        print(f"seed's loop structure: {seed['steps_per_s']:,.1f} steps/s · {seed['peak_fraction']:.0%} of peak "
              f"→ engine is {result['speedup_vs_seed_loop']:.2f}x")
    ev = result["evaluation"]
    print(f"evaluation: {ev['network_rows_per_s']:,.0f} network-rows/s · {ev['flops_per_s'] / 1e9:,.1f} GFLOP/s = "
          f"{ev['peak_fraction']:.0%} of peak ({ev['block_rows']:,}-row blocks, networks in groups of {ev['group']})")
    print(f"load average {result['load_average']:.2f} at the start, {result['load_average_end']:.2f} at the end")
    return 0
