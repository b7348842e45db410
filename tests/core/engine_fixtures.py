"""A small dataset store written with plain zarr, laid out as the contract's dataset store.

The "physics" is a simple smooth stand-in (constant accelerations from the controls over one
0.02 s stroke), so the engine tests do not depend on the simulator and networks can learn it.
Some rows are flagged invalid (and given absurd values) to prove they are excluded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

T_END = 0.02


def stand_in_final(initial: np.ndarray, controls: np.ndarray) -> np.ndarray:
    """End state after T_END under constant accelerations set by the controls (not the moth model)."""
    force, alpha, tau = controls.T
    acc = np.stack([force * np.cos(alpha) / 2.6, force * np.sin(alpha) / 2.6 - 980.0,
                    tau / 1.7, -tau / 3.0], axis=1)
    pos, vel = initial[:, [0, 2, 4, 6]], initial[:, [1, 3, 5, 7]]
    pos_f = pos + vel * T_END + 0.5 * acc * T_END ** 2
    vel_f = vel + acc * T_END
    final = np.empty_like(initial)
    final[:, [0, 2, 4, 6]] = pos_f
    final[:, [1, 3, 5, 7]] = vel_f
    return final


def write_dataset(path: Path, n: int = 4000, seed: int = 0, invalid_every: int = 0) -> Path:
    """A dataset store of n samples drawn from the seed's sampling ranges (model.md §2)."""
    rng = np.random.default_rng(seed)
    initial = np.zeros((n, 8))
    initial[:, 1] = rng.uniform(-1500, 1500, n)
    initial[:, 3] = rng.uniform(-1500, 1500, n)
    initial[:, 4] = rng.uniform(0, 2 * np.pi, n)
    initial[:, 5] = rng.uniform(-25, 25, n)
    initial[:, 6] = rng.uniform(0, 2 * np.pi, n)
    initial[:, 7] = rng.uniform(-25, 25, n)
    controls = np.stack([rng.uniform(0, 44300, n), rng.uniform(0, 2 * np.pi, n),
                         rng.uniform(-1e5, 1e5, n)], axis=1)
    final = stand_in_final(initial, controls)
    valid = np.ones(n, bool)
    if invalid_every:
        valid[::invalid_every] = False
        final[::invalid_every] = 1e9  # what a failed integration might leave behind
    group = zarr.open_group(path, mode="w", zarr_format=3)
    for name, array in (("initial", initial), ("controls", controls), ("final", final)):
        group.create_array(name, data=array.astype(np.float32))
    group.create_array("valid", data=valid)
    group.attrs.update({"scale": 1.0, "seed": seed, "t_end": T_END, "schema_version": 1,
                        "integrator": "stand-in for tests"})
    return Path(path)
