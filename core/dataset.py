"""Dataset stores: simulated wing strokes in a zarr v3 group, streamed to disk chunk by chunk.

Layout (docs/contract.md): arrays `initial (n, 8)`, `controls (n, 3)`, `final (n, 8)` (float32,
or float64 on request) and `valid (n,)` bool; attributes `scale`, `seed`, `t_end`,
`sampling_ranges`, `integrator` (method and settings), `schema_version`, and `complete`.

Write protocol: arrays are created at full size, chunks are simulated and written one at a time
(memory stays bounded by a few chunks whatever n is), and `complete: true` is written last, so
a store being written, or one whose writer crashed, never looks complete. A new store (and a
`force` replacement) is written under a temporary sibling name and renamed into place at the
end, so a failed or interrupted run never damages the store that was there.

Rows are reproducible from the seed alone (core.sim.sampling draws them on a fixed grid), so
the same seed gives the same dataset whatever the chunk size, device count or process split.
Opening a store is pure zarr/numpy; creating one imports JAX on demand.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zarr

from core.errors import MothError, StoreError
from core.sim.sampling import SAMPLING_BLOCK, SAMPLING_RANGES, sample_rows, validate_scale

SCHEMA_VERSION = 1
KIND = "mothtui.dataset"
T_END = 0.02
#: Default rows per chunk: on a CPU ~10 MB of arrays per chunk; on an accelerator a bigger
#: chunk keeps the device busy between writes.
CPU_CHUNK = 131072
ACCELERATOR_CHUNK = 1048576

#: Told how many samples are simulated so far: `on_samples(done, total)`.
SamplesCallback = Callable[[int, int], None]


@dataclass
class Dataset:
    """An open dataset store: zarr arrays `.initial .controls .final .valid`, attributes `.attrs`."""

    path: Path
    group: zarr.Group
    attrs: dict[str, Any]

    @property
    def n(self) -> int:
        return int(self.attrs["samples"])

    @property
    def initial(self) -> zarr.Array:
        return self.group["initial"]

    @property
    def controls(self) -> zarr.Array:
        return self.group["controls"]

    @property
    def final(self) -> zarr.Array:
        return self.group["final"]

    @property
    def valid(self) -> zarr.Array:
        return self.group["valid"]

    @property
    def complete(self) -> bool:
        return bool(self.attrs.get("complete"))


def open_dataset(path: Path | str, *, require_complete: bool = True) -> Dataset:
    """Open a dataset store; StoreError (one line) if it is missing, corrupt or incomplete."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no dataset at {path}")
    try:
        group = zarr.open_group(path, mode="r", zarr_format=3)
        attrs = dict(group.attrs)
        arrays = {name: group[name] for name in ("initial", "controls", "final", "valid")}
    except Exception as err:  # zarr raises many kinds for damaged metadata
        raise StoreError(f"dataset at {path} is unreadable: {type(err).__name__}: {err}".splitlines()[0]) from None
    if attrs.get("kind") != KIND:
        raise StoreError(f"{path} is not a mothtui dataset store")
    n = attrs.get("samples")
    shapes = {name: a.shape for name, a in arrays.items()}
    if shapes != {"initial": (n, 8), "controls": (n, 3), "final": (n, 8), "valid": (n,)}:
        raise StoreError(f"dataset at {path} is corrupt: array shapes {shapes} for {n} samples")
    if require_complete and not attrs.get("complete"):
        raise StoreError(f"dataset at {path} is incomplete (its writer did not finish); recreate it with --force")
    return Dataset(path, group, attrs)


def _default_chunk() -> int:
    import jax
    return CPU_CHUNK if jax.default_backend() == "cpu" else ACCELERATOR_CHUNK


