"""Dataset stores: simulated wing strokes in a zarr v3 group, streamed to disk chunk by chunk.

Layout (docs/store-format.md): arrays `initial (n, 8)`, `controls (n, 3)`, `final (n, 8)` (float32,
or float64 on request) and `valid (n,)` bool; attributes `scale`, `seed`, `t_end`,
`sampling_ranges`, `integrator` (method and settings), `schema_version`, and `complete`.

Write protocol: arrays are created at full size, chunks are simulated and written one at a time
(memory stays bounded by a few chunks whatever n is), and `complete: true` is written last, so
a store being written, or one whose writer crashed, never looks complete. A new store (and a
`force` replacement) is written under a temporary sibling name (`.<name>.writing-<pid>`, claimed
by its writer like a run, core.owner) and renamed into place at the end, so a failed or interrupted
run never damages the store that was there. Each chunk, once written, is marked done
(`.chunks_done/<i>` in the staging store, holding its count of invalid rows). A staging store
whose writer is dead (killed, or cancelled) is continued by the next writer of the same request
from its completed chunks, and the other dead ones of that name are removed, so a run killed while
simulating leaves one staging store at most and loses at most the chunks in flight.

Rows are reproducible from the seed alone (core.sim.sampling draws them on a fixed grid), so
the same seed gives the same dataset whatever the chunk size, device count or process split.
This module is the format's one owner: `open_dataset` is its only reader (checks, usable rows,
features). Opening a store is pure zarr/numpy; creating one imports JAX on demand.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, cast

import numpy as np
import psutil
import zarr

from core import paths
from core.dimensions import dims_of
from core.distributed import Cluster
from core.errors import Cancelled, MothError, StoreError
from core.owner import claim, held, liveness
from core.schema import DATASET_ARRAYS, INPUT_NAMES, OUTPUT_NAMES
from core.sim.sampling import SAMPLING_BLOCK, SAMPLING_RANGES, sample_rows, validate_scale

if TYPE_CHECKING:
    from core.config import Config

SCHEMA_VERSION = 1
KIND = "mothtui.dataset"
T_END = 0.02
#: Default rows per chunk: on a CPU ~10 MB of arrays per chunk; on an accelerator a bigger
#: chunk keeps the device busy between writes.
CPU_CHUNK = 131072
ACCELERATOR_CHUNK = 1048576

#: Told how many samples are simulated so far: `on_samples(done, total)`.
SamplesCallback = Callable[[int, int], None]
#: Rows read from a store per block by `Dataset.blocks` (bounds host memory while reading).
READ_BLOCK = 1_000_000

# State order q = (x, xd, y, yd, theta, thetad, phi, phid), model.md §1.
_X, _XD, _Y, _YD, _THETA, _THETAD, _PHI, _PHID = range(8)


def features(initial: np.ndarray, controls: np.ndarray, final: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs (n, 10) and outputs (n, 7) of rows, physical units, float64, the contract's order.

    Inputs (core.schema.INPUT_NAMES): phi_0, theta_0, x_f, y_f, phi_f, theta_f, xd_0, yd_0, phid_0, thetad_0.
    Outputs (OUTPUT_NAMES): Fx = F cos alpha, Fy = F sin alpha, tau, xd_f, yd_f, phid_f, thetad_f.
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


@dataclass
class Rows:
    """Usable rows of a store, float64: their states and controls, and the network's features.

    Usable: flagged valid by the simulator and with finite features (a row flagged valid whose
    numbers are not finite is still unusable). `excluded` counts the rows read but not kept.
    """

    initial: np.ndarray   # (m, 8)
    controls: np.ndarray  # (m, 3)
    final: np.ndarray     # (m, 8)
    x: np.ndarray         # (m, 10) physical inputs
    y: np.ndarray         # (m, 7) physical outputs
    excluded: int = 0

    def __len__(self) -> int:
        return len(self.x)

    @classmethod
    def concat(cls, parts: list["Rows"], limit: int | None = None) -> "Rows":
        """The parts in order as one `Rows`, cut to the first `limit` rows (None: all)."""
        cut = slice(None, limit)
        fields = ("initial", "controls", "final", "x", "y")
        if not parts:
            widths = (8, 3, 8, len(INPUT_NAMES), len(OUTPUT_NAMES))
            initial, controls, final, x, y = (np.zeros((0, w)) for w in widths)
            return cls(initial, controls, final, x, y)
        initial, controls, final, x, y = (np.concatenate([getattr(p, f) for p in parts])[cut] for f in fields)
        return cls(initial, controls, final, x, y, excluded=sum(p.excluded for p in parts))


@dataclass
class Dataset:
    """An open, checked dataset store: zarr arrays `.initial .controls .final .valid`, attributes `.attrs`.

    The only reader of the format: training data (`core.data.prepare`) and the analysis's
    held-out rows (`core.analysis.pipeline`) both read rows through `blocks` / `usable_rows`.
    """

    path: Path
    group: zarr.Group
    attrs: dict[str, Any]
    arrays: dict[str, zarr.Array]

    @property
    def n(self) -> int:
        return int(self.arrays["valid"].shape[0])

    @property
    def initial(self) -> zarr.Array:
        return self.arrays["initial"]

    @property
    def controls(self) -> zarr.Array:
        return self.arrays["controls"]

    @property
    def final(self) -> zarr.Array:
        return self.arrays["final"]

    @property
    def valid(self) -> zarr.Array:
        return self.arrays["valid"]

    @property
    def written_by_mothtui(self) -> bool:
        """Made by `create_dataset` (not a contract-layout store from another tool)."""
        return self.attrs.get("kind") == KIND

    @property
    def complete(self) -> bool:
        """Sealed by its writer. A store from another tool has no marker and counts as complete
        unless it says `complete: false`; one of ours is complete only once it says `true`."""
        return bool(self.attrs.get("complete", not self.written_by_mothtui))

    def blocks(self, start: int, stop: int, block: int = READ_BLOCK) -> Iterator[Rows]:
        """The usable rows of [start, stop), `block` rows read at a time; StoreError on a bad chunk."""
        for a in range(start, stop, block):
            b = min(stop, a + block)
            try:
                valid = np.asarray(self.valid[a:b], dtype=bool)
                initial, controls, final = (np.asarray(self.arrays[name][a:b], np.float64)
                                            for name in ("initial", "controls", "final"))
            except Exception as err:  # a lost or damaged chunk: zarr raises many kinds
                raise StoreError(f"dataset at {self.path} is corrupt (rows {a}-{b}): "
                                 f"{str(err).splitlines()[0][:160] if str(err) else type(err).__name__}") from None
            x, y = features(initial, controls, final)
            valid &= np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
            yield Rows(initial[valid], controls[valid], final[valid], x[valid], y[valid],
                       excluded=int((~valid).sum()))

    def usable_rows(self, start: int, stop: int, *, limit: int | None = None,
                    block: int = READ_BLOCK) -> Rows:
        """The first `limit` usable rows of [start, stop) (None: all), reading no further than needed."""
        parts, have = [], 0
        for rows in self.blocks(start, stop, block):
            parts.append(rows)
            have += len(rows)
            if limit is not None and have >= limit:
                break
        return Rows.concat(parts, limit)


def open_dataset(path: Path | str, *, require_complete: bool = True) -> Dataset:
    """Open and check a dataset store; StoreError (one line) if it is missing, corrupt or incomplete.

    Checks: a zarr v3 group with the four arrays (core.schema.DATASET_ARRAYS) of one length n and
    the contract's widths; `kind`, where present, is a mothtui dataset; `samples`, where present,
    is n; and (unless `require_complete=False`) the store is complete (`Dataset.complete`).
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no dataset at {path}")
    try:
        group = zarr.open_group(path, mode="r", zarr_format=3)
        attrs = dict(group.attrs)
        members = set(group.array_keys())
    except Exception as err:  # zarr raises many kinds for damaged metadata
        raise StoreError(f"dataset at {path} is unreadable: {type(err).__name__}: {err}".splitlines()[0]) from None
    if attrs.get("kind", KIND) != KIND:
        raise StoreError(f"{path} is not a mothtui dataset store")
    missing = [name for name in DATASET_ARRAYS if name not in members]
    if missing:
        raise StoreError(f"dataset at {path} is incomplete: array {missing[0]!r} missing")
    try:
        arrays = {name: cast(zarr.Array, group[name]) for name in DATASET_ARRAYS}  # in array_keys()
    except Exception as err:
        raise StoreError(f"dataset at {path} is unreadable: {type(err).__name__}: {err}".splitlines()[0]) from None
    n = arrays["valid"].shape[0]
    shapes = {name: tuple(a.shape) for name, a in arrays.items()}
    expected = {name: (n,) if width is None else (n, width) for name, width in DATASET_ARRAYS.items()}
    if shapes != expected or attrs.get("samples", n) != n:
        raise StoreError(f"dataset at {path} is corrupt: array shapes {shapes} for "
                         f"{attrs.get('samples', n)} samples")
    dataset = Dataset(path, group, attrs, arrays)
    if require_complete and not dataset.complete:
        raise StoreError(f"dataset at {path} is incomplete (its writer did not finish); recreate it with --force")
    return dataset


