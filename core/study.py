"""Comparing runs: what `mothtui compare` prints and the app's comparison screen shows.

Per run, at one threshold on one split (the selection rule is `core.select`'s): the median and
p10-p90 band of the loss over networks at every completed level, the histogram of the chosen
sparsities, the remaining fraction of every layer and the first-layer connections kept per
input at the chosen levels (median over the chosen networks), and the stored extrapolation to
other body scales, if `mothtui evaluate` has run. Across runs: the config keys whose values
differ. Pure numpy + zarr: the UI builds its view with this module.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from core.analysis import structure
from core.analysis.store import EXTRAPOLATION, load_analysis
from core.errors import MothError
from core.select import check_split, check_threshold, select_run

#: The keys the runs list shows when they differ (the rest: `compare`'s full diff).
KEY_COLUMNS = ("nets", "hidden", "pruning", "scale", "samples")


def _clean(value: Any) -> Any:
    """JSON-ready: arrays as lists, NaN as None."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def config_diff(configs: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """`{key: [value of each run]}` for the keys whose values are not all equal (in key order)."""
    keys: list[str] = []
    for config in configs:
        keys += [k for k in config if k not in keys]
    return {k: [c.get(k) for c in configs] for k in keys
            if any(c.get(k) != configs[0].get(k) for c in configs[1:])}


def loss_bands(losses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p10, median, p90) per level of `losses (L, N)` over the networks with a finite loss."""
    values = np.where(np.isfinite(losses), np.asarray(losses, np.float64), np.nan)
    if values.size == 0:
        empty = np.zeros(values.shape[0])
        return empty, empty, empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a level where every network diverged
        p10, median, p90 = (np.nanpercentile(values, q, axis=1) for q in (10, 50, 90))
    return p10, median, p90


@dataclass(frozen=True)
class RunComparison:
    """One run's side of a comparison."""

    run_id: str
    config: dict[str, Any]
    sparsity: np.ndarray
    """(L,) target sparsity of the completed levels."""
    loss_p10: np.ndarray
    loss_median: np.ndarray
    loss_p90: np.ndarray
    nets: int
    chosen: int
    """Networks with a chosen level."""
    chosen_median: float | None
    histogram: dict[float, int]
    """Chosen sparsity -> networks (only levels that some network chose)."""
    remaining: list[float] | None
    """Per layer, the median over chosen networks of the fraction of weights kept at their level."""
    inputs: dict[str, float] | None
    """Per input, the median fraction of its first-layer connections kept at the chosen levels."""
    extrapolation: dict[str, Any] | None = None
    """`mothtui evaluate`'s stored summary (core.analysis.extrapolate), if any."""
    parent: dict[str, Any] | None = None
    """A branch's parent, `{"run", "level"}` (core.branch); None for a run from scratch."""

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "run": self.run_id, "nets": self.nets, "sparsity": self.sparsity,
            "loss": {"p10": self.loss_p10, "median": self.loss_median, "p90": self.loss_p90},
            "chosen": self.chosen, "chosen_median_sparsity": self.chosen_median,
            "histogram": [{"sparsity": s, "networks": n} for s, n in sorted(self.histogram.items())],
            "none": self.nets - self.chosen,
            "remaining_per_layer": self.remaining, "input_connections": self.inputs,
            "extrapolation": self.extrapolation, "parent": self.parent,
        })


@dataclass(frozen=True)
class Comparison:
    """Several runs at one threshold on one split."""

    threshold: float | None
    """The threshold asked for; None: each run at its own (`thresholds`)."""
    split: str
    runs: tuple[RunComparison, ...]
    diff: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    @property
    def thresholds(self) -> list[float]:
        return [float(r.config.get("threshold", 1e-3)) if self.threshold is None else self.threshold
                for r in self.runs]

    @property
    def sparsities(self) -> list[float]:
        """Every chosen sparsity of any run, ascending (the histograms' shared rows)."""
        return sorted({s for r in self.runs for s in r.histogram})

    def to_dict(self) -> dict[str, Any]:
        return _clean({"threshold": self.threshold, "thresholds": self.thresholds, "split": self.split,
                       "runs": [r.to_dict() for r in self.runs], "diff": self.diff})


