"""`mothtui train [--preset P] [--config F] [--set k=v ...] [--runs DIR] [--id ID] [--quiet]`.

Resolves the config, finds or simulates the dataset, prepares the data, creates the run store
and runs the level loop with a progress display (or none with --quiet; events.jsonl is always
written). The last line of stdout is the run id, also when the run is cancelled (exit 130).
Nothing is created until the config and the dataset are known to be good.
"""

from __future__ import annotations

from pathlib import Path

from core.cli import resolve_runs
from core.config import DEFAULT_PRESET, Config, resolve
from core.errors import Cancelled, MothError, StoreError
from core.runlist import new_run_id
from core.runstore import Run, run_path

DATASETS_DIR = ".datasets"


def new_run_path(runs_dir: Path, run_id: str | None, preset: str) -> Path:
    """Where a new run goes: `--id` if given (refused if taken), else a fresh default id."""
    if run_id:
        path = run_path(runs_dir, run_id)
        if path.exists():
            raise StoreError(f"run {run_id!r} already exists in {runs_dir}")
        return path
    return run_path(runs_dir, new_run_id(runs_dir, preset))


def dataset_for(config: Config, runs_dir: Path, quiet: bool, stop=None) -> str:
    """The config's dataset path, or the cached simulated one (simulated now if missing).

    A SIGTERM during the simulation stops it after the current chunk (Cancelled, no run is
    created; the incomplete dataset is replaced the next time).
    """
    if config.dataset:
        path = Path(config.dataset).expanduser()
        if not path.exists():
            raise StoreError(f"dataset {config.dataset!r} not found (config key 'dataset')")
        return str(path)
    try:
        from core.dataset import ensure_dataset
    except ImportError:
        raise MothError("the simulator (core.dataset) is not available: set config key 'dataset'") from None
    name = f"sim_n{config.samples}_seed{config.data_seed}_s{config.scale:g}"

    def progress(done, total):
        if stop is not None and stop.is_set():
            raise Cancelled("cancelled while simulating the dataset; no run was created")
        if not quiet:
            _print_progress(done, total)

    return str(ensure_dataset(runs_dir / DATASETS_DIR / name, config.samples, config.data_seed,
                              config.scale, progress=progress))


def _print_progress(*args, **kwargs) -> None:
    """Progress of the dataset simulation (whatever the simulator reports) on stderr."""
    import sys

    done = args[0] if args else kwargs.get("done")
    total = args[1] if len(args) > 1 else kwargs.get("total")
    if done is not None and total:
        print(f"\rsimulating dataset: {done:,}/{total:,}", end="", file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)


def run(args) -> int:
    if getattr(args, "distributed", False):  # several processes, one run: core/distributed.py
        from core.distributed import train_command

        return train_command(args)
    from core.commands.signals import stop_on_signals

    with stop_on_signals() as stop:  # a SIGTERM during set-up cancels at the first chunk
        preset = args.preset or DEFAULT_PRESET
        config = resolve(preset, args.config, args.overrides)
        runs_dir = resolve_runs(args)
        path = new_run_path(runs_dir, args.run_id, preset)
        dataset = dataset_for(config, runs_dir, args.quiet, stop)
        return train_new(path, config, dataset, preset=preset, quiet=args.quiet, stop=stop)


def train_new(path: Path, config: Config, dataset: str, *, preset: str | None, quiet: bool, stop) -> int:
    """Prepare the data, create the run at `path` and train it; prints the run id last."""
    from core.data import prepare
    from core.engine.loop import Engine

    data = prepare(dataset, config.splits)
    engine = Engine(config, data)
    run_store = Run.create(path, config, dataset=str(Path(dataset).resolve()), split=data.split,
                           scaler=data.scaler.to_dict(),
                           extra_attrs={"preset": preset, "invalid_samples": data.invalid,
                                        "train_rows": data.splits["train"].n})
    return execute(run_store, engine, quiet=quiet, stop=stop)


def execute(run_store: Run, engine, *, quiet: bool, stop, resumed_from: int | None = None, sync=None) -> int:
    """Run the level loop with the display; print the run id last (also when cancelled)."""
    from core.runlog import keep_output  # the run keeps its engine's output: <run>/engine.log

    with keep_output(run_store.path):
        return _execute(run_store, engine, quiet=quiet, stop=stop, resumed_from=resumed_from, sync=sync)


def _execute(run_store: Run, engine, *, quiet: bool, stop, resumed_from: int | None = None, sync=None) -> int:
    from core.engine.loop import run_levels

    sinks = []
    display = None
    if not quiet:
        from core.engine.display import RichDisplay

        display = RichDisplay(engine.config.levels)
        sinks.append(display)
    try:
        if display:
            with display:
                run_levels(run_store, engine, sinks=sinks, stop=stop, resumed_from=resumed_from, sync=sync)
        else:
            run_levels(run_store, engine, sinks=sinks, stop=stop, resumed_from=resumed_from, sync=sync)
    except Cancelled as err:
        print(run_store.run_id, flush=True)
        raise Cancelled(f"run {run_store.run_id} {err}; {run_store.levels_complete} levels complete, "
                        f"resume with `mothtui resume {run_store.run_id} --runs {run_store.path.parent}`") from None
    print(run_store.run_id, flush=True)
    return 0