#: Rows per chunk of the datasets `train` simulates, instead of the device's default (tests use small ones).
CHUNK_ENV = "MOTHTUI_SIM_CHUNK"


def _default_chunk() -> int:
    text = os.environ.get(CHUNK_ENV, "")
    if text:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise MothError(f"${CHUNK_ENV} must be a positive whole number of rows, got {text!r}")
        return value
    import jax
    return CPU_CHUNK if jax.default_backend() == "cpu" else ACCELERATOR_CHUNK


def _check_request(samples, seed, chunk) -> None:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples <= 0:
        raise MothError(f"samples must be a positive integer, got {samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MothError(f"seed must be a non-negative integer, got {seed!r}")
    if chunk is not None and (not isinstance(chunk, (int, np.integer)) or chunk <= 0):
        raise MothError(f"chunk must be a positive integer, got {chunk!r}")


def _create_group(path: Path, samples: int, chunk: int, dtype, attrs: dict, *, label: Path | None = None,
                  mode: Literal["w-", "a"] = "w-") -> zarr.Group:
    """The store's arrays at full size; errors name `label` (the user's path, not a staging one).
    `mode="a"`: in a directory that holds only its claim (the staging store's owner record)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        group = zarr.open_group(path, mode=mode, zarr_format=3)
        for name, width in (("initial", 8), ("controls", 3), ("final", 8)):
            group.create_array(name, shape=(samples, width), chunks=(chunk, width), dtype=dtype,
                               fill_value=float("nan"), dimension_names=dims_of(name))
        group.create_array("valid", shape=(samples,), chunks=(chunk,), dtype="bool", fill_value=False,
                           dimension_names=dims_of("valid"))
        group.attrs.update(attrs)
    except OSError as err:
        raise StoreError(f"cannot write a dataset at {label or path}: {err.strerror or err}") from None
    return group


def create_dataset(path: Path | str, *, samples: int, seed: int, scale: float = 1.0, force: bool = False,
                   chunk: int | None = None, progress: SamplesCallback | None = None, dtype=np.float32,
                   cluster: Cluster | None = None) -> Path:
    """Simulate `samples` random wing strokes into a new dataset store at `path`; returns the path.

    `progress(done, total)` is called after each chunk of this process's share. `force` replaces
    an existing store (only once the new one is complete). With a `cluster` of several processes
    (`core.distributed`), process 0 decides once whether the store may be written and creates it
    under a staging name; every process simulates the chunks `i` with `i % count == index` into it
    (a file system every process sees); process 0 seals it and renames it into place. One
    process is the same flow with no peers.
    """
    cluster = cluster or Cluster()
    _check_request(samples, seed, chunk)
    scale = validate_scale(scale)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise MothError(f"dtype must be float32 or float64, got {dtype}")
    path = Path(path)

    from core.sim import api  # JAX only when we actually simulate

    chunk = min(int(chunk or _default_chunk()), samples)
    attrs = {
        "kind": KIND, "schema_version": SCHEMA_VERSION, "complete": False,
        "samples": int(samples), "seed": int(seed), "scale": scale, "t_end": T_END, "dtype": dtype.name,
        "sampling_ranges": {k: list(v) for k, v in SAMPLING_RANGES.items()},
        "sampling_block": SAMPLING_BLOCK, "chunk": chunk,
        "integrator": api.integrator_settings(scale, dtype),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }

    def stage() -> str:  # process 0, once: may we write here? then the store, out of sight
        if path.exists() and not force:
            raise StoreError(f"{path} already exists (use --force to replace it)")
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path} exists and is not a dataset store")
        staging = _continue_staging(path, attrs)
        if staging is None:
            staging = paths.dataset_staging(path, os.getpid())
            shutil.rmtree(staging, ignore_errors=True)
            try:
                staging.parent.mkdir(parents=True, exist_ok=True)
                staging.mkdir()
            except OSError as err:
                raise StoreError(f"cannot write a dataset at {path}: {err.strerror or err}") from None
            mine_claim = claim(staging)
            try:
                _create_group(staging, samples, chunk, dtype, attrs, label=path, mode="a")
            except BaseException:
                mine_claim.release()
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return str(staging)

    staging = Path(cluster.on_main("dataset/staged", stage))
    try:
        group = zarr.open_group(staging, mode="r+", zarr_format=3)
        mine = range(cluster.index, -(-samples // chunk), cluster.count)
        cluster.gather("dataset/written", _simulate_chunks(group, mine, samples, seed, scale, chunk, dtype,
                                                           progress, api, paths.chunks_done_dir(staging)))

        def seal() -> str:
            group.attrs.update({"invalid": _invalid_done(paths.chunks_done_dir(staging)), "complete": True})
            shutil.rmtree(paths.chunks_done_dir(staging))
            if path.exists():
                shutil.rmtree(path)
            os.replace(staging, path)  # still claimed: no other writer touches it while it moves
            mine_claim = held(staging)
            if mine_claim is not None:
                mine_claim.moved_to(path)
                mine_claim.release()  # removes the owner record from the sealed store
            return str(path)

        return Path(cluster.on_main("dataset/sealed", seal))
    except BaseException as err:
        if cluster.is_main:
            mine_claim = held(staging)
            if mine_claim is not None:
                mine_claim.release()
            # Cancelled or interrupted: keep the completed chunks for the next start; a failure
            # (a full disk, a bug) removes them.
            if not isinstance(err, (Cancelled, KeyboardInterrupt)):
                shutil.rmtree(staging, ignore_errors=True)
        raise


def _chunks_done(done_dir: Path) -> dict[int, int]:
    """The completed chunks of a staging store: index -> invalid rows."""
    out: dict[int, int] = {}
    try:
        entries = list(done_dir.iterdir())
    except OSError:
        return out
    for entry in entries:
        try:
            out[int(entry.name)] = int(entry.read_text())
        except (OSError, ValueError):
            continue  # a temporary file, or one cut short: its chunk is simulated again
    return out


def _invalid_done(done_dir: Path) -> int:
    return int(sum(_chunks_done(done_dir).values()))


def _writer_dead(staging: Path) -> bool:
    """The staging store's writer is gone: its owner record says so, or (a store written before the
    records, or the instant before its writer claims it) the pid in its name is not running here."""
    owner = liveness(staging)
    if owner.record is not None:
        return not owner.alive
    pid = paths.dataset_staging_pid(staging)
    return pid is not None and not psutil.pid_exists(pid)


def _same_request(staging: Path, attrs: dict) -> bool:
    """The staging store was created for exactly this request (all but its creation time)."""
    try:
        have = dict(zarr.open_group(staging, mode="r", zarr_format=3).attrs)
    except Exception:  # killed before its metadata was written: nothing to continue
        return False
    skip = ("created",)
    return {k: v for k, v in have.items() if k not in skip} == \
        json.loads(json.dumps({k: v for k, v in attrs.items() if k not in skip}))


def _continue_staging(path: Path, attrs: dict) -> Path | None:
    """Claim the staging store of a dead writer of this request (the one with most chunks done) to
    continue it; remove the other dead writers' staging stores of this name. None: start afresh."""
    stale = [p for p in paths.dataset_stagings(path) if p.is_dir() and _writer_dead(p)]
    stale.sort(key=lambda p: len(_chunks_done(paths.chunks_done_dir(p))), reverse=True)
    chosen = None
    for candidate in stale:
        try:
            taken = claim(candidate)  # of several starters, one continues it; the others leave it be
        except StoreError:
            continue
        if chosen is None and _same_request(candidate, attrs):
            chosen = candidate
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        taken.release()
    return chosen


