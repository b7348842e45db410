"""Throughput of the engine's training and evaluation, of the seed's loop structure, and the matmul peak.

All are measured in the same process, alternately, so they share the machine's state. Training's
"model FLOPs" are the usual 6 x batch x weights per network and step (forward 2, backward 4;
biases, tanh and Adam not counted); evaluation's are 2 x rows x weights per network (the forward
pass only; biases, tanh and the squared error not counted). The peak is the best float32
(HIGHEST) square matmul rate of this machine over a few sizes. Rates are the best of several
timed repeats (the machine is shared; the best is the least disturbed).

Training runs the networks in the groups the engine would use on this placement (`group` in the
result) and evaluation with the engine's block rows and network groups, all from the engine's own
`core.engine.loop.Layout.of` on `eval_batch` (the config's default); the step's settings are the
engine's `core.engine.loop.step_config` of a config of the synthetic ensemble (`_config`).

The seed's loop structure: the same step (same maths, same masks, same Adam), compiled alone,
called once per batch from Python with the batch sliced from host arrays, no buffer donation,
and the per-network losses pulled to the host after every step.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from core.config import PRESETS, Config, from_dict
from core.engine import evaluate, model, train
from core.engine.loop import Layout, placement, step_config
from core.engine.sharding import Placement

#: Rows of the synthetic training data the benchmark draws its batches from.
BENCH_ROWS = 65_536
PEAK_SIZES = (1024, 2048, 3072)


def matmul_peak(sizes=PEAK_SIZES, repeats: int = 5) -> float:
    """Best measured float32 FLOP/s of a square matmul (precision HIGHEST) on the default device."""
    best = 0.0
    for n in sizes:
        a = jax.random.normal(jax.random.key(n), (n, n), jnp.float32)
        f = jax.jit(lambda x, y: jnp.dot(x, y, precision=jax.lax.Precision.HIGHEST))
        f(a, a).block_until_ready()
        for _ in range(repeats):
            t = time.perf_counter()
            f(a, a).block_until_ready()
            best = max(best, 2 * n ** 3 / (time.perf_counter() - t))
    return best


def _config(nets: int, batch: int, hidden, precision: str = "float32", eval_batch: int = 65_536) -> Config:
    """A config of this synthetic ensemble, for its shapes and its step: Adam at 5e-4, and no early stop
    that can trigger (check interval beyond any step), so every network trains throughout."""
    # samples large enough that no batch size is refused as bigger than the training split
    return from_dict({**PRESETS["smoke"], "nets": nets, "batch": batch, "hidden": list(hidden),
                      "eval_batch": eval_batch, "samples": max(PRESETS["smoke"]["samples"], 4 * batch),
                      "learning_rate": 5e-4, "early_stop_window": 8, "early_stop_every": 2 ** 30,
                      "early_stop_ratio": 1.01, "early_stop_below": 0.0, "early_stop_signal": "train",
                      "optimizer_state": "fresh", "precision": precision})


def _layout(config: Config, rows: int) -> tuple[Placement, Layout]:
    """The engine's placement and layout (`core.engine.loop.Layout.of`) of this synthetic ensemble."""
    place = placement(config.nets)
    return place, Layout.of(config, place, config.nets, rows)


def _setup(nets: int, batch: int, hidden, precision: str, seed: int = 0):
    sizes = (10, *hidden, 7)
    config = _config(nets, batch, hidden, precision)
    place, layout = _layout(config, BENCH_ROWS)
    params = model.init_params(sizes, 0.2, seed, range(nets))
    masks = place.sharded(model.full_masks(params))
    sc = step_config(config, place, nets, layout)  # the engine's step, networks in the engine's groups
    state = place.state(train.init_state(place.sharded(params), jnp.zeros(nets, bool), sc))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (BENCH_ROWS, 10)).astype(np.float32)
    y = rng.uniform(-0.5, 0.5, (BENCH_ROWS, 7)).astype(np.float32)
    return sizes, place, sc, state, masks, x, y


class _EngineLoop:
    """The engine's compiled chunk on a synthetic ensemble, ready to time."""

    def __init__(self, nets, batch, hidden, steps, precision):
        self.sizes, place, self.sc, self.state, self.masks, x, y = _setup(nets, batch, hidden, precision)
        self.x, self.y = place.data(x), place.data(y)
        rng = np.random.default_rng(1)
        self.rows = [place.data(rng.integers(0, BENCH_ROWS, (steps, batch)).astype(np.int32)) for _ in range(2)]
        self.steps, self.calls = steps, 0
        self.run()  # compile

    def run(self) -> float:
        """Seconds for `steps` steps (one compiled call, losses pulled once)."""
        t = time.perf_counter()
        self.state, losses = train.chunk_on_device(self.sc, self.state, self.masks, self.x, self.y,
                                                   self.rows[self.calls % 2], jnp.int32(self.calls * self.steps),
                                                   jnp.int32(2 ** 30))
        np.asarray(losses)
        self.calls += 1
        return time.perf_counter() - t


class _Evaluation:
    """The engine's evaluation of the same synthetic ensemble, ready to time: whole blocks of the
    engine's block size, about `rows` rows in all, in the engine's network groups."""

    def __init__(self, nets, hidden, rows, precision, eval_batch):
        sizes = (10, *hidden, 7)
        place, layout = _layout(_config(nets, 128, hidden, precision, eval_batch), max(rows, 1))
        self.params = place.sharded(model.init_params(sizes, 0.2, 0, range(nets)))
        self.block, self.group = layout.eval_rows, layout.eval_group
        self.rows = max(1, round(rows / self.block)) * self.block
        rng = np.random.default_rng(2)
        self.x = rng.uniform(-0.5, 0.5, (self.rows, 10)).astype(np.float32)
        self.y = rng.uniform(-0.5, 0.5, (self.rows, 7)).astype(np.float32)
        self.sizes, self.precision, self.put = sizes, precision, place.data
        self.run()  # compile

    def run(self) -> float:
        """Seconds for one evaluation of every network on all `rows` rows."""
        t = time.perf_counter()
        evaluate.split_loss(self.params, self.x, self.y, self.block, self.precision, put=self.put, group=self.group)
        return time.perf_counter() - t


