"""Where every artefact of a run store lives: each path piece is spelled here and nowhere else.

docs/store-format.md specifies what each file holds; this module only says where it is. Each helper's
docstring names the module that owns the format (the one writer). Everyone else builds paths through
these helpers and never spells a name such as `events.jsonl` or `.trash` again.

Standard library only (pathlib, os; core.errors): the app's first paint and `mothtui --version` import it.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import StoreError

# ---- zarr's own metadata ---------------------------------------------------------------------

#: zarr v3's metadata file of every group and array.
ZARR_META = "zarr.json"


def meta_file(node: Path | str) -> Path:
    """`<group or array>/zarr.json`, zarr v3's metadata (the run's root attributes: core.runstore)."""
    return Path(node) / ZARR_META


# ---- the run store and its runs -----------------------------------------------------------------

#: The run store when neither `--runs`, `$MOTHTUI_RUNS` nor the settings name one (core.settings).
DEFAULT_RUNS = "runs"


def is_hidden(name: str) -> bool:
    """A name in the store that is never a run (`.datasets`, `.trash`, ...; core.runlist)."""
    return name.startswith(".")


def check_run_id(run_id: str) -> str:
    """A run id (or sweep name) that stays inside the store: no `/` or `\\`, not hidden; else StoreError."""
    if not run_id or "/" in run_id or is_hidden(run_id) or "\\" in run_id:
        raise StoreError(f"bad run id {run_id!r}")
    return run_id


def run_dir(runs: Path | str, run_id: str) -> Path:
    """`<runs>/<run_id>`, rejecting ids that would escape the store (core.runstore)."""
    return Path(runs) / check_run_id(run_id)


# ---- beside the arrays of a run (plain files) ---------------------------------------------------

_LOG = ".log"
EVENTS_FILE = "events.jsonl"
OWNER_FILE = "owner.json"
_ENGINE = "engine"
ENGINE_LOG = f"{_ENGINE}{_LOG}"
CHECKPOINT_DIR = "checkpoint"
SLICES_DIR = "slices"
ANALYSIS_GROUP = "analysis"
EXTRAPOLATION_GROUP = "extrapolation"
_WRITING = "writing"


def events_file(run: Path | str) -> Path:
    """`<run>/events.jsonl`, the progress events (core.events)."""
    return Path(run) / EVENTS_FILE


def owner_file(run: Path | str) -> Path:
    """`<run>/owner.json`, the owner record of a run or any claimed directory (core.owner)."""
    return Path(run) / OWNER_FILE


def engine_log_name(process: int = 0) -> str:
    """`engine.log`, or `engine.<i>.log` for process i > 0 of a distributed job (core.runlog)."""
    return ENGINE_LOG if process == 0 else f"{_ENGINE}.{process}{_LOG}"


def engine_log(run: Path | str, process: int = 0) -> Path:
    """`<run>/engine.log` (`engine.<i>.log` for process i > 0): the engine's output (core.runlog)."""
    return Path(run) / engine_log_name(process)


def checkpoint_file(run: Path | str, start: int, stop: int) -> Path:
    """`<run>/checkpoint/nets-A-B.npz`, the level in progress of networks A..B-1 (core.runstore)."""
    return Path(run) / CHECKPOINT_DIR / f"nets-{start}-{stop}.npz"


def checkpoint_staging(file: Path) -> Path:
    """`.nets-A-B.npz.writing` beside a checkpoint: where it is written before the rename (core.runstore)."""
    return file.with_name(f".{file.name}.{_WRITING}")


def slices_dir(run: Path | str) -> Path:
    """`<run>/slices`, the markers of a distributed job (core.distributed)."""
    return Path(run) / SLICES_DIR


def _level_markers(run: Path | str, level: int) -> Path:
    return slices_dir(run) / f"level_{level:03d}"


def slice_marker(run: Path | str, level: int, start: int, stop: int) -> Path:
    """`<run>/slices/level_LLL/nets_A-B.json`: networks A..B-1 of a level are written (core.distributed)."""
    return _level_markers(run, level) / f"nets_{start}-{stop}.json"


def slice_markers(run: Path | str, level: int) -> list[Path]:
    """Every slice marker of a level, sorted (core.distributed)."""
    return sorted(_level_markers(run, level).glob("nets_*.json"))


def process_marker(run: Path | str, process: int) -> Path:
    """`<run>/slices/process_I.json`, the status of process I of a distributed job (core.distributed)."""
    return slices_dir(run) / f"process_{process}.json"