def _simulate_chunks(group, chunks, samples, seed, scale, chunk, dtype, progress, api, done_dir: Path) -> int:
    """Simulate and write the given chunk indices but those already done (a continued staging store,
    `done_dir`); returns the number of invalid samples written now. `progress` is told first how many
    rows were already done (0 on a fresh start), then after each chunk."""
    invalid, done = 0, 0
    rows_of = {i: min(samples, (i + 1) * chunk) - i * chunk for i in chunks}
    total = sum(rows_of.values())
    finished = _chunks_done(done_dir)
    todo = [i for i in chunks if i not in finished]
    done = total - sum(rows_of[i] for i in todo)
    if progress is not None:  # where this start begins: 0, or the rows a dead writer completed
        progress(done, total)
    done_dir.mkdir(exist_ok=True)
    # One writer thread: chunk k is compressed and written while chunk k+1 is simulated.
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending = None
        for index in todo:
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
            bad = int(rows - valid[:rows].sum())
            pending = writer.submit(_write_rows, group, start, stop, initial[:rows], controls[:rows],
                                    final[:rows], valid[:rows], done_dir / str(index), bad)
            invalid += bad
            done += rows
            if progress is not None:
                progress(done, total)
        if pending is not None:
            pending.result()
    return invalid


def _write_rows(group, start, stop, initial, controls, final, valid, marker: Path, invalid: int) -> None:
    """Write one chunk's rows, then mark it done (atomically: a marker exists only for a whole chunk)."""
    try:
        group["initial"][start:stop] = initial
        group["controls"][start:stop] = controls
        group["final"][start:stop] = final
        group["valid"][start:stop] = valid
        tmp = paths.tmp_sibling(marker, per_process=False)
        tmp.write_text(str(invalid))
        os.replace(tmp, marker)
        try:  # the owner record's time says the writer is alive (to a reader on another host)
            os.utime(paths.owner_file(marker.parent.parent))
        except OSError:
            pass
    except OSError as err:
        raise StoreError(f"cannot write the dataset: {err.strerror or err}") from None


