"""From a dataset store to scaled training arrays: row ranges, the min-max scaler, split arrays, batches.

What the engine learns (model.md §2): 10 inputs (start state and end state of one wing stroke)
to 7 outputs (the controls and the end velocities). This module reads a dataset store through
`core.dataset` (the format's one reader: its checks, its usable rows, their features), splits the
rows into contiguous train/val/test row ranges, fits the min-max scaler (`Scaler`, the only
implementation of the contract's scaling) on the usable training rows only, and hands out
deterministic minibatch indices.

Memory design (why it looks like this): the scaled features of every split live once in host
memory as float32 (10 M samples: 10 M x 17 x 4 B = 680 MB). The engine copies the training split
to the accelerator once and gathers each batch there (`BatchPlan.indices`); if the training split
is larger than the device budget it ships the gathered batches of each compiled chunk from the
host instead (a few MB per chunk). Validation and test are only ever streamed through the
accelerator in `eval_batch` blocks. So no split sits on the accelerator twice.

Pure numpy + zarr: no JAX here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from core.dataset import READ_BLOCK, features, open_dataset  # noqa: F401  (features: also core.data's)
from core.errors import StoreError
from core.schema import INPUT_NAMES, OUTPUT_NAMES, SPLITS

N_INPUTS = len(INPUT_NAMES)
N_OUTPUTS = len(OUTPUT_NAMES)


def split_ranges(n: int, fractions: tuple[float, float, float]) -> dict[str, list[int]]:
    """Contiguous row ranges `{"train": [0, a], "val": [a, b], "test": [b, n]}` of n rows."""
    a = int(round(n * fractions[0]))
    b = int(round(n * (fractions[0] + fractions[1])))
    return {"train": [0, a], "val": [a, b], "test": [b, n]}


@dataclass(frozen=True)
class Scaler:
    """Per-column min-max scaling to [-0.5, 0.5] (contract: x_s = (x - min) / (max - min) - 0.5)."""

    x_min: np.ndarray
    x_max: np.ndarray
    y_min: np.ndarray
    y_max: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> "Scaler":
        return cls.fit_blocks([(x, y)])

    @classmethod
    def fit_blocks(cls, blocks: Iterable[tuple[np.ndarray, np.ndarray]]) -> "Scaler":
        """`fit` over `(x, y)` blocks, one at a time: min and max are exact, so this equals `fit`
        on the concatenation without ever holding it (a 10 M-row training split is 6.4 M rows)."""
        ranges = [(x.min(axis=0), x.max(axis=0), y.min(axis=0), y.max(axis=0)) for x, y in blocks if len(x)]
        if not ranges:
            raise StoreError("the training split has no valid samples")
        x_lo, x_hi, y_lo, y_hi = (np.stack(column) for column in zip(*ranges))
        return cls(*_widen(x_lo.min(axis=0), x_hi.max(axis=0)), *_widen(y_lo.min(axis=0), y_hi.max(axis=0)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Scaler":
        return cls(*(np.asarray(d[k], dtype=np.float64) for k in ("x_min", "x_max", "y_min", "y_max")))

    def to_dict(self) -> dict[str, list[float]]:
        return {k: [float(v) for v in getattr(self, k)] for k in ("x_min", "x_max", "y_min", "y_max")}

    def scale_x(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.x_min) / (self.x_max - self.x_min) - 0.5

    def scale_y(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, np.float64) - self.y_min) / (self.y_max - self.y_min) - 0.5

    def unscale_y(self, y_s: np.ndarray) -> np.ndarray:
        return (np.asarray(y_s, np.float64) + 0.5) * (self.y_max - self.y_min) + self.y_min


def _widen(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # A constant column would divide by zero in the contract's formula: widen it by one unit.
    hi = np.where(hi > lo, hi, lo + 1.0)
    return lo.astype(np.float64), hi.astype(np.float64)


@dataclass
class SplitArrays:
    """One split's valid rows, scaled, float32: `x (n, 10)`, `y (n, 7)`; `rows` is its row range."""

    x: np.ndarray
    y: np.ndarray
    rows: tuple[int, int]

    @property
    def n(self) -> int:
        return len(self.x)


@dataclass
class Prepared:
    """Everything the engine needs from a dataset: each split's arrays, the scaler, the row ranges."""

    dataset: str
    row_ranges: dict[str, list[int]]
    """`{"train": [start, stop], ...}`: what a run stores as its `split` attribute."""
    scaler: Scaler
    splits: dict[str, SplitArrays]
    """Split name -> its scaled arrays."""
    invalid: int
    """Rows excluded: flagged invalid by the simulator, or not finite."""



def prepare(path: str | Path, fractions: tuple[float, float, float],
            scaler: dict[str, Any] | None = None) -> Prepared:
    """Read a dataset store (through `core.dataset.open_dataset`) into scaled float32 split arrays.

    The scaler is fitted on the usable training rows unless one is given (a resumed run passes
    the stored one, so its data are bit-identical to the original run's).
    """
    dataset = open_dataset(path)
    row_ranges = split_ranges(dataset.n, fractions)
    if scaler is None:
        fitted = Scaler.fit_blocks((rows.x, rows.y) for rows in dataset.blocks(*row_ranges["train"]))
    else:
        fitted = Scaler.from_dict(scaler)
    out: dict[str, SplitArrays] = {}
    invalid = 0
    for name in SPLITS:
        xs, ys = [], []
        for rows in dataset.blocks(*row_ranges[name]):
            xs.append(fitted.scale_x(rows.x).astype(np.float32))
            ys.append(fitted.scale_y(rows.y).astype(np.float32))
            invalid += rows.excluded
        x = np.concatenate(xs) if xs else np.zeros((0, N_INPUTS), np.float32)
        y = np.concatenate(ys) if ys else np.zeros((0, N_OUTPUTS), np.float32)
        if len(x) == 0:
            raise StoreError(f"dataset {path}: the {name} split has no valid samples")
        start, stop = row_ranges[name]
        out[name] = SplitArrays(x, y, (start, stop))
    return Prepared(str(path), row_ranges, fitted, out, invalid)


# ---- batches -----------------------------------------------------------------------------

@dataclass
class BatchPlan:
    """Which training rows each step of a level uses: a pure function of (seed, level, step).

    Every epoch is a fresh permutation of the training rows drawn from (seed, level, epoch);
    step s of a level takes batch s mod steps_per_epoch of epoch s // steps_per_epoch (the
    incomplete last batch of an epoch is dropped). Nothing depends on how many compiled chunks
    ran before, so a resumed run sees the same batches.
    """

    n_rows: int
    batch: int
    seed: int
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.n_rows < self.batch:
            raise StoreError(f"the training split has {self.n_rows} valid rows, fewer than one batch "
                             f"({self.batch})")

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.n_rows // self.batch)

    def _perm(self, level: int, epoch: int) -> np.ndarray:
        key = (level, epoch)
        if key not in self._cache:
            if len(self._cache) > 2:  # a level only ever walks forward through its epochs
                self._cache.clear()
            rng = np.random.default_rng([self.seed, level, epoch])
            self._cache[key] = rng.permutation(self.n_rows).astype(np.int32)
        return self._cache[key]

    def indices(self, level: int, start: int, count: int) -> np.ndarray:
        """Row indices `(count, batch)` int32 of steps [start, start + count) of a level."""
        out = np.empty((count, self.batch), dtype=np.int32)
        spe = self.steps_per_epoch
        for i, step in enumerate(range(start, start + count)):
            epoch, pos = divmod(step, spe)
            out[i] = self._perm(level, epoch)[pos * self.batch:(pos + 1) * self.batch]
        return out