def process_markers(run: Path | str) -> list[Path]:
    """Every process marker of a run, sorted (core.distributed)."""
    return sorted(slices_dir(run).glob("process_*.json"))


def analysis_dir(run: Path | str, group: str = ANALYSIS_GROUP) -> Path:
    """`<run>/analysis` (or `<run>/extrapolation`), a derived-results group (core.analysis.store)."""
    return Path(run) / group


# ---- the store's hidden directories --------------------------------------------------------------

LOGS_DIR = ".logs"
TRASH_DIR = ".trash"
DELETED_FILE = "deleted.json"
DATASETS_DIR = ".datasets"
CHUNKS_DONE_DIR = ".chunks_done"
SWEEPS_DIR = ".sweeps"
QUEUE_DIR = ".queue"
QUEUE_FILE = "queue.json"
QUEUE_LOCK = "queue.lock"
SUPERVISOR_DIR = "supervisor"
SUPERVISOR_LOG = "supervisor.log"
CACHE_DIR = ".cache"
DISK_CACHE_FILE = "disk.json"
REPORTS_DIR = ".reports"
#: Beside the store, not in it: the app's default export directories.
EXPORTS_DIR = "exports"


def log_dir(runs: Path | str) -> Path:
    """`<runs>/.logs`, the output of engines started by the app, the queue or SLURM (mothtui.jobs, core.queue)."""
    return Path(runs) / LOGS_DIR


def log_file(runs: Path | str, run_id: str) -> Path:
    """`<runs>/.logs/<run_id>.log`, a run's job log (mothtui.jobs, core.queue)."""
    return log_dir(runs) / f"{run_id}{_LOG}"


def trash_dir(runs: Path | str) -> Path:
    """`<runs>/.trash`, the deleted runs (core.trash)."""
    return Path(runs) / TRASH_DIR


def trash_entry(runs: Path | str, run_id: str, n: int = 1) -> Path:
    """`<runs>/.trash/<run_id>`, or `<run_id>~n` for the n-th deleted run of that id (core.trash)."""
    return trash_dir(runs) / (run_id if n == 1 else f"{run_id}~{n}")


def trashed_id(entry: Path) -> str:
    """The run id of a trash entry from its name (`quick-1~2` -> `quick-1`; core.trash)."""
    return entry.name.split("~")[0]


def deleted_file(run: Path | str) -> Path:
    """`<run>/deleted.json` inside a trashed run: its id and time of deletion (core.trash)."""
    return Path(run) / DELETED_FILE


def datasets_dir(runs: Path | str) -> Path:
    """`<runs>/.datasets`, the datasets the store's runs simulated (core.dataset)."""
    return Path(runs) / DATASETS_DIR


def dataset_dir(runs: Path | str, name: str) -> Path:
    """`<runs>/.datasets/<name>`, a cached dataset store (core.dataset)."""
    return datasets_dir(runs) / name


def _staging_prefix(store: Path) -> str:
    return f".{store.name}.{_WRITING}-"


def dataset_staging(store: Path, pid: int) -> Path:
    """`.<name>.writing-<pid>` beside a dataset store: where process `pid` writes it (core.dataset)."""
    return store.with_name(f"{_staging_prefix(store)}{pid}")


def dataset_stagings(store: Path) -> list[Path]:
    """Every staging name of a dataset store beside it, in any writer's name (core.dataset)."""
    return list(store.parent.glob(f"{_staging_prefix(store)}*"))


