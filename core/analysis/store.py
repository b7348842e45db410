"""Where the analysis lives in a run: the zarr group `<run>/analysis/`, its own subtree (and the
extrapolation to other body scales, `<run>/extrapolation/`, written the same way).

Written only by `core.analysis.analyze_run`, never touching the run's own arrays or its root
attributes (a resumed engine rewrites those). Protocol: the old group is removed, a new one is
created with `complete: false`, arrays are written, and the attributes `complete: true`,
`summary`, `params` and `levels` are written last. Readers (`load_analysis`) return None for a
missing or half-written analysis. Pure numpy + zarr (the UI reads this).

Arrays (L analysed levels, N networks, K weight layers, S noise sizes, M flight samples):
- `remaining (L, N, K)` fraction of weights left per layer; `ghosts (L, N, K-1)` ghost units
- `input_connections (L, N, 10)` surviving first-layer weights of each input
- `weights/layer_{k}/hist (L, B)`, `.../edges (B+1,)`, `.../quantiles (L, 5)`, `.../moments (L, 3)`
- `output_mse (L, N, 7)` scaled MSE per output on the evaluation rows
- `noise/sigma (S,)`, `noise/loss (S, L, N)`
- `closed_loop/position_cm`, `closed_loop/theta_rad`, `closed_loop/phi_rad (L, N, M)` float32
  (NaN where the simulator rejected the trajectory), `closed_loop/valid (L, N, M)` bool
- `motifs/counts`, `motifs/live_counts (L, N, 6)` int64: the six motif counts (core.analysis.motifs
  .MOTIFS order) on the masks as stored and without ghost units; `motifs/null_mean`,
  `motifs/null_sd`, `motifs/z (L, N, 6)` float64 over the random networks (NaN: undefined).
  The summary has their medians over the networks (`motif_z_median` ...); params `motif_samples`.

Every array carries zarr `dimension_names` (core.dimensions; L is `analysed_level`).
The full specification: docs/store-format.md.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import zarr

from core import paths
from core.dimensions import dims_of

GROUP = paths.ANALYSIS_GROUP
#: `mothtui evaluate`'s results (core.analysis.extrapolate): the same protocol, its own group.
EXTRAPOLATION = paths.EXTRAPOLATION_GROUP
#: Every group of derived results; `stored_stamp` watches them.
GROUPS = (GROUP, EXTRAPOLATION)


@dataclass(frozen=True)
class StoredAnalysis:
    """A complete stored analysis or extrapolation (`load_analysis`): its attributes and its zarr group."""

    summary: dict[str, Any]
    """As stored: an analysis's is read by `core.analysis.summary.AnalysisSummary.from_dict`,
    an extrapolation's is core.analysis.extrapolate's dict."""
    params: dict[str, Any]
    levels: int | None
    """The levels analysed (an attribute: None where absent)."""
    group: zarr.Group
    """The zarr group, for arrays (e.g. `group["noise/loss"][:]`)."""


class AnalysisWriter:
    """A fresh, not-yet-complete analysis group of a run (`group`: GROUP or EXTRAPOLATION)."""

    def __init__(self, run_path: Path, group: str = GROUP):
        path = paths.analysis_dir(run_path, group)
        if path.exists():
            shutil.rmtree(path)
        self.name = group
        self.group = zarr.open_group(path, mode="w", zarr_format=3)
        self.group.attrs.update({"complete": False})

    def array(self, name: str, value: np.ndarray) -> None:
        value = np.asarray(value)
        self.group.create_array(name, shape=value.shape, dtype=value.dtype, chunks=value.shape,
                                overwrite=True, dimension_names=dims_of(f"{self.name}/{name}", value.ndim)
                                )[...] = value

    def finish(self, **attrs: Any) -> None:
        """The completion marker, last."""
        self.group.attrs.update({**attrs, "complete": True})


def analysis_group(run, group: str = GROUP) -> zarr.Group | None:
    path = paths.analysis_dir(run.path, group)
    if not paths.meta_file(path).exists():
        return None
    try:
        return zarr.open_group(path, mode="r", zarr_format=3)
    except Exception:  # a broken analysis is as good as none: it can be recomputed
        return None


def load_analysis(run, group: str = GROUP) -> StoredAnalysis | None:
    """The stored analysis of a run (its attributes and group), or None if absent or half-written.
    `load_analysis(run, EXTRAPOLATION)` reads `mothtui evaluate`'s results the same way."""
    found = analysis_group(run, group)
    if found is None:
        return None
    attrs: dict[str, Any] = found.attrs.asdict()
    if not attrs.get("complete"):
        return None
    return StoredAnalysis(summary=attrs.get("summary", {}), params=attrs.get("params", {}),
                          levels=attrs.get("levels"), group=found)


def stored_stamp(run_path: Path) -> tuple[float | None, ...]:
    """The modification time of each derived group's metadata (None: absent): changes when an
    analysis or an extrapolation is started or completed, so a screen knows to re-read (one stat each)."""
    stamps: list[float | None] = []
    for group in GROUPS:
        try:
            stamps.append(paths.meta_file(paths.analysis_dir(run_path, group)).stat().st_mtime)
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def read_array(run, name: str, group: str = GROUP) -> np.ndarray | None:
    """One stored analysis array, or None if there is no complete analysis or no such array."""
    found = load_analysis(run, group)
    if found is None or name not in found.group:
        return None
    return stored_array(found.group, name)


def stored_array(group: zarr.Group, name: str) -> np.ndarray:
    """The array at path `name` of an analysis group, read whole (an analysis's paths name arrays)."""
    return np.asarray(cast(zarr.Array, group[name])[...])
