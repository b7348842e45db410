"""The analysis summary: what `analyze_run` says of a run per analysed level, as typed records.

Stored as the `summary` attribute of `<run>/analysis` (core.analysis.store) and printed by
`mothtui analyze --json`: `AnalysisSummary.to_dict()` is that JSON, key for key and in order, and
`AnalysisSummary.from_dict` reads it back. Values are JSON-ready (lists, `None` for NaN), shaped
per analysed level L, network-median over the N networks: K weight layers, S noise sizes.

`from_dict` also reads analyses written before a part existed: the motifs (`motifs` None), a
structure-only analysis (`performance` None), a missing list read as empty. numpy only (the UI reads it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

#: A per-level value as stored: a float, or None where it is undefined (NaN).
PerLevel = list[float | None]
#: Per level, one value per layer, input, output or motif.
PerLevelRows = list[list[float | None]]
#: The same, of values that are always defined (fractions and counts of the masks).
Defined = list[list[float]]


def json_ready(value: Any) -> Any:
    """numpy -> JSON-ready lists, NaN -> None."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _fields_of(record: Any, prefix: str = "") -> dict[str, Any]:
    """A record's fields as the stored keys (`prefix` + name), in field order."""
    return {prefix + f.name: getattr(record, f.name) for f in fields(record)}


@dataclass(frozen=True)
class MotifSummary:
    """The motifs' medians over the networks per level (core.analysis.motifs); stored keys `motif_<field>`."""

    names: list[str]
    """The six motifs, in core.analysis.motifs.MOTIFS order (the last axis of the rows below)."""
    samples: int
    """Random networks of the null model per network and level (0: counts only, z undefined)."""
    counts_median: PerLevelRows
    """(L, 6) motif counts on the masks as stored."""
    live_median: PerLevelRows
    """(L, 6) motif counts without ghost units."""
    z_median: PerLevelRows
    """(L, 6) z-scores against the null model (None: undefined, e.g. `edges`)."""

    PREFIX = "motif_"

    def to_dict(self) -> dict[str, Any]:
        return _fields_of(self, self.PREFIX)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MotifSummary | None:
        """The motifs of a stored summary, None when it has none (an analysis from before they were counted)."""
        names, z = d.get("motif_names"), d.get("motif_z_median")
        if not names or z is None:
            return None
        return cls(names=list(names), samples=int(d.get("motif_samples") or 0),
                   counts_median=d.get("motif_counts_median") or [], live_median=d.get("motif_live_median") or [],
                   z_median=z)


@dataclass(frozen=True)
class PerformanceSummary:
    """The networks on held-out rows, per level (absent from a `--structure-only` analysis)."""

    eval_rows: int
    """Held-out rows the losses are over."""
    flight_rows: int
    """Of those, the rows flown closed-loop through the simulator."""
    output_names: list[str] | None
    """The run's output names (the last axis of `output_mse_median`)."""
    eval_loss_median: PerLevel
    """(L,) scaled MSE over all outputs."""
    output_mse_median: PerLevelRows
    """(L, 7) scaled MSE per output."""
    noise_sigma: list[float]
    """(S,) standard deviations of the input noise (scaled units)."""
    noise_loss_median: PerLevelRows
    """(S, L) scaled MSE with that noise on the inputs: noise first, then level."""
    flight_position_cm_median: PerLevel
    """(L,) closed-loop position error, cm (median over flights, then networks)."""
    flight_theta_rad_median: PerLevel
    """(L,) closed-loop |theta| error, rad (state order: model.md §1)."""
    flight_phi_rad_median: PerLevel
    """(L,) closed-loop |phi| error, rad."""
    flight_valid_fraction: PerLevel
    """(L,) fraction of flights the simulator accepted."""
    replay_position_cm_median: float | None
    """Position error flying the dataset's own controls: the floor of the flight error (None: no valid flight)."""

    def to_dict(self) -> dict[str, Any]:
        return _fields_of(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PerformanceSummary | None:
        """The performance part of a stored summary, None when it has none (structure only)."""
        if not any(f.name in d for f in fields(cls)):
            return None
        return cls(eval_rows=int(d.get("eval_rows") or 0), flight_rows=int(d.get("flight_rows") or 0),
                   output_names=d.get("output_names"),
                   eval_loss_median=d.get("eval_loss_median") or [],
                   output_mse_median=d.get("output_mse_median") or [],
                   noise_sigma=d.get("noise_sigma") or [], noise_loss_median=d.get("noise_loss_median") or [],
                   flight_position_cm_median=d.get("flight_position_cm_median") or [],
                   flight_theta_rad_median=d.get("flight_theta_rad_median") or [],
                   flight_phi_rad_median=d.get("flight_phi_rad_median") or [],
                   flight_valid_fraction=d.get("flight_valid_fraction") or [],
                   replay_position_cm_median=d.get("replay_position_cm_median"))


@dataclass(frozen=True)
class AnalysisSummary:
    """A run's stored analysis summary: the structure of every analysed level, its motifs and,
    unless structure only, the networks' performance. `to_dict()` is the stored and `--json` form."""

    levels: int
    """Levels analysed: the run's first ones (fewer than its schedule for an interrupted run)."""
    sparsity: list[float]
    """(L,) target sparsity of each level."""
    remaining_mean: Defined
    """(L, K) fraction of each layer's weights left, mean over the networks."""
    ghosts_mean: Defined
    """(L, K-1) ghost units (no input or no output left) per hidden layer, mean over the networks."""
    input_names: list[str] | None
    """The run's input names (the last axis of `input_connections_fraction`)."""
    input_connections_fraction: Defined
    """(L, 10) fraction of the first hidden layer each input still reaches, mean over the networks."""
    weight_quantiles: list[PerLevelRows]
    """Per layer k, (L, 5) quantiles of the surviving weights at `quantile_levels`."""
    quantile_levels: list[float]
    """(5,) the quantiles' levels."""
    motifs: MotifSummary | None
    """None: an analysis from before the motifs were counted."""
    performance: PerformanceSummary | None
    """None: structure only (`--structure-only`)."""

    def to_dict(self) -> dict[str, Any]:
        """The stored summary: the structure's keys, then the motifs' (`motif_...`), then the performance's."""
        out = {k: v for k, v in _fields_of(self).items() if k not in ("motifs", "performance")}
        for part in (self.motifs, self.performance):
            if part is not None:
                out.update(part.to_dict())
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnalysisSummary:
        """A stored summary (the `summary` attribute), of this version or an earlier one."""
        return cls(levels=int(d.get("levels") or 0), sparsity=d.get("sparsity") or [],
                   remaining_mean=d.get("remaining_mean") or [], ghosts_mean=d.get("ghosts_mean") or [],
                   input_names=d.get("input_names"),
                   input_connections_fraction=d.get("input_connections_fraction") or [],
                   weight_quantiles=d.get("weight_quantiles") or [], quantile_levels=d.get("quantile_levels") or [],
                   motifs=MotifSummary.from_dict(d), performance=PerformanceSummary.from_dict(d))
