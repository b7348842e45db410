"""A notebook's read-only view of mothtui's results: runs, levels, losses, masks, weights, analysis,
selection and exports, as typed objects and as xarray.

```python
from core import api
api.list_runs("runs")                       # [RunSummary(run_id=..., status=..., ...), ...]
run = api.open_run("runs/quick-...")        # or api.open_run("quick-...", runs="runs")
run.config.hidden, run.levels_complete, run.sparsity
run.losses("val")                           # (levels_complete, nets) float32
run.level(12).weight_masks[0]               # (nets, 10, h1) bool, level 12, first layer
run.network(12, 3).predict(x)               # network 3 at level 12, plain numpy
run.select(1e-3).histogram                  # the paper's figure, as counts
run.analysis(), run.extrapolation()         # stored results (None if never computed)
run.to_xarray()                             # xarray.DataTree: named dims, sparsity on `level`
api.load_export("export/net_003.npz").predict(x)
```

Read-only (nothing here writes a store or takes a run's owner) and JAX-free: importing this module
and reading a run never imports JAX (a test holds it). xarray is optional (the `xarray` extra); only
the `to_xarray` methods import it. The stores' layout is docs/store-format.md; this module reads
them through their owners (core.runstore, core.analysis.store, core.export).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import paths
from core.analysis.store import EXTRAPOLATION, GROUP, load_analysis
from core.config import Config
from core.dimensions import dims_of
from core.errors import StoreError
from core.export import ExportedNetwork, load as _load_export
from core.runlist import RunSummary, list_runs as _list_runs
from core.runstore import LAYER_ARRAYS, Run
from core.schema import SPLITS
from core.select import Selection, select_run

__all__ = ["Derived", "LevelArrays", "RunResults", "list_runs", "load_export", "open_run"]


def _runs_dir(runs: Path | str | None) -> Path:
    if runs is not None:
        return Path(runs)
    from core.settings import default_runs_dir  # $MOTHTUI_RUNS, the settings file, else ./runs

    return default_runs_dir()


def list_runs(runs: Path | str | None = None) -> list[RunSummary]:
    """The runs of a run store, as `mothtui runs` lists them (default store: `$MOTHTUI_RUNS`, the
    settings file's, else `./runs`)."""
    return _list_runs(_runs_dir(runs))


def open_run(run: Path | str, runs: Path | str | None = None) -> "RunResults":
    """A run, by its directory or by its id in `runs`; StoreError (one line) if it is not a readable run."""
    path = Path(run)
    if not path.is_dir() or runs is not None:
        candidate = _runs_dir(runs) / str(run)
        if candidate.is_dir() or not path.is_dir():
            path = candidate
    return RunResults(Run.open(path, mode="r"))


def load_export(path: Path | str, network: int | None = None, *, compacted: bool = False) -> ExportedNetwork:
    """An exported network (`core.export.load`): `.predict(x)` maps physical (n, 10) to (n, 7)."""
    return _load_export(path, network, compacted=compacted)


@dataclass(frozen=True)
class LevelArrays:
    """One completed level of some networks: per weight layer k, `weights[k] (n, in, out)` float32,
    `biases[k] (n, out)`, `weight_masks[k]`, `bias_masks[k]` (bool); `nets` are their indices."""

    level: int
    sparsity: float
    nets: tuple[int, ...]
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    weight_masks: list[np.ndarray]
    bias_masks: list[np.ndarray]

    @property
    def remaining(self) -> np.ndarray:
        """(n,) fraction of each network's weights that survive at this level."""
        kept = sum(m.reshape(len(m), -1).sum(axis=1) for m in self.weight_masks)
        total = sum(m[0].size for m in self.weight_masks)
        return kept / total


@dataclass(frozen=True)
class Derived:
    """A stored analysis (`mothtui analyze`) or extrapolation (`mothtui evaluate`) of a run.

    `levels` is how many levels it covers (the first ones; `analysed_level` i is the run's level i);
    `arrays` maps each array's path in the group (e.g. `noise/loss`) to its values.
    """

    kind: str
    levels: int
    summary: dict[str, Any]
    params: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def datasets(self) -> dict[str, Any]:
        """`{group path: xarray.Dataset}` mirroring the stored groups (`"."`, `"noise"`, `"weights/layer_0"`, ...),
        dims from the store's vocabulary (core.dimensions)."""
        import xarray as xr

        groups: dict[str, dict[str, Any]] = {".": {}}
        for name, values in self.arrays.items():
            parent, _, leaf = name.rpartition("/")
            dims = dims_of(f"{self.kind}/{name}", values.ndim) or tuple(f"{leaf}_{i}" for i in range(values.ndim))
            groups.setdefault(parent or ".", {})[leaf] = (dims, values)
        return {path: xr.Dataset(variables) for path, variables in groups.items()}

    def to_xarray(self, sparsity: np.ndarray | None = None):
        """An `xarray.DataTree` of the stored groups; with the run's `sparsity`, every node with
        `analysed_level` gets it as that dimension's coordinate."""
        import xarray as xr

        nodes = self.datasets()
        if sparsity is not None:
            nodes = {path: ds.assign_coords(sparsity=("analysed_level", np.asarray(sparsity)[: self.levels]))
                     if "analysed_level" in ds.dims else ds for path, ds in nodes.items()}
        nodes["."] = nodes["."].assign_attrs(kind=self.kind, levels=self.levels)
        return xr.DataTree.from_dict({"/" if p == "." else p: ds for p, ds in nodes.items()})


class RunResults:
    """A run store opened for reading. Arrays cover completed levels only (`levels_complete`)."""

    def __init__(self, run: Run):
        self.store = run

    def __repr__(self) -> str:
        return (f"RunResults({self.run_id!r}, status={self.status!r}, nets={self.nets}, "
                f"levels={self.levels_complete}/{self.store.levels})")

    # ---- what the run is --------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.store.run_id

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def attrs(self) -> dict[str, Any]:
        """The run's root attributes as stored (docs/store-format.md)."""
        return self.store.attrs

    @property
    def config(self) -> Config:
        return self.store.config

    @property
    def status(self) -> str:
        return self.store.status

    @property
    def nets(self) -> int:
        return self.store.nets

    @property
    def levels_complete(self) -> int:
        return self.store.levels_complete

    @property
    def sparsity(self) -> np.ndarray:
        """(levels_complete,) target sparsity of each completed level (0.0 first)."""
        return self.store.sparsity[: self.levels_complete]

    @property
    def scaler(self) -> dict[str, np.ndarray]:
        return self.store.scaler

    # ---- arrays -------------------------------------------------------------------------------
    def losses(self, split: str = "val") -> np.ndarray:
        """(levels_complete, nets) MSE of the scaled outputs on a split (train | val | test)."""
        return self.store.losses(split)

    def masks(self, level: int, nets: slice | list[int] = slice(None)) -> list[np.ndarray]:
        """Per weight layer, `(n, in, out)` bool: which weights survive at `level`."""
        return self.store.weight_masks(level, nets)

    def level(self, level: int, nets: slice | list[int] = slice(None)) -> LevelArrays:
        """A completed level's weights, biases and masks of some networks (default all)."""
        arrays = self.store.level(level, nets)
        index = np.arange(self.nets)[nets] if not isinstance(nets, list) else np.asarray(nets)
        return LevelArrays(level, float(self.store.sparsity[level]), tuple(int(i) for i in np.atleast_1d(index)),
                           weights=arrays.weights, biases=arrays.biases, weight_masks=arrays.weight_masks,
                           bias_masks=arrays.bias_masks)

    def network(self, level: int, net: int) -> ExportedNetwork:
        """Network `net` at `level` as an `ExportedNetwork` (no file written): `.predict(x)` in numpy."""
        if not 0 <= net < self.nets:
            raise StoreError(f"run {self.run_id!r} has no network {net} (networks 0..{self.nets - 1})")
        one = self.level(level, [net])
        scaler = self.scaler
        attrs = self.attrs
        return ExportedNetwork(
            weights=[w[0] for w in one.weights], biases=[b[0] for b in one.biases],
            weight_masks=[m[0] for m in one.weight_masks], bias_masks=[m[0] for m in one.bias_masks],
            x_min=scaler["x_min"], x_max=scaler["x_max"], y_min=scaler["y_min"], y_max=scaler["y_max"],
            input_names=list(attrs["input_names"]), output_names=list(attrs["output_names"]),
            meta={"run": self.run_id, "network": net, "level": level, "sparsity": one.sparsity})

    def select(self, threshold: float | None = None, split: str = "val",
               overrides: dict[int, int] | None = None) -> Selection:
        """Per network, the most-pruned level with loss <= threshold (core.select; default the run's)."""
        return select_run(self.store, threshold, split, overrides)

    def analysis(self) -> Derived | None:
        """The stored `mothtui analyze` results, or None if absent or half-written."""
        return _derived(self.store, GROUP)

    def extrapolation(self) -> Derived | None:
        """The stored `mothtui evaluate` results (losses at other body scales), or None."""
        return _derived(self.store, EXTRAPOLATION)

    # ---- xarray ---------------------------------------------------------------------------------
    def losses_xarray(self, split: str = "val"):
        """`xarray.DataArray` of `losses(split)`, dims (level, net), coordinate `sparsity` on `level`."""
        import xarray as xr

        return xr.DataArray(self.losses(split), dims=dims_of(f"loss/{split}"), name=split,
                            coords={"level": np.arange(self.levels_complete), "sparsity": ("level", self.sparsity)})

    def to_xarray(self):
        """The run as an `xarray.DataTree` over its completed levels: groups `loss`, `layer_k` (weight,
        weight_mask, bias, bias_mask), and `analysis`/`extrapolation` when stored; named dims; `level`
        carries its index and `sparsity` as coordinates.

        A store with `dimension_names` (every store written since they were added) is opened lazily with
        `xarray.open_datatree` (arrays read when used); an older store is read into memory and labelled
        from core.dimensions, with the same result.
        """
        import xarray as xr

        levels = self.levels_complete
        nodes: dict[str, Any] = {}
        if _labelled(self.path):
            with warnings.catch_warnings():  # events.jsonl, engine.log, owner.json: files beside the arrays
                warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr hierarchy")
                tree = xr.open_datatree(self.path, engine="zarr", consolidated=False)
            nodes = {path: node.to_dataset(inherit=False) for path, node in tree.subtree_with_keys}
            nodes = {path: ds.isel(level=slice(0, levels)) if "level" in ds.dims else ds
                     for path, ds in nodes.items()}
        else:
            nodes["."] = xr.Dataset(attrs=self.attrs)
            nodes["loss"] = xr.Dataset({s: (dims_of(f"loss/{s}"), self.losses(s)) for s in SPLITS})
            for k in range(self.store.n_layers):
                per_level = [self.store.layer(level, k) for level in range(levels)]
                nodes[f"layer_{k}"] = xr.Dataset({
                    name: (dims_of(f"layer_{k}/{name}"), np.stack([getattr(p, name) for p in per_level]))
                    for name in LAYER_ARRAYS} if per_level else {})
            for found in (self.analysis(), self.extrapolation()):
                if found is not None:
                    nodes.update({found.kind if p == "." else f"{found.kind}/{p}": ds
                                  for p, ds in found.datasets().items()})
        sparsity = self.store.sparsity
        for path, ds in nodes.items():
            coords = {}
            if "level" in ds.dims or path == ".":
                coords["sparsity"] = ("level", sparsity[:levels])
            if "analysed_level" in ds.dims:
                coords["sparsity"] = ("analysed_level", sparsity[: ds.sizes["analysed_level"]])
            nodes[path] = ds.drop_vars("sparsity", errors="ignore").assign_coords(coords)
        nodes["."] = nodes["."].assign_coords(level=np.arange(levels))
        return xr.DataTree.from_dict({"/" if p == "." else p: ds for p, ds in nodes.items()})


def _derived(run: Run, group: str) -> Derived | None:
    found = load_analysis(run, group)
    if found is None:
        return None
    arrays: dict[str, np.ndarray] = {}

    def visit(node, prefix: str) -> None:
        for name, member in node.members():
            if hasattr(member, "shape"):
                arrays[prefix + name] = np.asarray(member[...])
            else:
                visit(member, f"{prefix}{name}/")

    try:
        visit(found.group, "")
    except Exception as err:  # a broken chunk: say which run, in one line
        raise StoreError(f"the {group} of run {run.run_id!r} is unreadable ({err}); recompute it") from None
    return Derived(group, int(found.levels or 0), found.summary, found.params, arrays)


def _labelled(path: Path) -> bool:
    """Whether every array of the run (analysis included) carries zarr `dimension_names`: then
    xarray can open the store itself. One small JSON read per array."""
    import json

    found = False
    for meta_path in Path(path).rglob(paths.ZARR_META):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return False
        if meta.get("node_type") == "array":
            found = True
            if not meta.get("dimension_names"):
                return False
    return found
