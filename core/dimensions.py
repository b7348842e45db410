"""The names of the axes of every array mothtui stores: one vocabulary (docs/store-format.md).

Written into each array's zarr v3 metadata as `dimension_names` when a store is created, so
xarray (`xarray.open_datatree(run, engine="zarr")`) and any other zarr reader see labelled axes
instead of knowing that axis 0 of `loss/val` is the level and axis 1 the network. Stores made
before the names existed have none; `core.api` labels their arrays from this table when it
builds xarray objects, so old and new stores read the same.

The vocabulary (a name means the same axis in every store):

| name | axis |
|---|---|
| `level` | pruning level of the run (0 = dense); its coordinate is the root's `sparsity` |
| `net` | network of the ensemble |
| `in`, `out` | a weight layer's input and output units (fan-in, fan-out) |
| `slot` | slot of the carried optimizer state (level l writes slot l % 2) |
| `analysed_level` | a level of an analysis or extrapolation: the run's level i, but only the |
|   | levels complete when it was computed (fewer than `level` in an interrupted run) |
| `layer`, `hidden_layer` | weight layer k; hidden layer h (the output of weight layer h) |
| `input`, `output` | the network's 10 inputs and 7 outputs (core.schema names, in order) |
| `bin`, `bin_edge` | histogram bin and its edges |
| `quantile`, `moment` | the stored weight quantiles (5/25/50/75/95 %) and moments (count, mean, std) |
| `noise` | input-noise standard deviation of the noise sweep |
| `flight` | closed-loop flight sample |
| `motif` | the six network motifs (core.analysis.motifs.MOTIFS order: edges, diverging2, converging2, chain2, diverging3, converging3) |
| `scale` | body scale of an extrapolation |
| `row` | dataset row (one simulated wing stroke) |
| `state`, `control` | the 8 state variables (model.md order) and the 3 controls [F, alpha, tau] |

Plain Python: every layer may import it.
"""

from __future__ import annotations

import re

#: Array path inside its store (run arrays as `loss/val`; analysis arrays under their group,
#: `analysis/noise/loss`; dataset arrays bare, `initial`) -> its dimension names.
_TABLE: tuple[tuple[str, tuple[str, ...]], ...] = (
    # run store
    (r"sparsity", ("level",)),
    (r"layer_\d+/(weight|weight_mask)", ("level", "net", "in", "out")),
    (r"layer_\d+/(bias|bias_mask)", ("level", "net", "out")),
    (r"loss/\w+", ("level", "net")),
    (r"train/seconds", ("level",)),
    (r"train/\w+", ("level", "net")),
    (r"optimizer/count", ("slot",)),
    (r"optimizer/(mu|nu)/layer_\d+/weight", ("slot", "net", "in", "out")),
    (r"optimizer/(mu|nu)/layer_\d+/bias", ("slot", "net", "out")),
    # analysis (core.analysis.store)
    (r"analysis/remaining", ("analysed_level", "net", "layer")),
    (r"analysis/ghosts", ("analysed_level", "net", "hidden_layer")),
    (r"analysis/input_connections", ("analysed_level", "net", "input")),
    (r"analysis/weights/layer_\d+/hist", ("analysed_level", "bin")),
    (r"analysis/weights/layer_\d+/edges", ("bin_edge",)),
    (r"analysis/weights/layer_\d+/quantiles", ("analysed_level", "quantile")),
    (r"analysis/weights/layer_\d+/moments", ("analysed_level", "moment")),
    (r"analysis/output_mse", ("analysed_level", "net", "output")),
    (r"analysis/noise/sigma", ("noise",)),
    (r"analysis/noise/loss", ("noise", "analysed_level", "net")),
    (r"analysis/closed_loop/\w+", ("analysed_level", "net", "flight")),
    (r"analysis/motifs/\w+", ("analysed_level", "net", "motif")),
    # extrapolation (core.analysis.extrapolate)
    (r"extrapolation/loss", ("scale", "analysed_level", "net")),
    (r"extrapolation/(scales|rows|valid_fraction)", ("scale",)),
    # dataset store (core.dataset)
    (r"(initial|final)", ("row", "state")),
    (r"controls", ("row", "control")),
    (r"valid", ("row",)),
)
_COMPILED = tuple((re.compile(pattern), dims) for pattern, dims in _TABLE)

#: The root attribute that makes `sparsity` a coordinate of `level` for CF readers (xarray).
COORDINATES = "sparsity"


def dims_of(path: str, ndim: int | None = None) -> tuple[str, ...] | None:
    """The dimension names of the array at `path` (see the module table), or None if it has none.

    With `ndim`, None also when the table's names do not fit the array (an array someone else
    added under a known name): a label is never wrong, at worst missing.
    """
    for pattern, dims in _COMPILED:
        if pattern.fullmatch(path):
            return dims if ndim is None or len(dims) == ndim else None
    return None
