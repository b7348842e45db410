"""The run store: one zarr v3 group per run, `<runs>/<run_id>/`, laid out as docs/store-format.md specifies
(every array with shape, dims, dtype, chunking; the attributes; the write order; the version).

Write protocol (so a crash never leaves a level that looks complete but is not):
all arrays are pre-sized to every level at creation; a level's arrays are written chunk by
chunk; only then is `levels_complete` advanced (an atomic rewrite of the group's zarr.json).
Readers trust levels `< levels_complete` only. Arrays are chunked one level by a block of
networks, so processes that own disjoint network slices write disjoint chunks. Every array carries zarr
`dimension_names` (core.dimensions), so xarray opens a run with named axes.

Pure numpy + zarr (no JAX): the UI, selection and export read runs through this module.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Literal, NamedTuple, cast

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from core import paths
from core.config import Config, from_dict
from core.dimensions import COORDINATES, dims_of
from core.errors import StoreError
from core.owner import Liveness, claim, held, liveness, store_less
from core.runlist import (KIND, RunSummary, _short, disk_usage, levels_complete_valid, list_runs,  # noqa: F401
                          no_run, read_attributes, read_engine_pid, run_path, summarize)
from core.schema import INPUT_NAMES, OUTPUT_NAMES, SPLITS, check_split  # noqa: F401  (re-exported)
from core.status import STORED_STATUSES, StoredStatus

SCHEMA_VERSION = 1


class Checkpoint(NamedTuple):
    """The state of a level in progress, as saved: the level, the steps done, the state's arrays."""

    level: int
    step: int
    leaves: list[np.ndarray]


class StoredLayer(NamedTuple):
    """Layer k of a completed level (`Run.layer`) for the networks read: `(n, in, out)` weights
    (float32) and their bool mask, `(n, out)` biases and their mask. With an int `nets`, no `n` axis."""

    weight: np.ndarray
    weight_mask: np.ndarray
    bias: np.ndarray
    bias_mask: np.ndarray


class StoredLevel(NamedTuple):
    """A completed level (`Run.level`) for the networks read: one array per weight layer, first to
    last, each shaped as `StoredLayer`'s. The engine resumes from it, the analysis and the export read it."""

    weights: list[np.ndarray]
    weight_masks: list[np.ndarray]
    biases: list[np.ndarray]
    bias_masks: list[np.ndarray]

    def network(self, i: int) -> "StoredLevel":
        """The `i`-th of the networks read (a position in `nets`, not a network's index), without the `n` axis."""
        return StoredLevel(*([a[i] for a in arrays] for arrays in self))


