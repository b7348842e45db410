"""Picking the sparse network of every member of the ensemble.

The rule (the seed's, model.md section 3): for each network, the most-pruned level whose loss
on the chosen split is at or under the threshold. A network with no such level is reported with
`level=None`. A per-network manual override forces a level regardless of the threshold (the
picker's "chosen by hand").

Pure numpy: the UI imports this module, so it must never import JAX. Only completed levels
(`levels_complete`) are ever considered, so selecting on a run that is still training is safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from core.errors import MothError
from core.schema import SPLITS, check_split  # noqa: F401  (the UI and the commands take them from here too)


@dataclass(frozen=True)
class Choice:
    """One network's pick. `level` is None when no level passes and none was forced."""

    network: int
    level: int | None
    sparsity: float | None
    loss: float | None
    manual: bool = False
    best_loss: float | None = None
    """The lowest finite loss of this network at any completed level (how close a failing one came)."""

    def to_dict(self) -> dict[str, Any]:
        return {"network": self.network, "level": self.level, "sparsity": self.sparsity,
                "loss": self.loss, "manual": self.manual, "best_loss": self.best_loss}


@dataclass(frozen=True)
class LevelLoss:
    """The spread of one level's loss over the ensemble: median, 10th and 90th percentiles.

    Over the networks whose loss at this level is finite (`finite` of them; a diverged network
    is left out rather than dragging the figures to NaN). None when no network is finite.
    """

    level: int
    sparsity: float
    median: float | None
    p10: float | None
    p90: float | None
    finite: int

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "sparsity": self.sparsity, "median": self.median,
                "p10": self.p10, "p90": self.p90, "finite": self.finite}


def level_losses(losses: np.ndarray, sparsity: np.ndarray) -> tuple[LevelLoss, ...]:
    """Median / p10 / p90 of `losses (L, N)` per level (numpy's linear percentiles), finite only."""
    rows = []
    for level in range(losses.shape[0]):
        values = losses[level][np.isfinite(losses[level])]
        quantiles: list[float | None] = [None, None, None]
        if values.size:
            quantiles = [float(v) for v in np.percentile(values, [10, 50, 90])]
        p10, median, p90 = quantiles
        rows.append(LevelLoss(level, float(sparsity[level]), median, p10, p90, int(values.size)))
    return tuple(rows)


@dataclass(frozen=True)
class Selection:
    """The picks of every network of a run at one threshold on one split."""

    threshold: float
    split: str
    choices: tuple[Choice, ...]
    run: str | None = None
    level_sparsity: tuple[float, ...] = ()
    """Target sparsity of every completed level (the histogram's bins)."""
    loss_by_level: tuple[LevelLoss, ...] = ()
    """Median / p10 / p90 loss of every completed level on `split`."""

    @property
    def chosen(self) -> tuple[Choice, ...]:
        """Networks with a level (passing or forced by hand)."""
        return tuple(c for c in self.choices if c.level is not None)

    @property
    def passing(self) -> int:
        return len(self.chosen)

    @property
    def levels(self) -> list[int | None]:
        return [c.level for c in self.choices]

    @property
    def median_sparsity(self) -> float | None:
        """Median target sparsity of the chosen networks (None if none is chosen)."""
        values = [c.sparsity for c in self.chosen if c.sparsity is not None]  # a chosen network has one
        return float(np.median(values)) if values else None

    def histogram(self) -> dict[str, Any]:
        """The paper's main figure: how many networks were chosen at each level, and with none.

        `{"bins": [{"level": l, "sparsity": s, "count": n}, ...], "none": k}` with one bin per
        completed level (zero counts included, so the bins are the run's schedule), a network
        forced by hand counted at its forced level; the counts and `none` add up to the ensemble.
        """
        counts = [0] * len(self.level_sparsity)
        for c in self.chosen:
            if c.level is not None:  # always, for a chosen network
                counts[c.level] += 1
        return {"bins": [{"level": level, "sparsity": sparsity, "count": count}
                         for level, (sparsity, count) in enumerate(zip(self.level_sparsity, counts))],
                "none": len(self.choices) - self.passing}

    def to_dict(self) -> dict[str, Any]:
        """The contract's `select --json` document (plus `manual` and `best_loss` per network,
        the `histogram` of chosen sparsity and the per-level loss spread `loss_by_level`)."""
        return {"run": self.run, "threshold": self.threshold, "split": self.split,
                "networks": [c.to_dict() for c in self.choices], "histogram": self.histogram(),
                "loss_by_level": [row.to_dict() for row in self.loss_by_level]}