def dataset_staging_pid(staging: Path) -> int | None:
    """The pid in a staging store's name, or None if it has none (core.dataset)."""
    try:
        return int(staging.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None


def chunks_done_dir(staging: Path) -> Path:
    """`<staging store>/.chunks_done`: a file `<index>` per completed chunk, its invalid rows (core.dataset)."""
    return staging / CHUNKS_DONE_DIR



def sweeps_dir(runs: Path | str) -> Path:
    """`<runs>/.sweeps`, the sweep records (core.sweep)."""
    return Path(runs) / SWEEPS_DIR


def sweep_file(runs: Path | str, name: str) -> Path:
    """`<runs>/.sweeps/<name>.json`, refusing names that are not good run ids (core.sweep)."""
    return sweeps_dir(runs) / f"{check_run_id(name)}.json"


def sweep_files(runs: Path | str) -> list[Path]:
    """Every sweep record file of the store, sorted by name; their stems are the sweeps' names (core.sweep)."""
    return sorted(sweeps_dir(runs).glob("*.json"))


def queue_dir(runs: Path | str) -> Path:
    """`<runs>/.queue`, the run queue (core.queue)."""
    return Path(runs) / QUEUE_DIR


def queue_file(runs: Path | str) -> Path:
    """`<runs>/.queue/queue.json`, the queue's state (core.queue)."""
    return queue_dir(runs) / QUEUE_FILE


def queue_lock(runs: Path | str) -> Path:
    """`<runs>/.queue/queue.lock`, flocked around every change of the queue (core.queue)."""
    return queue_dir(runs) / QUEUE_LOCK


def supervisor_dir(runs: Path | str) -> Path:
    """`<runs>/.queue/supervisor`, claimed by the queue's one supervisor (core.queue)."""
    return queue_dir(runs) / SUPERVISOR_DIR


def supervisor_log(runs: Path | str) -> Path:
    """`<runs>/.queue/supervisor.log`, the supervisor's output (core.queue)."""
    return queue_dir(runs) / SUPERVISOR_LOG


def cache_dir(runs: Path | str) -> Path:
    """`<runs>/.cache`, caches that are safe to delete (core.diskcache)."""
    return Path(runs) / CACHE_DIR


def disk_cache_file(runs: Path | str) -> Path:
    """`<runs>/.cache/disk.json`, the remembered disk use of the runs (core.diskcache)."""
    return cache_dir(runs) / DISK_CACHE_FILE


def reports_dir(runs: Path | str) -> Path:
    """`<runs>/.reports`, the reports the app makes (core.report)."""
    return Path(runs) / REPORTS_DIR


def report_dir(runs: Path | str, run_id: str) -> Path:
    """`<runs>/.reports/<run_id>`, where the app writes a run's report; a shell user names any `--out` (core.report)."""
    return reports_dir(runs) / check_run_id(run_id)


def exports_dir(runs: Path | str) -> Path:
    """`<runs>/../exports`, beside the store: where the app offers to export (core.export)."""
    return Path(runs).absolute().parent / EXPORTS_DIR


def export_dir(runs: Path | str, run_id: str, threshold: str, split: str) -> Path:
    """`<runs>/../exports/<run>_<threshold>_<split>`, the app's default export of a pick (core.export)."""
    return exports_dir(runs) / f"{run_id}_{threshold}_{split}"


# ---- inside a report directory (`mothtui report --out DIR`) --------------------------------------

REPORT_INDEX = "index.md"
REPORT_NUMBERS = "report.json"
FIGURE_SUFFIXES = (".svg", ".png")


def figure_files(out: Path | str, stem: str) -> list[Path]:
    """`<out>/<stem>.svg` and `<out>/<stem>.png`, one figure of a report (core.report.figures)."""
    return [Path(out) / f"{stem}{suffix}" for suffix in FIGURE_SUFFIXES]


# ---- inside an export directory (`mothtui export --out DIR`) -------------------------------------

EXPORT_MANIFEST = "manifest.json"
EXPORT_COMPACT_DIR = "compact"
EXPORT_EDGES_DIR = "edges"


def export_stem(net: int) -> str:
    """`net_007`: network 7's files in an export, one per format suffix (core.export)."""
    return f"net_{net:03d}"


def export_compact_stem(net: int) -> str:
    """`compact/net_007`: network 7 without its ghost units, relative to the export (core.export)."""
    return f"{EXPORT_COMPACT_DIR}/{export_stem(net)}"


def export_edges(net: int) -> str:
    """`edges/net_007.csv`: network 7's surviving connections, relative to the export (core.export)."""
    return f"{EXPORT_EDGES_DIR}/{export_stem(net)}.csv"


def partial_file(path: Path) -> Path:
    """`<name>.partial` beside an export file: where it is written before the rename (core.export)."""
    return path.with_name(path.name + ".partial")


# ---- atomic writes --------------------------------------------------------------------------------

_TMP = ".tmp"


def tmp_sibling(path: Path, *, per_process: bool = True) -> Path:
    """`.<name>.<pid>.tmp` beside `path` (this process's pid; `.<name>.tmp` without `per_process`):
    written, then renamed over `path`, so a reader never sees half a file. The owner record, the queue,
    sweep records, the disk cache and distributed markers use it; dataset chunk markers without the pid."""
    return path.with_name(f".{path.name}.{os.getpid()}{_TMP}" if per_process else f".{path.name}{_TMP}")


def is_tmp_of(name: str, target: str) -> bool:
    """`name` is a `tmp_sibling` of a file named `target` (core.owner: a claimed, still empty directory)."""
    return name.startswith(f".{target}.") and name.endswith(_TMP)
