"""Deterministic synthetic run stores for tests and snapshots (no JAX, no training).

`make_fixture_run` writes a real run store through `core.runstore.Run` with random weights,
masks from layer-wise magnitude pruning at each level's target, and a plausible loss curve
per network (flat, then a cliff at high sparsity). Everything depends on `seed` only, so SVG
snapshots of screens that show these runs are stable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.config import PRESETS, from_dict
from core.runstore import Run
from core.schema import OUTPUT_NAMES


def _prune_layerwise(weight: np.ndarray, fraction: float) -> np.ndarray:
    """Mask keeping the (1 - fraction) largest-magnitude entries of one layer of one network."""
    flat = np.abs(weight).ravel()
    k = int(round(fraction * flat.size))
    mask = np.ones(flat.size, dtype=bool)
    if k:
        mask[np.argsort(flat, kind="stable")[:k]] = False
    return mask.reshape(weight.shape)


def make_fixture_run(runs_dir: Path, run_id: str = "fixture", *, nets: int = 4, hidden=(8, 8),
                     schedule=(0.5, 0.8, 0.9, 0.95), seed: int = 0, status: str = "done",
                     levels_complete: int | None = None, created: str | None = None) -> Run:
    """A finished (or partly finished) run whose arrays and losses are synthetic but consistent."""
    config = from_dict({**PRESETS["smoke"], "nets": nets, "hidden": list(hidden),
                        "schedule": list(schedule), "seed": seed, "threshold": 1e-3})
    rng = np.random.default_rng(seed)
    scaler = {"x_min": [-1.0] * 10, "x_max": [1.0] * 10,
              "y_min": [-1.0] * len(OUTPUT_NAMES), "y_max": [1.0] * len(OUTPUT_NAMES)}
    run = Run.create(Path(runs_dir) / run_id, config, dataset="(synthetic)",
                     split={"train": [0, 640], "val": [640, 800], "test": [800, 1000]}, scaler=scaler)
    sizes = config.layer_sizes
    weights = [rng.normal(0, 0.2, (nets, a, b)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    biases = [rng.normal(0, 0.05, (nets, b)).astype(np.float32) for b in sizes[1:]]
    base = 10 ** rng.uniform(-4.3, -3.7, nets)       # level-0 loss per network
    cliff = rng.uniform(0.82, 0.96, nets)              # sparsity where the loss takes off
    done = config.levels if levels_complete is None else levels_complete
    for level, sparsity in enumerate(config.sparsities[:done]):
        masks = [np.stack([_prune_layerwise(w[n], sparsity) for n in range(nets)]) for w in weights]
        level_w = [w * m for w, m in zip(weights, masks)]
        rise = np.exp(np.maximum(0.0, sparsity - cliff) * 60.0)
        val = (base * rise * (1 + 0.05 * level)).astype(np.float32)
        losses = {"train": val * 0.95, "val": val, "test": val * 1.05}
        run.write_level(level, level_w, masks, biases, [np.ones_like(b, dtype=bool) for b in biases], losses)
        run.complete_level(level)
    attrs = {"status": status}
    if created:
        attrs["created"] = created
    run.set_attrs(**attrs)
    return run


def add_fixture_extrapolation(run: Run, scales=(0.5, 2.0), samples: int = 1000) -> dict:
    """A synthetic `mothtui evaluate` result stored through the real writer: at each other body
    scale every network's loss is its own test loss times a factor that grows away from s = 1."""
    from core.analysis.extrapolate import store_extrapolation

    levels = run.levels_complete
    test = run.losses("test")[:levels].astype(np.float64)
    loss = np.stack([test * (1.0 + 250.0 * abs(np.log2(s))) for s in scales])   # (S, L, N)
    return store_extrapolation(run, scales, loss, [samples] * len(scales), [1.0] * len(scales),
                               samples=samples, seed=1, datasets=["(synthetic)"] * len(scales))