def cache_name(kind: str, samples: int, seed: int, scale: float) -> str:
    """The name of a cached simulated dataset (`sim_n…_seed…_s…_<integrator>`): what it holds and a
    short hash of the integrator settings that made it.

    So a cache made by an older simulator is never reused for new runs, and never replaced under
    the runs that still read it (a resumed run must see the rows it was trained on).
    """
    from core.sim import api  # JAX: callers are about to simulate or train anyway

    settings = json.dumps(api.integrator_settings(validate_scale(scale), np.float32), sort_keys=True)
    return f"{kind}_n{samples}_seed{seed}_s{scale:g}_{hashlib.sha1(settings.encode()).hexdigest()[:8]}"


def cached_path(runs_dir: Path | str, samples: int, seed: int, scale: float) -> Path:
    """The cached simulated dataset of a config in a run store (`<runs>/.datasets/<cache_name>`):
    what `mothtui train` reuses or writes."""
    return paths.dataset_dir(runs_dir, cache_name("sim", samples, seed, scale))


def dataset_path(config: Config, runs_dir: Path | str) -> Path:
    """Where a run of `config` reads its dataset, as `mothtui train` and `mothtui plan` both find it: the
    config's `dataset` (StoreError, one line, when nothing is there), else the simulated one cached in
    the run store `runs_dir` (`cached_path`; it may still have to be simulated)."""
    if config.dataset:
        path = Path(config.dataset).expanduser()
        if not path.exists():
            raise StoreError(f"dataset {config.dataset!r} not found (config key 'dataset')")
        return path
    return cached_path(runs_dir, config.samples, config.data_seed, config.scale)


