"""Random wing strokes: the sampling ranges of docs/model.md and reproducible draws.

Pure numpy (no JAX): the dataset writer and tests draw inputs without touching the device.
Reproducibility regardless of chunking: rows are drawn on a fixed grid of SAMPLING_BLOCK rows,
block b from `numpy.random.default_rng([seed, b])`, so any slice of rows of a dataset is the
same whatever chunk size, device count or process split produced it.
"""

from __future__ import annotations

import math

import numpy as np

from core.errors import MothError

#: Uniform ranges of model.md (cgs units, radians). x0 = y0 = 0; angles are not wrapped.
#: The same ranges are used at every body scale (the seed's extrapolation experiment did so).
SAMPLING_RANGES: dict[str, tuple[float, float]] = {
    "F": (0.0, 44300.0),
    "alpha": (0.0, 2 * math.pi),
    "tau": (-100000.0, 100000.0),
    "xd": (-1500.0, 1500.0),
    "yd": (-1500.0, 1500.0),
    "theta": (0.0, 2 * math.pi),
    "thetad": (-25.0, 25.0),
    "phi": (0.0, 2 * math.pi),
    "phid": (-25.0, 25.0),
}
#: Body scales accepted (the same range the run config accepts).
SCALE_RANGE = (0.1, 10.0)
#: Rows per sampling block: the grid that makes datasets independent of chunk size.
SAMPLING_BLOCK = 65536

# Column of each sampled quantity in the state (8) and controls (3) arrays.
_STATE_COLUMNS = {"xd": 1, "yd": 3, "theta": 4, "thetad": 5, "phi": 6, "phid": 7}
_CONTROL_COLUMNS = {"F": 0, "alpha": 1, "tau": 2}


def sample_inputs(rng_or_seed, n: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """n random wing strokes: (initial (n, 8), controls (n, 3) [F, alpha, tau]), float64.

    `rng_or_seed` is a numpy Generator or anything `numpy.random.default_rng` accepts. `scale`
    is accepted for symmetry with `simulate` and recorded by callers; the ranges do not depend
    on it.
    """
    if n < 0:
        raise MothError(f"number of samples must be >= 0, got {n}")
    rng = rng_or_seed if isinstance(rng_or_seed, np.random.Generator) else np.random.default_rng(rng_or_seed)
    names = list(SAMPLING_RANGES)
    low = np.array([SAMPLING_RANGES[k][0] for k in names])
    high = np.array([SAMPLING_RANGES[k][1] for k in names])
    draws = low + (high - low) * rng.random((n, len(names)))
    initial = np.zeros((n, 8))
    controls = np.zeros((n, 3))
    for j, name in enumerate(names):
        if name in _STATE_COLUMNS:
            initial[:, _STATE_COLUMNS[name]] = draws[:, j]
        else:
            controls[:, _CONTROL_COLUMNS[name]] = draws[:, j]
    return initial, controls


def sample_rows(seed: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows [start, stop) of the dataset of `seed`, drawn on the fixed SAMPLING_BLOCK grid."""
    if seed < 0:
        raise MothError(f"seed must be >= 0, got {seed}")
    if not 0 <= start <= stop:
        raise MothError(f"bad row range [{start}, {stop})")
    first, last = start // SAMPLING_BLOCK, -(-stop // SAMPLING_BLOCK)
    parts = [sample_inputs(np.random.default_rng([seed, b]), SAMPLING_BLOCK) for b in range(first, last)]
    if not parts:
        return np.zeros((0, 8)), np.zeros((0, 3))
    offset = first * SAMPLING_BLOCK
    initial = np.concatenate([p[0] for p in parts])[start - offset:stop - offset]
    controls = np.concatenate([p[1] for p in parts])[start - offset:stop - offset]
    return initial, controls


def validate_scale(scale) -> float:
    """The body scale as a float, or a MothError naming the accepted range."""
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise MothError(f"scale must be a number, got {scale!r}") from None
    low, high = SCALE_RANGE
    if not math.isfinite(value) or not low <= value <= high:
        raise MothError(f"scale must be between {low:g} and {high:g}, got {scale!r}")
    return value
