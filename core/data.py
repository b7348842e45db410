"""From a dataset store to scaled training arrays: features, row-range splits, min-max scaler, batches.

What the engine learns (model.md §2): 10 inputs (start state and end state of one wing stroke)
to 7 outputs (the controls and the end velocities). This module turns the dataset store's raw
arrays (`initial`, `controls`, `final`, `valid`) into those features, splits the rows into
contiguous train/val/test ranges, fits the min-max scaler on the valid training rows only, and
hands out deterministic minibatch indices.

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
from typing import Any

import numpy as np
import zarr

from core.errors import StoreError
from core.runstore import INPUT_NAMES, OUTPUT_NAMES, SPLITS

#: Rows read from the dataset store per block (bounds host memory while preparing).
READ_BLOCK = 1_000_000
N_INPUTS = len(INPUT_NAMES)
N_OUTPUTS = len(OUTPUT_NAMES)

# State order q = (x, xd, y, yd, theta, thetad, phi, phid), model.md §1.
_X, _XD, _Y, _YD, _THETA, _THETAD, _PHI, _PHID = range(8)


def features(initial: np.ndarray, controls: np.ndarray, final: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs (n, 10) and outputs (n, 7) in physical units, float64, in the contract's order.

    Inputs: phi_0, theta_0, x_f, y_f, phi_f, theta_f, xd_0, yd_0, phid_0, thetad_0.
    Outputs: Fx = F cos alpha, Fy = F sin alpha, tau, xd_f, yd_f, phid_f, thetad_f.
    """
    q0 = np.asarray(initial, dtype=np.float64)
    qf = np.asarray(final, dtype=np.float64)
    u = np.asarray(controls, dtype=np.float64)
    x = np.stack([q0[:, _PHI], q0[:, _THETA], qf[:, _X], qf[:, _Y], qf[:, _PHI], qf[:, _THETA],
                  q0[:, _XD], q0[:, _YD], q0[:, _PHID], q0[:, _THETAD]], axis=1)
    force, alpha, tau = u[:, 0], u[:, 1], u[:, 2]
    y = np.stack([force * np.cos(alpha), force * np.sin(alpha), tau,
                  qf[:, _XD], qf[:, _YD], qf[:, _PHID], qf[:, _THETAD]], axis=1)
    return x, y


def split_rows(n: int, fractions: tuple[float, float, float]) -> dict[str, list[int]]:
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
        if len(x) == 0:
            raise StoreError("the training split has no valid samples")
        return cls(*_min_max(x), *_min_max(y))

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


def _min_max(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = a.min(axis=0), a.max(axis=0)
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
    """Everything the engine needs from a dataset: scaled splits, the scaler, the row ranges."""

    dataset: str
    split: dict[str, list[int]]
    scaler: Scaler
    splits: dict[str, SplitArrays]
    invalid: int
    """Rows excluded because the simulator flagged them invalid."""


def open_dataset_arrays(path: str | Path) -> dict[str, Any]:
    """The dataset store's arrays by name, checked; StoreError (one line) if missing or broken."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no dataset at {path}")
    try:
        group = zarr.open_group(path, mode="r", zarr_format=3)
        arrays = {name: group[name] for name in ("initial", "controls", "final", "valid")}
    except KeyError as err:
        raise StoreError(f"dataset {path} is incomplete: array {err} missing") from None
    except Exception as err:  # zarr raises many kinds of errors on a broken store
        raise StoreError(f"dataset {path} is unreadable: {str(err).splitlines()[0][:160]}") from None
    if group.attrs.get("complete") is False:  # the simulator marks a store complete when it is
        raise StoreError(f"dataset {path} is incomplete (its simulation did not finish)")
    n = arrays["valid"].shape[0]
    expect = {"initial": (n, 8), "controls": (n, 3), "final": (n, 8), "valid": (n,)}
    for name, shape in expect.items():
        if tuple(arrays[name].shape) != shape:
            raise StoreError(f"dataset {path}: array {name!r} has shape {tuple(arrays[name].shape)}, "
                             f"expected {shape}")
    return arrays


def _read_features(arrays: dict[str, Any], start: int, stop: int):
    """Physical features of the valid rows in [start, stop), block by block."""
    for a in range(start, stop, READ_BLOCK):
        b = min(stop, a + READ_BLOCK)
        try:
            valid = np.asarray(arrays["valid"][a:b], dtype=bool)
            x, y = features(arrays["initial"][a:b], arrays["controls"][a:b], arrays["final"][a:b])
        except Exception as err:
            raise StoreError(f"dataset is corrupt (rows {a}-{b}): {str(err).splitlines()[0][:160]}") from None
        # A sample that is flagged valid but not finite is still unusable.
        valid &= np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
        yield x[valid], y[valid], int((~valid).sum())


def prepare(path: str | Path, fractions: tuple[float, float, float],
            scaler: dict[str, Any] | None = None) -> Prepared:
    """Read a dataset store into scaled float32 splits.

    The scaler is fitted on the valid training rows unless one is given (a resumed run passes
    the stored one, so its data are bit-identical to the original run's).
    """
    arrays = open_dataset_arrays(path)
    n = arrays["valid"].shape[0]
    split = split_rows(n, fractions)
    if scaler is None:
        parts = list(_read_features(arrays, *split["train"]))
        fitted = Scaler.fit(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    else:
        fitted = Scaler.from_dict(scaler)
    out: dict[str, SplitArrays] = {}
    invalid = 0
    for name in SPLITS:
        xs, ys = [], []
        for x, y, bad in _read_features(arrays, *split[name]):
            xs.append(fitted.scale_x(x).astype(np.float32))
            ys.append(fitted.scale_y(y).astype(np.float32))
            invalid += bad
        x = np.concatenate(xs) if xs else np.zeros((0, N_INPUTS), np.float32)
        y = np.concatenate(ys) if ys else np.zeros((0, N_OUTPUTS), np.float32)
        if len(x) == 0:
            raise StoreError(f"dataset {path}: the {name} split has no valid samples")
        out[name] = SplitArrays(x, y, tuple(split[name]))
    return Prepared(str(path), split, fitted, out, invalid)


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