#: Per-level, per-network training record: `train/<name> (L, N)` (dtype, fill value).
TRAIN_RECORD = {"steps": ("int32", 0), "stopped_early": ("bool", False), "diverged": ("bool", False)}
#: Float elements per chunk we aim for: big enough for fast I/O, small enough to stream.
_CHUNK_TARGET = 4 * 1024 * 1024
_MASK_CODEC = BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")
_FLOAT_CODEC = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")
#: The arrays of one layer of one level (`layer_{k}/<name>` in the store), in `StoredLayer`'s order.
LAYER_ARRAYS: tuple[str, ...] = StoredLayer._fields
#: How a run is opened (zarr's access modes).
Mode = Literal["r", "r+", "a", "w", "w-"]


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def chunk_nets_for(nets: int, largest_layer: int, processes: int = 1) -> int:
    """Networks per chunk: bounded chunk size, and a divisor of each process's slice."""
    per_process = -(-nets // processes)
    target = max(1, min(per_process, _CHUNK_TARGET // max(1, largest_layer)))
    while per_process % target:
        target -= 1
    return target


class Run:
    """An open run store. Create with `Run.create`, open with `Run.open`."""

    def __init__(self, path: Path, group: zarr.Group):
        self.path = Path(path)
        self.group = group

    # ---- creation and opening --------------------------------------------------------
    @classmethod
    def create(cls, path: Path | str, config: Config, *, dataset: str, split: dict[str, list[int]],
               scaler: dict[str, list[float]], chunk_nets: int | None = None,
               extra_attrs: dict[str, Any] | None = None, sparsity: Iterable[float] | None = None) -> "Run":
        """A new run with every array pre-sized to all levels and status `running`.

        `sparsity`: the target of every level when it is not `config.sparsities` (a branch's level 0
        is at its parent's target, `core.branch`).

        `path` must not exist, or be a directory its creator has just claimed (`core.owner.claim_new`).
        """
        path = Path(path)
        claimed = path.is_dir() and store_less(path)
        if path.exists() and not claimed:
            raise StoreError(f"run {path.name!r} already exists in {path.parent}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # "a" beside the owner files ("w-" refuses any file, "w" would delete the lock)
            group = zarr.open_group(path, mode="a" if claimed else "w-", zarr_format=3)
        except OSError as err:
            raise StoreError(f"cannot create run at {path}: {err.strerror or err}") from None
        sizes = config.layer_sizes
        levels, nets = config.levels, config.nets
        cn = chunk_nets or chunk_nets_for(nets, max(a * b for a, b in zip(sizes, sizes[1:])))
        targets = np.asarray(config.sparsities if sparsity is None else list(sparsity), np.float64)
        if targets.shape != (levels,):
            raise ValueError(f"sparsity needs {levels} targets, got {targets.shape}")
        group.create_array("sparsity", shape=(levels,), dtype="float64", chunks=(levels,),
                           fill_value=0.0, dimension_names=dims_of("sparsity"))[:] = targets
        for k, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
            layer = group.require_group(f"layer_{k}")
            for name, shape, dtype, fill, codec in (
                    ("weight", (levels, nets, fan_in, fan_out), "float32", 0.0, _FLOAT_CODEC),
                    ("weight_mask", (levels, nets, fan_in, fan_out), "bool", False, _MASK_CODEC),
                    ("bias", (levels, nets, fan_out), "float32", 0.0, _FLOAT_CODEC),
                    ("bias_mask", (levels, nets, fan_out), "bool", False, _MASK_CODEC)):
                layer.create_array(name, shape=shape, dtype=dtype, chunks=(1, cn, *shape[2:]), fill_value=fill,
                                   compressors=codec, dimension_names=dims_of(f"layer_{k}/{name}"))
        losses = group.require_group("loss")
        for name in SPLITS:
            losses.create_array(name, shape=(levels, nets), dtype="float32", chunks=(1, cn),
                                fill_value=float("nan"), dimension_names=dims_of(f"loss/{name}"))
        # Training record of each level (beyond the contract): steps taken, early stops, divergences.
        record = group.require_group("train")
        for name, (dtype, fill) in TRAIN_RECORD.items():
            record.create_array(name, shape=(levels, nets), dtype=dtype, chunks=(1, cn), fill_value=fill,
                                dimension_names=dims_of(f"train/{name}"))
        record.create_array("seconds", shape=(levels,), dtype="float64", chunks=(levels,),
                            fill_value=float("nan"), dimension_names=dims_of("train/seconds"))
        if config.optimizer_state == "carried":  # Adam's state at the end of the last two levels
            _create_moments(group, sizes, nets, cn)
        group.attrs.update({
            "kind": KIND,
            "schema_version": SCHEMA_VERSION,
            "created": now_iso(),
            "status": "running",
            "levels_complete": 0,
            "levels": levels,
            "nets": nets,
            "chunk_nets": cn,
            "config": config.to_dict(),
            "dataset": str(dataset),
            "split": {k: [int(a), int(b)] for k, (a, b) in split.items()},
            "scaler": {k: [float(x) for x in v] for k, v in scaler.items()},
            "input_names": list(INPUT_NAMES),
            "output_names": list(OUTPUT_NAMES),
            "activation": "tanh",
            # CF readers (xarray) make `sparsity` a coordinate of `level` (docs/store-format.md)
            "coordinates": COORDINATES,
            **(extra_attrs or {}),
        })
        return cls(path, group)

    @classmethod
    def open(cls, path: Path | str, mode: Mode = "r") -> "Run":
        """Open an existing run; StoreError if it is missing or not a readable run."""
        path = Path(path)
        if not path.is_dir():
            raise StoreError(f"no run at {path}")
        if store_less(path):  # claimed, its store not written: a starting run, or one whose creator died
            if liveness(path).alive and held(path) is None:
                raise StoreError(f"run {path.name!r} is starting: its store is not written yet")
            raise StoreError(f"run {path.name!r} was abandoned before its store was written; "
                             f"start it again with `mothtui train --id {path.name}`")
        try:
            group = zarr.open_group(path, mode=mode, zarr_format=3)
            attrs = group.attrs.asdict()
        except Exception as err:  # zarr raises many types for a broken store
            raise StoreError(f"run {path.name!r} is unreadable: {_short(err)}") from None
        if attrs.get("kind") != KIND:
            raise StoreError(f"{path} is not a mothtui run")
        run = cls(path, group)
        run._check()
        return run

    def _check(self) -> None:
        attrs = self.attrs
        for key in ("schema_version", "status", "levels_complete", "config", "split", "scaler"):
            if key not in attrs:
                raise StoreError(f"run {self.run_id!r} is damaged: attribute {key!r} missing")
        if attrs["schema_version"] > SCHEMA_VERSION:
            raise StoreError(f"run {self.run_id!r} has schema {attrs['schema_version']}; "
                             f"this mothtui reads up to {SCHEMA_VERSION}")
        try:
            self.config
        except Exception as err:
            raise StoreError(f"run {self.run_id!r} is damaged: bad config ({_short(err)})") from None
        levels_complete = attrs["levels_complete"]
        levels = self.config.levels
        if not levels_complete_valid(levels_complete, levels):
            raise StoreError(f"run {self.run_id!r} is damaged: levels_complete is {levels_complete!r}, "
                             f"not a whole number from 0 to {levels}")
        self._check_shapes(levels)

    def _check_shapes(self, levels: int) -> None:
        """Every contract array is there with the shape the config implies."""
        nets, sizes = self.config.nets, self.config.layer_sizes
        expected = {"sparsity": (levels,), **{f"loss/{s}": (levels, nets) for s in SPLITS}}
        for k, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
            expected[f"layer_{k}/weight"] = expected[f"layer_{k}/weight_mask"] = (levels, nets, fan_in, fan_out)
            expected[f"layer_{k}/bias"] = expected[f"layer_{k}/bias_mask"] = (levels, nets, fan_out)
        for name, shape in expected.items():
            try:
                found = tuple(self._array(name).shape)
            except Exception as err:  # missing or unreadable metadata
                raise StoreError(f"run {self.run_id!r} is damaged: array {name} unreadable "
                                 f"({_short(err)})") from None
            if found != shape:
                raise StoreError(f"run {self.run_id!r} is damaged: array {name} has shape {found}, "
                                 f"expected {shape}")

    def _array(self, name: str) -> zarr.Array:
        """The array at `name` (a path in the run's group; the layout makes every such path an array)."""
        return cast(zarr.Array, self.group[name])

    def _read(self, name: str, read) -> np.ndarray:
        """`read()` of one array, with a broken chunk reported as a damaged run (never a traceback)."""
        try:
            return np.asarray(read())
        except StoreError:
            raise
        except Exception as err:
            raise StoreError(f"run {self.run_id!r} is damaged: array {name} unreadable ({_short(err)})") from None

    # ---- attributes ------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def attrs(self) -> dict[str, Any]:
        return self.group.attrs.asdict()

    @property
    def config(self) -> Config:
        return from_dict(self.attrs["config"])

    @property
    def status(self) -> str:
        return self.attrs["status"]

    @property
    def levels_complete(self) -> int:
        return int(self.attrs["levels_complete"])

    @property
    def levels(self) -> int:
        return int(self.attrs.get("levels", self.config.levels))

    @property
    def nets(self) -> int:
        return int(self.attrs.get("nets", self.config.nets))

    @property
    def n_layers(self) -> int:
        return len(self.config.layer_sizes) - 1

    @property
    def scaler(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.attrs["scaler"].items()}

    @property
    def events_path(self) -> Path:
        return paths.events_file(self.path)

    def set_attrs(self, **values: Any) -> None:
        """Update attributes (one atomic rewrite of zarr.json).

        The labels (`tags`, `note`) may have been changed on disk by `set_labels` from another process
        since this handle was opened: they are carried over from the file, not from this handle's copy.
        """
        on_disk = _labels_on_disk(self.path)
        self.group.attrs.update({**{k: v for k, v in on_disk.items() if k not in values}, **values})

    @property
    def tags(self) -> list[str]:
        return list(self.attrs.get("tags") or [])

    @property
    def note(self) -> str:
        return str(self.attrs.get("note") or "")

    def set_labels(self, *, tags: Iterable[str] | None = None, note: str | None = None) -> None:
        """Set the run's tags (a list; duplicates dropped, order kept) and/or its note ("" clears it).

        The one writer of the `tags` and `note` attributes (CLI `tag`/`note` and the app). Like every
        writer it claims the run first (core.owner), so it is refused, naming the owner, while an
        engine trains the run. StoreError names a bad tag.
        """
        values: dict[str, Any] = {}
        if tags is not None:
            values["tags"] = list(dict.fromkeys(check_tag(t) for t in tags))
        if note is not None:
            values["note"] = str(note).strip()
        if not values:
            return
        with claim(self.path, run_id=self.run_id):
            try:
                fresh = zarr.open_group(self.path, mode="r+", zarr_format=3)
                fresh.attrs.update(values)
            except OSError as err:
                raise StoreError(f"cannot write the labels of run {self.run_id!r}: {err.strerror or err}") from None
        self.group = fresh

    def set_status(self, status: StoredStatus, **extra: Any) -> None:
        if status not in STORED_STATUSES:
            raise ValueError(f"bad status {status!r}")
        self.set_attrs(status=status, **extra)

    # ---- arrays ----------------------------------------------------------------------
    @property
    def sparsity(self) -> np.ndarray:
        """(L,) target sparsity of every level."""
        return self._read("sparsity", lambda: self._array("sparsity")[:])

    def write_level(self, level: int, weights: Iterable[np.ndarray], weight_masks: Iterable[np.ndarray],
                    biases: Iterable[np.ndarray], bias_masks: Iterable[np.ndarray],
                    losses: dict[str, np.ndarray], nets: slice = slice(None),
                    extra: dict[str, np.ndarray] | None = None) -> None:
        """Write one level's arrays for a slice of networks (per layer: (n, in, out) / (n, out)).

        `extra` maps other `(L, N)` array paths (e.g. "train/steps") to this level's `(n,)` values.
        Does not advance `levels_complete`: call `complete_level` once every slice is written.
        """
        for k, (w, wm, b, bm) in enumerate(zip(weights, weight_masks, biases, bias_masks)):
            self._array(f"layer_{k}/weight")[level, nets] = np.asarray(w, dtype=np.float32)
            self._array(f"layer_{k}/weight_mask")[level, nets] = np.asarray(wm, dtype=bool)
            self._array(f"layer_{k}/bias")[level, nets] = np.asarray(b, dtype=np.float32)
            self._array(f"layer_{k}/bias_mask")[level, nets] = np.asarray(bm, dtype=bool)
        for name in SPLITS:
            self._array(f"loss/{name}")[level, nets] = np.asarray(losses[name], dtype=np.float32)
        for path, values in (extra or {}).items():
            self._array(path)[level, nets] = np.asarray(values)

    def complete_level(self, level: int, seconds: float | None = None) -> None:
        """Record the level's wall time, then mark levels 0..level complete (the last write of a level)."""
        if seconds is not None:
            self._array("train/seconds")[level] = seconds
        self.set_attrs(levels_complete=level + 1)

    @property
    def chunk_nets(self) -> int:
        """Networks per chunk of the per-level arrays (processes own whole chunks)."""
        return int(self.attrs.get("chunk_nets") or self._array("loss/val").chunks[1])

    def diverged(self, level: int, nets: slice = slice(None)) -> np.ndarray:
        """(n,) bool: which networks had diverged (and are frozen) by the end of a completed level."""
        self._check_level(level)
        array = self._array("train/diverged")
        return self._read("train/diverged", lambda: array[level, nets]).astype(bool)

    def level(self, level: int, nets: slice | list[int] | int = slice(None)) -> StoredLevel:
        """One completed level's weights, masks and biases, per layer (`Run.layer`'s checks on each)."""
        self._check_level(level)
        layers = [self.layer(level, k, nets) for k in range(self.n_layers)]
        return StoredLevel([x.weight for x in layers], [x.weight_mask for x in layers],
                           [x.bias for x in layers], [x.bias_mask for x in layers])

    def losses(self, split: str = "val") -> np.ndarray:
        """(levels_complete, N) loss of every network at every completed level on a split."""
        check_split(split, StoreError)
        array = self._array(f"loss/{split}")
        return self._read(f"loss/{split}", lambda: array[: self.levels_complete])

    # ---- accessors for readers outside this module (branch `formats`) -------------------
    # Everything outside runstore.py reads a run through these (never `run.group[...]`), so the
    # layout stays private to this module and every read gets the damage checks.
    @property
    def row_ranges(self) -> dict[str, tuple[int, int]]:
        """The dataset rows of each split, `{"train": (start, stop), ...}` (the `split` attribute)."""
        return {k: (int(a), int(b)) for k, (a, b) in self.attrs["split"].items()}

    def layer(self, level: int, k: int, nets: slice | list[int] | int = slice(None)) -> StoredLayer:
        """Layer k of one completed level: its weights, biases and their masks, of `nets`.

        StoreError (one line) if the level is not complete, a chunk is unreadable, or the weights
        disagree with their mask (a lost chunk reads as its fill value).
        """
        self._check_level(level)
        if not 0 <= k < self.n_layers:
            raise StoreError(f"run {self.run_id!r} has no layer {k} (layers 0..{self.n_layers - 1})")
        out = {}
        for name in LAYER_ARRAYS:
            array = self._array(f"layer_{k}/{name}")
            # zarr's OIndex annotation leaves out a list of ints, which zarr takes (orthogonal selection)
            out[name] = self._read(f"layer_{k}/{name}", lambda: array.oindex[level, nets]  # type: ignore[index]
                                   if isinstance(nets, list) else array[level, nets])
        stored = StoredLayer(**out)
        weight, mask = stored.weight, stored.weight_mask
        # A surviving weight of exactly 0, or a pruned one that is not 0, means the stored level is
        # not what the engine wrote.
        if not (np.isfinite(weight).all() and (weight[~mask] == 0).all() and (weight[mask] != 0).all()):
            raise StoreError(f"run {self.run_id!r} is damaged: layer_{k} weights of level {level} "
                             "disagree with their mask (a chunk is missing or corrupt)")
        return stored

    def _check_level(self, level: int) -> None:
        if not 0 <= level < self.levels_complete:
            raise StoreError(f"run {self.run_id!r}: level {level} is not complete "
                             f"({self.levels_complete} levels are)")

    # ---- the carried optimizer state (config optimizer_state = "carried") -----------------
    def write_moments(self, level: int, nets: slice, count: int | None, mu, nu) -> None:
        """Adam's state at the end of `level` for a slice of networks (mu, nu: per layer (weight, bias));
        `count` by one process only (it is the ensemble's). Written before the level completes."""
        slot = level % MOMENT_SLOTS
        for name, moment in (("mu", mu), ("nu", nu)):
            for k, (w, b) in enumerate(moment):
                self._array(f"optimizer/{name}/layer_{k}/weight")[slot, nets] = np.asarray(w, np.float32)
                self._array(f"optimizer/{name}/layer_{k}/bias")[slot, nets] = np.asarray(b, np.float32)
        if count is not None:
            self._array("optimizer/count")[slot] = count

    def moments(self, level: int, nets: slice = slice(None)):
        """(count, mu, nu) at the end of a completed `level`; StoreError if the run does not keep them."""
        self._check_level(level)
        if "optimizer" not in self.group:
            raise StoreError(f"run {self.run_id!r} keeps no optimizer state (config optimizer_state is fresh)")
        slot = level % MOMENT_SLOTS
        count = int(self._read("optimizer/count", lambda: self._array("optimizer/count")[slot]))
        if count < 0:
            raise StoreError(f"run {self.run_id!r} is damaged: no optimizer state for level {level}")
        out = []
        for name in ("mu", "nu"):
            out.append([tuple(self._read(f"optimizer/{name}/layer_{k}/{part}",
                                         lambda: self._array(f"optimizer/{name}/layer_{k}/{part}")[slot, nets])
                              for part in ("weight", "bias")) for k in range(self.n_layers)])
        return count, out[0], out[1]

    # ---- the level in progress (checkpoints inside a level) -------------------------------
    def _checkpoint_file(self, nets: slice) -> Path:
        start, stop, _ = nets.indices(self.nets)
        return paths.checkpoint_file(self.path, start, stop)

    def write_checkpoint(self, level: int, step: int, nets: slice, leaves: list[np.ndarray]) -> None:
        """The training state of the level in progress after `step` steps, for a slice of networks.

        Written to a temporary file, flushed to disk and renamed over the previous checkpoint, so a
        kill mid-write keeps the previous one. `leaves`: the state's arrays in a fixed order (the
        engine's `TrainState` flattened); this module does not interpret them.
        """
        target = self._checkpoint_file(nets)
        target.parent.mkdir(exist_ok=True)
        tmp = paths.checkpoint_staging(target)
        meta = json.dumps({"level": level, "step": step, "leaves": len(leaves)})
        with open(tmp, "wb") as f:
            # mypy matches the ** mapping against savez's `allow_pickle: bool` too
            np.savez(f, meta=np.array(meta),
                     **{f"leaf_{i}": np.asarray(a) for i, a in enumerate(leaves)})  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def checkpoint(self, nets: slice = slice(None)) -> Checkpoint | None:
        """The level in progress as last saved for this slice of networks, if it is the level that
        comes next (`levels_complete`); None otherwise (no checkpoint, or one left from a level that
        has completed since). A checkpoint that cannot be read counts as none: the level restarts."""
        path = self._checkpoint_file(nets)
        if not path.is_file():
            return None
        try:
            with np.load(path) as f:
                meta = json.loads(str(f["meta"]))
                leaves = [f[f"leaf_{i}"] for i in range(int(meta["leaves"]))]
        except (OSError, ValueError, KeyError):
            return None
        if meta["level"] != self.levels_complete:
            return None
        return Checkpoint(int(meta["level"]), int(meta["step"]), leaves)

    def clear_checkpoint(self, nets: slice = slice(None)) -> None:
        """Drop the slice's checkpoint (its level is complete)."""
        self._checkpoint_file(nets).unlink(missing_ok=True)

    # ---- the owner (core.owner) ---------------------------------------------------------
    def owner(self) -> Liveness:
        """Who holds the run, and whether it is alive."""
        return liveness(self.path)

    def engine_pid(self) -> int | None:
        """The pid of the live process that owns the run on this host, else None."""
        return read_engine_pid(self.path)

    # ---- accessors for the app's screens (reads the screens need; nothing else indexes the group) ----
    def weight_masks(self, level: int, nets: slice | list[int] = slice(None)) -> list[np.ndarray]:
        """One completed level's weight masks, per layer `(n, in, out)` bool, for a slice (or a list) of networks.

        The layers view reads these for every level: no weights, a fifth of `level()`'s bytes.
        The comparison reads a list: the networks chosen at that level.
        """
        if not 0 <= level < self.levels_complete:
            raise StoreError(f"run {self.run_id!r}: level {level} is not complete "
                             f"({self.levels_complete} levels are)")

        def read(k: int):
            array = self._array(f"layer_{k}/weight_mask")
            if isinstance(nets, list):  # a list of ints: zarr takes it, its OIndex annotation leaves it out
                return array.oindex[level, nets]  # type: ignore[index]
            return array[level, nets]

        return [self._read(f"layer_{k}/weight_mask", lambda k=k: read(k)) for k in range(self.n_layers)]


#: Slots of the carried optimizer state: level l writes slot l % 2, so the slot of the last complete
#: level survives a crash in the middle of writing the next one.
MOMENT_SLOTS = 2


def _create_moments(group: zarr.Group, sizes, nets: int, cn: int) -> None:
    """`optimizer/count (2,)` and `optimizer/{mu,nu}/layer_{k}/{weight,bias} (2, N, ...)`."""
    opt = group.require_group("optimizer")
    opt.create_array("count", shape=(MOMENT_SLOTS,), dtype="int32", chunks=(MOMENT_SLOTS,), fill_value=-1,
                     dimension_names=dims_of("optimizer/count"))
    for moment in ("mu", "nu"):
        for k, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
            layer = opt.require_group(f"{moment}/layer_{k}")
            layer.create_array("weight", dimension_names=dims_of(f"optimizer/{moment}/layer_{k}/weight"),
                               shape=(MOMENT_SLOTS, nets, fan_in, fan_out), dtype="float32",
                               chunks=(1, cn, fan_in, fan_out), fill_value=0.0, compressors=_FLOAT_CODEC)
            layer.create_array("bias", dimension_names=dims_of(f"optimizer/{moment}/layer_{k}/bias"),
                               shape=(MOMENT_SLOTS, nets, fan_out), dtype="float32",
                               chunks=(1, cn, fan_out), fill_value=0.0, compressors=_FLOAT_CODEC)


TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}")


def check_tag(tag: str) -> str:
    """A valid tag (letters, digits, `_`, `.`, `-`; up to 40; starts with a letter or digit) or StoreError."""
    tag = str(tag).strip()
    if not TAG_PATTERN.fullmatch(tag):
        raise StoreError(f"bad tag {tag!r}: use letters, digits, '_', '.', '-' (up to 40, "
                         "starting with a letter or digit)")
    return tag


def _labels_on_disk(path: Path) -> dict[str, Any]:
    """The `tags` and `note` attributes as the run's zarr.json has them now (plain JSON read)."""
    try:
        attrs = read_attributes(path)
    except (OSError, ValueError):
        return {}
    return {k: attrs[k] for k in ("tags", "note") if k in attrs}


def open_run(runs_dir: Path | str, run_id: str, mode: Mode = "r") -> Run:
    """Open `<runs>/<run_id>` with an error that names the run store when it is missing."""
    path = run_path(runs_dir, run_id)
    if not path.exists():
        raise no_run(runs_dir, run_id)
    return Run.open(path, mode)
