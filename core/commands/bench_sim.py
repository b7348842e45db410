"""`mothtui bench sim [--samples N] [--json]`: steady-state trajectories per second of the simulator.

Samples are simulated in fixed-size chunks as the dataset writer does; one chunk is run first
to compile, and only the steady state after it is timed. `measure_simulator` is also used by
benchmarks/seed_sim.py, which compares with the seed's odeint approach in the same process.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from core.cli import json_option
from core.errors import MothError

#: Rows per timed call: the dataset writer's CPU chunk, or all samples if fewer.
BENCH_CHUNK = 65536


def measure_simulator(samples: int, *, seed: int = 0, scale: float = 1.0, dtype=np.float32,
                      chunk: int | None = None) -> dict:
    """Simulate `samples` random strokes after a warm-up chunk; returns rates and settings."""
    import jax

    from core.sim import api, sample_rows

    if samples <= 0:
        raise MothError(f"--samples must be positive, got {samples}")
    chunk = min(chunk or BENCH_CHUNK, samples)
    initial, controls = sample_rows(seed, 0, samples)
    initial, controls = initial.astype(dtype), controls.astype(dtype)
    start = time.perf_counter()
    api.simulate_checked(initial[:chunk], controls[:chunk], scale=scale, dtype=dtype)
    compile_s = time.perf_counter() - start
    invalid, start = 0, time.perf_counter()
    for lo in range(0, samples, chunk):
        ini, ctl = initial[lo:lo + chunk], controls[lo:lo + chunk]
        rows = len(ini)
        if rows < chunk:  # pad the tail to the compiled shape, as the dataset writer does
            ini = np.concatenate([ini, np.zeros((chunk - rows, 8), dtype)])
            ctl = np.concatenate([ctl, np.zeros((chunk - rows, 3), dtype)])
        _, valid = api.simulate_checked(ini, ctl, scale=scale, dtype=dtype)
        invalid += int(rows - valid[:rows].sum())
    seconds = time.perf_counter() - start
    devices = jax.local_devices()
    return {
        "benchmark": "sim",
        "trajectories_per_s": samples / seconds,
        "samples": samples,
        "seconds": seconds,
        "warmup_seconds": compile_s,
        "chunk": chunk,
        "invalid": invalid,
        "device": f"{len(devices)} x {devices[0].device_kind}",
        "platform": devices[0].platform,
        "dtype": np.dtype(dtype).name,
        "method": api.INTEGRATOR["method"],
        "steps": api.integrator_settings(scale, dtype)["total_steps"],
        "scale": scale,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=200_000)
    json_option(parser)


def run(args: argparse.Namespace) -> int:
    from core.sim import use_all_cpu_cores
    use_all_cpu_cores()
    result = measure_simulator(args.samples)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"simulator: {result['trajectories_per_s']:,.0f} trajectories/s "
              f"({result['samples']:,} samples in {result['seconds']:.2f} s after a {result['warmup_seconds']:.1f} s "
              f"warm-up; {result['method']}, {result['steps']} steps, {result['dtype']}, {result['device']}; "
              f"{result['invalid']} invalid)")
    return 0
