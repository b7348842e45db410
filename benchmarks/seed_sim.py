"""Our JAX simulator against the seed's approach, measured in one process on the same machine.

The seed's approach (MothPruning): `scipy.integrate.odeint` (LSODA, default tolerances) once
per trajectory on a numba-compiled right-hand side, one worker process per core. Here it gets
a closed-form mass-matrix solve in its numba right-hand side (at least as fast as the seed's).

    python benchmarks/seed_sim.py [--samples 200000] [--seed-samples 2000] [--json]

Prints both rates and their ratio, and how many of the seed's trajectories came back wrong
(> 0.1 % / > 1 % of a state's range) compared with our simulator in float64 (which agrees
with the Radau reference to < 1e-5 of range; tests/core/test_sim.py).

The seed part runs first, in worker processes forked before JAX is imported (forking a
process that has started JAX's threads is unsafe).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.sim.sampling import sample_rows  # noqa: E402  (pure numpy)


def _seed_rhs_factory():
    """The numba right-hand side of model.md at s = 1, as the seed compiled it."""
    from numba import njit

    b_h, a_h, b_b, a_b = 0.5, 0.9, 0.75, 1.9
    L1, L2, L3 = 0.9, 1.9, 0.75
    m1 = 0.9 * 4 / 3 * math.pi * b_h**2 * a_h
    m2 = 0.4 * 4 / 3 * math.pi * b_b**2 * a_b
    I1 = 0.2 * m1 * b_h**2 * (1 + (a_h / b_h) ** 2)
    I2 = 0.2 * m2 * b_b**2 * (1 + (a_b / b_b) ** 2)
    S_h, S_b = math.pi * b_h**2, math.pi * b_b**2
    rho, mu, K, c, g = 0.00118, 0.000186, 23000.0, 14075.8, 980.0

    @njit(cache=False)
    def rhs(q, t, F, alpha, tau):
        x, xd, y, yd, th, thd, ph, phd = q
        speed = math.sqrt(xd * xd + yd * yd)
        re_h = rho * speed * 2 * b_h / mu
        re_b = rho * speed * 2 * b_b / mu
        cd_h = (24 / re_h if re_h > 0 else 0.0) + 6 / (1 + math.sqrt(re_h)) + 0.4
        cd_b = (24 / re_b if re_b > 0 else 0.0) + 6 / (1 + math.sqrt(re_b)) + 0.4
        k = 0.5 * rho * (cd_h * S_h + cd_b * S_b)
        st, ct, sp, cp = math.sin(th), math.cos(th), math.sin(ph), math.cos(ph)
        spring = K * (ph - th - math.pi)
        damp = c * (phd - thd)
        f = np.empty(4)
        f[0] = F * math.cos(alpha + th) - k * abs(xd) * xd + m1 * L1 * ct * thd**2 + m2 * L2 * cp * phd**2
        f[1] = (F * math.sin(alpha + th) - k * abs(yd) * yd + m1 * L1 * st * thd**2 + m2 * L2 * sp * phd**2
                - (m1 + m2) * g)
        f[2] = tau - m1 * g * L1 * ct + spring + damp + F * L3 * math.sin(alpha)
        f[3] = -tau - m2 * g * L2 * cp - spring - damp
        M = np.array([[m1 + m2, 0.0, -m1 * L1 * st, -m2 * L2 * sp],
                      [0.0, m1 + m2, m1 * L1 * ct, m2 * L2 * cp],
                      [-m1 * L1 * st, m1 * L1 * ct, I1 + m1 * L1**2, 0.0],
                      [-m2 * L2 * sp, m2 * L2 * cp, 0.0, I2 + m2 * L2**2]])
        a = np.linalg.solve(M, f)
        out = np.empty(8)
        out[0], out[1], out[2], out[3] = xd, a[0], yd, a[1]
        out[4], out[5], out[6], out[7] = thd, a[2], phd, a[3]
        return out

    return rhs


_RHS = None


def _init_worker():
    global _RHS
    _RHS = _seed_rhs_factory()
    _RHS(np.ones(8), 0.0, 1.0, 1.0, 1.0)  # compile in the worker, outside the timed part


def _seed_one(args):
    from scipy.integrate import odeint

    y0, (F, alpha, tau) = args
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the seed never looked at "excess work done" either
        return odeint(_RHS, y0, [0.0, 0.02], args=(F, alpha, tau))[-1]


def measure_seed(initial: np.ndarray, controls: np.ndarray, processes: int) -> tuple[np.ndarray, float]:
    """The seed's approach on these samples: (final states, trajectories per second)."""
    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=_init_worker) as pool:
        pool.map(_seed_one, [(initial[i], controls[i]) for i in range(2 * processes)], chunksize=1)  # warm-up
        start = time.perf_counter()
        finals = pool.map(_seed_one, list(zip(initial, controls)), chunksize=16)
        seconds = time.perf_counter() - start
    return np.asarray(finals), len(initial) / seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200_000, help="samples for our simulator (after warm-up)")
    parser.add_argument("--seed-samples", type=int, default=2000, help="samples for the seed's approach")
    parser.add_argument("--processes", type=int, default=os.cpu_count(), help="seed worker processes (one per core)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    initial, controls = sample_rows(0, 0, args.seed_samples)
    seed_final, seed_rate = measure_seed(initial, controls, args.processes)

    # Our simulator: every core as a JAX host device (set before JAX is imported).
    from core.sim import use_all_cpu_cores
    use_all_cpu_cores()
    from core.commands.bench_sim import measure_simulator
    from core.sim import simulate_checked

    ours = measure_simulator(args.samples)
    reference, valid = simulate_checked(initial, controls, dtype=np.float64)
    state_range = reference.max(axis=0) - reference.min(axis=0)
    seed_error = np.nan_to_num(np.abs(seed_final - reference) / state_range, nan=np.inf).max(axis=1)
    result = {
        "ours": ours,
        "seed": {"approach": "scipy odeint per trajectory, numba rhs, multiprocessing pool",
                 "trajectories_per_s": seed_rate, "samples": args.seed_samples, "processes": args.processes,
                 "wrong_over_0.1pct": int((seed_error > 1e-3).sum()),
                 "wrong_over_1pct": int((seed_error > 1e-2).sum()),
                 "worst_error_of_range": float(seed_error.max())},
        "speedup": ours["trajectories_per_s"] / seed_rate,
        "reference_valid": int(valid.sum()),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"ours: {ours['trajectories_per_s']:,.0f} trajectories/s ({ours['samples']:,} samples, "
              f"{ours['method']}, {ours['steps']} steps, {ours['dtype']}, {ours['device']})")
        print(f"seed: {seed_rate:,.0f} trajectories/s ({args.seed_samples:,} samples, odeint, "
              f"{args.processes} processes)")
        print(f"speed-up: {result['speedup']:.1f}x")
        s = result["seed"]
        print(f"seed trajectories wrong by > 0.1 % of range: {s['wrong_over_0.1pct']}, > 1 %: "
              f"{s['wrong_over_1pct']}, worst {s['worst_error_of_range']:.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