def _check_request(samples, seed, chunk) -> None:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples <= 0:
        raise MothError(f"samples must be a positive integer, got {samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MothError(f"seed must be a non-negative integer, got {seed!r}")
    if chunk is not None and (not isinstance(chunk, (int, np.integer)) or chunk <= 0):
        raise MothError(f"chunk must be a positive integer, got {chunk!r}")


def _create_group(path: Path, samples: int, chunk: int, dtype, attrs: dict, *, label: Path | None = None
                  ) -> zarr.Group:
    """The store's arrays at full size; errors name `label` (the user's path, not a staging one)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        group = zarr.open_group(path, mode="w-", zarr_format=3)
        for name, width in (("initial", 8), ("controls", 3), ("final", 8)):
            group.create_array(name, shape=(samples, width), chunks=(chunk, width), dtype=dtype,
                               fill_value=float("nan"))
        group.create_array("valid", shape=(samples,), chunks=(chunk,), dtype="bool", fill_value=False)
        group.attrs.update(attrs)
    except OSError as err:
        raise StoreError(f"cannot write a dataset at {label or path}: {err.strerror or err}") from None
    return group


def create_dataset(path: Path | str, *, samples: int, seed: int, scale: float = 1.0, force: bool = False,
                   chunk: int | None = None, progress: SamplesCallback | None = None, dtype=np.float32,
                   distributed: bool = False) -> Path:
    """Simulate `samples` random wing strokes into a new dataset store at `path`; returns the path.

    `progress(done, total)` is called after each chunk. `force` replaces an existing store (only
    once the new one is complete). `distributed`: after `jax.distributed.initialize()`, each
    process simulates the chunks `i` with `i % process_count == process_index` into the shared
    store (which must be on a file system every process sees).
    """
    _check_request(samples, seed, chunk)
    scale = validate_scale(scale)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise MothError(f"dtype must be float32 or float64, got {dtype}")
    path = Path(path)
    if path.exists() and not force:
        raise StoreError(f"{path} already exists (use --force to replace it)")
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path} exists and is not a dataset store")

    from core.sim import api  # JAX only when we actually simulate

    chunk = int(chunk or _default_chunk())
    chunk = min(chunk, samples)
    attrs = {
        "kind": KIND, "schema_version": SCHEMA_VERSION, "complete": False,
        "samples": int(samples), "seed": int(seed), "scale": scale, "t_end": T_END, "dtype": dtype.name,
        "sampling_ranges": {k: list(v) for k, v in SAMPLING_RANGES.items()},
        "sampling_block": SAMPLING_BLOCK, "chunk": chunk,
        "integrator": api.integrator_settings(scale, dtype),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if distributed:
        return _create_distributed(path, samples, seed, scale, chunk, dtype, attrs, progress, force)
    staging = path.with_name(f".{path.name}.writing-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    group = _create_group(staging, samples, chunk, dtype, attrs, label=path)
    try:
        chunks = range(-(-samples // chunk))
        invalid = _simulate_chunks(group, chunks, samples, seed, scale, chunk, dtype, progress, api)
        group.attrs.update({"invalid": invalid, "complete": True})
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _simulate_chunks(group, chunks, samples, seed, scale, chunk, dtype, progress, api) -> int:
    """Simulate and write the given chunk indices; returns the number of invalid samples."""
    invalid, done = 0, 0
    total = samples
    # One writer thread: chunk k is compressed and written while chunk k+1 is simulated.
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending = None
        for index in chunks:
            start, stop = index * chunk, min(samples, (index + 1) * chunk)
            initial, controls = sample_rows(seed, start, stop)
            initial, controls = initial.astype(dtype), controls.astype(dtype)
            # Pad the last chunk to the full chunk size: one compiled shape for the whole run.
            pad = chunk - (stop - start)
            if pad:
                initial = np.concatenate([initial, np.zeros((pad, 8), dtype)])
                controls = np.concatenate([controls, np.zeros((pad, 3), dtype)])
            final, valid = api.simulate_checked(initial, controls, scale=scale, dtype=dtype)
            rows = stop - start
            if pending is not None:
                pending.result()
            pending = writer.submit(_write_rows, group, start, stop, initial[:rows], controls[:rows],
                                    final[:rows], valid[:rows])
            invalid += int(rows - valid[:rows].sum())
            done += rows
            if progress is not None:
                progress(done, total)
        if pending is not None:
            pending.result()
    return invalid


def _write_rows(group, start, stop, initial, controls, final, valid) -> None:
    try:
        group["initial"][start:stop] = initial
        group["controls"][start:stop] = controls
        group["final"][start:stop] = final
        group["valid"][start:stop] = valid
    except OSError as err:
        raise StoreError(f"cannot write the dataset: {err.strerror or err}") from None


def _create_distributed(path, samples, seed, scale, chunk, dtype, attrs, progress, force) -> Path:
    """Every process writes its own chunks into one shared store; process 0 creates and seals it."""
    import jax
    from jax.experimental import multihost_utils

    from core.sim import api

    index, count = jax.process_index(), jax.process_count()
    if index == 0:
        if path.exists() and force:
            shutil.rmtree(path)
        _create_group(path, samples, chunk, dtype, attrs)
    multihost_utils.sync_global_devices("mothtui-dataset-created")
    group = zarr.open_group(path, mode="r+", zarr_format=3)
    mine = range(index, -(-samples // chunk), count)
    invalid = _simulate_chunks(group, mine, samples, seed, scale, chunk, dtype, progress, api)
    counts = multihost_utils.process_allgather(np.asarray([invalid]))
    multihost_utils.sync_global_devices("mothtui-dataset-written")
    if index == 0:
        group.attrs.update({"invalid": int(np.sum(counts)), "complete": True})
    return path


def ensure_dataset(path: Path | str, samples: int, seed: int, scale: float = 1.0,
                   progress: SamplesCallback | None = None, dtype=np.float32) -> Path:
    """Reuse the complete store at `path` if it has these samples/seed/scale/dtype, else create it.

    An incomplete store (a crashed writer) is replaced. A complete store made with different
    parameters is never overwritten: that is a StoreError naming the difference.
    """
    path = Path(path)
    if path.exists():
        try:
            existing = open_dataset(path, require_complete=False)
        except StoreError:
            existing = None
        if existing is not None and existing.complete:
            want = {"samples": int(samples), "seed": int(seed), "scale": validate_scale(scale),
                    "dtype": np.dtype(dtype).name}
            have = {k: existing.attrs.get(k) for k in want}
            if have == want:
                return path
            raise StoreError(f"dataset at {path} has {have}, not {want}; choose another path")
        unreadable = existing is None and (not path.is_dir() or any(path.iterdir()))
        if unreadable:
            raise StoreError(f"{path} exists and is not a readable dataset store; remove it or choose another path")
    return create_dataset(path, samples=samples, seed=seed, scale=scale, force=True, progress=progress,
                          dtype=dtype)
