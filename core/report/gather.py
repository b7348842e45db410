"""The numbers behind a report's figures, for one run or several (pure numpy + zarr, no matplotlib).

Per run: the selection at the threshold exactly as `mothtui select --json` prints it
(`core.select.select_run`), the comparison side `mothtui compare` reads (`core.study.compare`:
loss bands per level, chosen-sparsity histogram, kept fraction per layer and first-layer
connections per input at the chosen levels, the stored extrapolation to other body scales), and
the surviving weight values of every layer at the chosen levels beside the same networks' dense
(level 0) weights. Whether the seed's numbers apply is `core.report.seed.comparable`'s call.

The names a report is asked for go through `expand_targets`: today each is a run id; a sweep name
will expand there to its runs, and nothing else has to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.errors import StoreError
from core.report.seed import comparable
from core.select import Selection, select_run
from core.study import Comparison, RunComparison, compare

#: Surviving weights kept per layer and run for the distributions (a uniform, seeded subsample
#: above it: a 400-network paper run has ~4.5 million survivors in a 400x400 layer at 93 %).
MAX_VALUES = 400_000
#: Networks whose dense (level 0) weights are read for the reference distribution.
DENSE_NETS = 32


@dataclass(frozen=True)
class LayerWeights:
    """One layer's weight values of one run: the survivors at the chosen levels, and dense ones."""

    name: str
    """e.g. `"layer 0 (10→400)"`."""
    chosen: np.ndarray
    """(n,) float64 surviving weights of the chosen networks at their chosen levels (pooled)."""
    dense: np.ndarray
    """(m,) float64 level-0 weights of (up to DENSE_NETS of) the same networks."""
    chosen_total: int
    """Surviving weights before any subsampling."""
    nets: int
    """Chosen networks pooled in `chosen`."""
    dense_total: int
    """Level-0 weights of the `dense_nets` networks before any subsampling."""
    dense_nets: int

    def per_network(self, which: str) -> float:
        """The weight of one value in a per-network count: total / sampled / networks."""
        values, total, nets = ((self.chosen, self.chosen_total, self.nets) if which == "chosen"
                               else (self.dense, self.dense_total, self.dense_nets))
        return total / max(values.size, 1) / max(nets, 1)


@dataclass(frozen=True)
class RunReport:
    """Everything a report shows of one run."""

    side: RunComparison
    selection: Selection
    layer_sizes: tuple[int, ...]
    seed_reason: str | None
    """None: comparable with the seed (its numbers are drawn); else why not."""
    weights: tuple[LayerWeights, ...]
    """Per layer; empty when no network was chosen."""

    @property
    def run_id(self) -> str:
        return self.side.run_id

    @property
    def threshold(self) -> float:
        return self.selection.threshold

    @property
    def shape(self) -> str:
        return "-".join(map(str, self.layer_sizes))

    @property
    def layer_names(self) -> list[str]:
        return layer_names(self.layer_sizes)


@dataclass(frozen=True)
class Report:
    """The runs of one report, in the order asked for, at one threshold rule on one split."""

    comparison: Comparison
    runs: tuple[RunReport, ...]

    @property
    def split(self) -> str:
        return self.comparison.split

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    @property
    def seed_comparable(self) -> bool:
        """Whether any run is comparable with the seed (its numbers are drawn)."""
        return any(r.seed_reason is None for r in self.runs)


def layer_names(sizes: Sequence[int]) -> list[str]:
    """`(10, 400, 7)` -> `["layer 0 (10→400)", "layer 1 (400→7)"]`."""
    return [f"layer {k} ({a}→{b})" for k, (a, b) in enumerate(zip(sizes, sizes[1:]))]


def expand_targets(runs_dir: Path, names: Sequence[str]) -> list[str]:
    """The run ids a report covers, in the order named, each once.

    Every name is a run id today (StoreError, one line, for an unknown one). When sweeps exist, a
    sweep's name expands here to the ids of its runs.
    """
    from core.runstore import run_path

    ids: list[str] = []
    for name in names:
        if not run_path(runs_dir, name).exists():
            raise StoreError(f"no run {name!r} in {runs_dir}")
        if name not in ids:
            ids.append(name)
    return ids


def _subsample(values: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    if values.size <= limit:
        return values
    return np.random.default_rng(seed).choice(values, size=limit, replace=False)


def surviving_weights(run, selection: Selection) -> tuple[LayerWeights, ...]:
    """Per layer, the chosen networks' surviving weights at their chosen levels and their dense ones."""
    by_level: dict[int, list[int]] = {}
    for c in selection.chosen:
        if c.level is not None:  # always, for a chosen network
            by_level.setdefault(int(c.level), []).append(c.network)
    if not by_level:
        return ()
    dense_nets = sorted(c.network for c in selection.chosen)[:DENSE_NETS]
    names = layer_names(run.config.layer_sizes)
    out = []
    for k in range(run.n_layers):
        parts = []
        for level, nets in sorted(by_level.items()):
            layer = run.layer(level, k, sorted(nets))
            parts.append(layer.weight[layer.weight_mask].astype(np.float64))
        chosen = np.concatenate(parts)
        dense = run.layer(0, k, dense_nets).weight.astype(np.float64).ravel()
        out.append(LayerWeights(names[k], _subsample(chosen, MAX_VALUES, k), _subsample(dense, MAX_VALUES, k),
                                int(chosen.size), len(selection.chosen), int(dense.size), len(dense_nets)))
    return tuple(out)


def gather(runs, threshold: float | None = None, split: str = "val") -> Report:
    """The report of opened runs (`core.runstore.Run`, each with a completed level).

    `threshold` None: each run at its own config threshold, as `select` and `compare` do.
    """
    comparison = compare(runs, threshold, split)  # checks the split, threshold, duplicates, comparability
    reports = []
    for run, side in zip(runs, comparison.runs):
        selection = select_run(run, threshold, split)
        reports.append(RunReport(side, selection, tuple(run.config.layer_sizes),
                                 comparable(run.attrs["config"], run.attrs), surviving_weights(run, selection)))
    return Report(comparison, tuple(reports))


def gather_ids(runs_dir: Path, names: Sequence[str], threshold: float | None = None,
               split: str = "val") -> Report:
    """`gather` on runs (or, later, sweeps) named in a run store."""
    from core.runstore import open_run

    return gather([open_run(runs_dir, run_id) for run_id in expand_targets(runs_dir, names)], threshold, split)


def quantiles(values: np.ndarray, qs: Sequence[float] = (0.05, 0.5, 0.95)) -> list[float] | None:
    """Quantiles of `values` (None when empty)."""
    return [float(v) for v in np.quantile(values, qs)] if values.size else None


def weight_summary(layer: LayerWeights) -> dict[str, Any]:
    """The numbers under the distributions figure: counts and quantiles of |w| survivors and dense."""
    return {"layer": layer.name, "surviving": layer.chosen_total,
            "abs_quantiles_5_50_95": quantiles(np.abs(layer.chosen)),
            "dense_abs_quantiles_5_50_95": quantiles(np.abs(layer.dense))}