def check_threshold(threshold: Any) -> float:
    """A positive, finite float, or MothError saying what is wrong."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise MothError(f"bad threshold {threshold!r}: expected a positive number such as 1e-3") from None
    if not math.isfinite(value) or value <= 0:
        raise MothError(f"bad threshold {threshold!r}: must be positive and finite (e.g. 1e-3)")
    return value


def select(losses: np.ndarray, sparsity: np.ndarray, threshold: float,
           overrides: Mapping[int, int] | None = None, *, split: str = "val",
           run: str | None = None) -> Selection:
    """Pick a level per network from `losses (L, N)` and the levels' target `sparsity (L,)`.

    Levels are ordered by increasing sparsity, so "most pruned" is the highest passing level
    index. NaN or infinite losses (a diverged network) never pass. `overrides` maps network ->
    level and wins over the rule.
    """
    threshold = check_threshold(threshold)
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 2:
        raise MothError(f"losses must be (levels, networks), got shape {losses.shape}")
    n_levels, n_nets = losses.shape
    sparsity = np.asarray(sparsity, dtype=np.float64)[:n_levels]
    if sparsity.shape != (n_levels,):
        raise MothError(f"sparsity has {sparsity.size} levels, losses {n_levels}")
    overrides = dict(overrides or {})
    for net, forced in overrides.items():
        if not 0 <= int(net) < n_nets:
            raise MothError(f"override for network {net}: the run has networks 0..{n_nets - 1}")
        if not 0 <= int(forced) < n_levels:
            raise MothError(f"override of network {net} to level {forced}: "
                            f"levels 0..{n_levels - 1} are complete")

    finite = np.isfinite(losses)
    passes = finite & (losses <= threshold)
    choices = []
    level: int | None
    for net in range(n_nets):
        column = losses[:, net]
        best = float(np.min(column[finite[:, net]])) if finite[:, net].any() else None
        if net in overrides:
            level, manual = int(overrides[net]), True
        else:
            hits = np.flatnonzero(passes[:, net])
            level, manual = (int(hits[-1]) if hits.size else None), False
        if level is None:
            choices.append(Choice(net, None, None, None, False, best))
        else:
            loss = float(column[level])
            choices.append(Choice(net, level, float(sparsity[level]),
                                  loss if math.isfinite(loss) else None, manual, best))
    return Selection(threshold, split, tuple(choices), run, tuple(float(v) for v in sparsity),
                     level_losses(losses, sparsity))


def select_run(run, threshold: float | None = None, split: str = "val",
               overrides: Mapping[int, int] | None = None) -> Selection:
    """`select` on a run's completed levels; the threshold defaults to the run's config threshold."""
    check_split(split)
    if run.levels_complete < 1:
        raise MothError(f"run {run.run_id!r} has no completed level yet")
    if threshold is None:
        threshold = run.config.threshold
    return select(run.losses(split), run.sparsity, threshold, overrides, split=split, run=run.run_id)


def require_any(selection: Selection) -> Selection:
    """The selection, or MothError (one line) when no network was chosen."""
    if selection.passing == 0:
        bests = [c.best_loss for c in selection.choices if c.best_loss is not None]
        hint = f" (the best is {min(bests):.3g})" if bests else " (no finite loss at any level)"
        raise MothError(f"no network of run {selection.run!r} has {selection.split} loss <= "
                        f"{selection.threshold:g} at any completed level{hint}; raise --threshold")
    return selection


def parse_overrides(items: Sequence[str]) -> dict[int, int]:
    """`["3=12", "17=13"]` from `--override NET=LEVEL` -> {3: 12, 17: 13} (levels are checked by `select`)."""
    overrides: dict[int, int] = {}
    for item in items:
        net, sep, level = item.partition("=")
        try:
            if not sep:
                raise ValueError
            overrides[int(net)] = int(level)
        except ValueError:
            raise MothError(f"bad --override {item!r}: expected NET=LEVEL, e.g. 3=12") from None
    return overrides


def histogram_lines(histogram: Mapping[str, Any], width: int = 40, *, skip_empty: bool = False) -> list[str]:
    """The chosen-sparsity histogram as text bars, one line per level and one for "none".

    `histogram` is `Selection.histogram()`; `width` the longest bar in characters (the largest
    count). `skip_empty` leaves out levels nobody was chosen at (the picker's narrow panel).
    The same drawing in `mothtui select` and in the app's picker.
    """
    bins = [(f"{b['sparsity']:.3f} L{b['level']}", b["count"]) for b in histogram["bins"]]
    rows = [(label, count) for label, count in bins if count or not skip_empty]
    if histogram["none"] or not skip_empty:
        rows.append(("none", histogram["none"]))
    largest = max((count for _, count in rows), default=0)
    label_width = max((len(label) for label, _ in rows), default=0)
    lines = []
    for label, count in rows:
        bar = "█" * (round(width * count / largest) if largest else 0)
        if count and not bar:
            bar = "▏"  # a non-zero count never looks like zero
        lines.append(f"{label:>{label_width}} {bar} {count}")
    return lines