def _eval_rates(seconds: float, nets: int, rows: int, sizes) -> dict:
    network_rows = rows * nets / seconds
    return {"network_rows_per_s": network_rows, "network_samples_per_s": network_rows,
            "flops_per_s": 2 * model.weight_count(sizes) * network_rows}


class _SeedLoop:
    """The seed's loop structure on the same synthetic ensemble, ready to time."""

    def __init__(self, nets, batch, hidden, steps, precision):
        self.sizes, _, self.sc, self.state, self.masks, self.x, self.y = _setup(nets, batch, hidden, precision)
        self.batch, self.steps, self.step = batch, steps, 0
        self._one()  # compile

    def _one(self) -> None:
        start = (self.step * self.batch) % (BENCH_ROWS - self.batch)
        self.state, losses = train.seed_style_step(self.sc, self.state, self.masks, self.x[start:start + self.batch],
                                                   self.y[start:start + self.batch], jnp.int32(self.step),
                                                   jnp.int32(2 ** 30))
        np.asarray(losses)  # the seed looked at every step's losses on the host
        self.step += 1

    def run(self) -> float:
        t = time.perf_counter()
        for _ in range(self.steps):
            self._one()
        return time.perf_counter() - t


def engine_rate(nets: int, batch: int, hidden, steps: int, precision: str = "float32",
                repeats: int = 3) -> dict:
    """Steady-state rates of the engine alone: best of `repeats` compiled calls of `steps` steps."""
    engine = _EngineLoop(nets, batch, hidden, steps, precision)
    best = min(engine.run() for _ in range(repeats))
    return _rates(steps / best, nets, batch, engine.sizes)


def seed_loop_rate(nets: int, batch: int, hidden, steps: int, precision: str = "float32",
                   repeats: int = 3) -> dict:
    """Steady-state rates of the seed's loop structure alone (best of `repeats` runs of `steps` steps)."""
    seed = _SeedLoop(nets, batch, hidden, steps, precision)
    best = min(seed.run() for _ in range(repeats))
    return _rates(steps / best, nets, batch, seed.sizes)


def _rates(steps_per_s: float, nets: int, batch: int, sizes) -> dict:
    flops = 6 * batch * model.weight_count(sizes) * nets * steps_per_s
    return {"steps_per_s": steps_per_s, "network_samples_per_s": steps_per_s * batch * nets,
            "flops_per_s": flops}


def benchmark(nets: int = 8, batch: int = 128, hidden=(400, 400, 400, 16), steps: int = 200,
              precision: str = "float32", seed_loop: bool = True, repeats: int = 5,
              peak_sizes=PEAK_SIZES, eval_batch: int = 65_536) -> dict:
    """Everything `mothtui bench engine --json` reports, measured in one process.

    The engine, the seed's loop and the evaluation are timed alternately, `repeats` times each,
    and the best of each is kept, so a burst of load from elsewhere on a shared machine hits all
    alike. The evaluation covers about as many FLOPs as one training call (3 x steps x batch
    rows, in whole blocks): `evaluation` holds its rates, block rows and network group.
    """
    peak = matmul_peak(peak_sizes)
    result: dict[str, Any] = {
        "nets": nets, "batch": batch, "layers": [10, *hidden, 7], "steps_per_call": steps,
        "precision": precision, "devices": len(jax.local_devices()),
        "platform": jax.default_backend(), "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(), "jax": jax.__version__,
        "repeats": repeats, "load_average": os.getloadavg()[0]}
    engine = _EngineLoop(nets, batch, hidden, steps, precision)
    seed = _SeedLoop(nets, batch, hidden, steps, precision) if seed_loop else None
    evaluation = _Evaluation(nets, hidden, 3 * steps * batch, precision, eval_batch)
    best_engine = best_seed = best_eval = float("inf")
    for _ in range(repeats):
        best_engine = min(best_engine, engine.run())
        if seed is not None:
            best_seed = min(best_seed, seed.run())
        best_eval = min(best_eval, evaluation.run())
    peak = max(peak, matmul_peak(peak_sizes, repeats=2))  # again after: the best of both
    result.update(_rates(steps / best_engine, nets, batch, engine.sizes))
    result["group"] = train.group_size(engine.sc, nets, engine.sizes, batch)
    result["matmul_peak_flops"] = peak
    result["peak_fraction"] = result["flops_per_s"] / peak
    if seed is not None:
        seed_rates = _rates(steps / best_seed, nets, batch, seed.sizes)
        seed_rates["peak_fraction"] = seed_rates["flops_per_s"] / peak
        result["seed_loop"] = seed_rates
        result["speedup_vs_seed_loop"] = result["steps_per_s"] / seed_rates["steps_per_s"]
    rates = _eval_rates(best_eval, nets, evaluation.rows, evaluation.sizes)
    result["evaluation"] = {**rates, "peak_fraction": rates["flops_per_s"] / peak, "rows": evaluation.rows,
                            "block_rows": evaluation.block, "group": evaluate._divisor(nets, evaluation.group),
                            "eval_batch": eval_batch}
    result["load_average_end"] = os.getloadavg()[0]
    return result