def ensure_dataset(path: Path | str, samples: int, seed: int, scale: float = 1.0,
                   progress: SamplesCallback | None = None, dtype=np.float32, cluster: Cluster | None = None) -> Path:
    """Reuse the complete store at `path` if it has these samples/seed/scale/dtype, else create it.

    An incomplete store of ours (a crashed writer) is replaced. A complete store made with
    different parameters, or a store another tool wrote, is never overwritten: StoreError. With
    a `cluster`, process 0 decides once and every process simulates its share.
    """
    cluster = cluster or Cluster()
    path = Path(path)
    if cluster.on_main("dataset/reuse", lambda: _reusable(path, samples, seed, scale, dtype)):
        return path
    return create_dataset(path, samples=samples, seed=seed, scale=scale, force=True, progress=progress,
                          dtype=dtype, cluster=cluster)


def _reusable(path: Path, samples: int, seed: int, scale: float, dtype) -> bool:
    """True if `path` holds the complete store asked for; False if there is none (or an incomplete one)."""
    if path.exists():
        try:
            existing = open_dataset(path, require_complete=False)
        except StoreError:
            existing = None
        if existing is not None and not existing.written_by_mothtui:
            existing = None  # another tool's store: never reused as ours, never replaced
        if existing is not None and existing.complete:
            want = {"samples": int(samples), "seed": int(seed), "scale": validate_scale(scale),
                    "dtype": np.dtype(dtype).name}
            have = {k: existing.attrs.get(k) for k in want}
            if have == want:
                return True
            raise StoreError(f"dataset at {path} has {have}, not {want}; choose another path")
        unreadable = existing is None and (not path.is_dir() or any(path.iterdir()))
        if unreadable:
            raise StoreError(f"{path} exists and is not a readable dataset store; remove it or choose another path")
    return False