def _structure_at_chosen(run, choices) -> tuple[list[float] | None, dict[str, float] | None]:
    """Median over the chosen networks of each layer's kept fraction and each input's kept connections."""
    by_level: dict[int, list[int]] = {}
    for c in choices:
        by_level.setdefault(c.level, []).append(c.network)
    if not by_level:
        return None, None
    remaining, inputs = [], []
    for level, nets in sorted(by_level.items()):
        masks = run.weight_masks(level, sorted(nets))
        remaining.append(structure.remaining_fractions(masks))          # (n, K)
        inputs.append(structure.input_connection_fractions(masks[0]))   # (n, 10)
    names = run.attrs.get("input_names") or [f"input {i}" for i in range(inputs[0].shape[1])]
    kept = np.median(np.concatenate(inputs), axis=0)
    return (np.median(np.concatenate(remaining), axis=0).tolist(),
            {name: float(k) for name, k in zip(names, kept)})


def compare_run(run, threshold: float | None = None, split: str = "val") -> RunComparison:
    """One run's comparison data (reads its losses and the masks of its chosen levels)."""
    selection = select_run(run, threshold, split)
    levels = run.levels_complete
    sparsity = np.asarray(run.sparsity[:levels], np.float64)
    p10, med, p90 = loss_bands(run.losses(split))
    chosen = selection.chosen
    histogram = Counter(round(float(c.sparsity), 6) for c in chosen if c.sparsity is not None)  # all chosen have one
    remaining, inputs = _structure_at_chosen(run, chosen)
    extrapolation = load_analysis(run, EXTRAPOLATION)
    parent = run.attrs.get("parent")
    return RunComparison(run.run_id, dict(run.attrs["config"]), sparsity, p10, med, p90, run.nets,
                         len(chosen), selection.median_sparsity, dict(sorted(histogram.items())),
                         remaining, inputs, None if extrapolation is None else extrapolation.summary,
                         {"run": parent["run"], "level": parent["level"]} if isinstance(parent, dict) else None)


def check_comparable(runs) -> None:
    """Runs of another problem (other inputs, outputs or activation) cannot be compared: MothError."""
    def signature(run):
        attrs = run.attrs
        return (tuple(attrs.get("input_names") or ()), tuple(attrs.get("output_names") or ()),
                attrs.get("activation", "tanh"))

    first = signature(runs[0])
    for run in runs[1:]:
        if signature(run) != first:
            raise MothError(f"run {run.run_id!r} has other inputs, outputs or activation than "
                            f"{runs[0].run_id!r}: its losses are not comparable")


def compare(runs, threshold: float | None = None, split: str = "val") -> Comparison:
    """Compare opened runs (`core.runstore.Run`), each with at least one completed level."""
    if len(runs) < 1:
        raise MothError("compare needs at least one run")
    check_split(split)
    if threshold is not None:
        threshold = check_threshold(threshold)
    ids = [run.run_id for run in runs]
    if len(set(ids)) != len(ids):
        raise MothError(f"a run is named twice: {' '.join(ids)}")
    check_comparable(runs)
    for run in runs:
        if run.levels_complete < 1:
            raise MothError(f"run {run.run_id!r} has no completed level to compare")
    sides = tuple(compare_run(run, threshold, split) for run in runs)
    return Comparison(threshold, split, sides, config_diff([s.config for s in sides]))


def compare_ids(runs_dir, run_ids: Sequence[str], threshold: float | None = None,
                split: str = "val") -> Comparison:
    """`compare` on runs named by id in a run store (StoreError, one line, for an unknown one)."""
    from core.runstore import open_run

    return compare([open_run(runs_dir, run_id) for run_id in run_ids], threshold, split)


def short_value(value: Any) -> str:
    """A config value in a few characters: `[128, 128, 16]` -> `128-128-16`."""
    if isinstance(value, (list, tuple)):
        return "-".join(short_value(v) for v in value) if value else "–"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def distinguishing(configs: Sequence[dict[str, Any]], keys: Sequence[str] = KEY_COLUMNS) -> list[str]:
    """Of `keys`, those whose values differ between the configs (the runs list's study columns)."""
    return [k for k in keys if any(c.get(k) != configs[0].get(k) for c in configs[1:])]
