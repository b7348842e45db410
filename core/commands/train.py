"""`mothtui train [--from RUN:LEVEL] [--preset P] [--config F] [--set k=v ...] [--runs DIR] [--id ID] [--quiet] [--distributed ...]`.

Resolves the config, finds or simulates the dataset, prepares the data, creates the run store
and runs the level loop with a progress display (or none with --quiet; events.jsonl is always
written). The last line of stdout is the run id, also when the run is cancelled (exit 130).
Nothing is created until the config and the dataset are known to be good, and the config is known
to fit the device's memory (`core.plan.require_fit`, the check of `mothtui plan`).

One flow for one process and for many (`--distributed`): process 0 takes every decision once
(run id, dataset, "does it exist"), through `core.distributed.Cluster`, and hands it to all;
every process simulates its share of a missing dataset and trains its slice of the networks.
With one process the cluster just calls the actions.

`--from RUN:LEVEL` makes a branch run (`core.branch`): its config starts from the parent's, its
data are scaled with the parent's scaler, and its level 0 is the parent's level as stored.
"""

from __future__ import annotations

import argparse
import shutil
import uuid
from pathlib import Path

from core import cmdline, paths
from core.cli import config_options, distributed_options, parallel_option, quiet_option, resolve_runs, runs_option
from core.commands.signals import stop_on_signals
from core.config import DEFAULT_PRESET, Config, resolve
from core.distributed import Cluster, LevelSync, from_args
from core.errors import Cancelled, StoreError
from core.owner import claim_new, held
from core.plan import require_fit
from core.runlist import new_run_id
from core.runstore import Run, chunk_nets_for, run_path


def claim_new_run(runs_dir: Path, run_id: str | None, preset: str) -> Path:
    """Create and claim the new run's directory (`core.owner`): `--id` if given, else a fresh default id.

    Creating the directory is the atomic step: of two commands that want one id, exactly one
    gets it and the other is refused (`--id`) or takes the next free id (default ids).
    """
    if run_id:
        path = run_path(runs_dir, run_id)
        claim_new(path)
        return path
    for _ in range(100):
        path = run_path(runs_dir, new_run_id(runs_dir, preset))
        try:
            claim_new(path)
            return path
        except StoreError:
            if not path.exists():
                raise
    raise StoreError(f"no free run id for preset {preset!r} in {runs_dir}")


def release(path: Path) -> None:
    """Let go of a run this process claimed; remove its directory if its store was never created."""
    claim = held(path)
    if claim is None:
        return
    claim.release()
    if not paths.meta_file(path).exists():  # set-up failed or was cancelled: leave nothing behind
        shutil.rmtree(path, ignore_errors=True)


def dataset_for(config: Config, runs_dir: Path, quiet: bool, stop=None, cluster: Cluster | None = None) -> str:
    """The config's dataset path, or the cached simulated one (simulated now if missing).

    A SIGTERM during the simulation stops it after the current chunk (Cancelled, no run is
    created; the next start continues the dataset from its completed chunks, core.dataset).
    """
    from core.dataset import dataset_path, ensure_dataset

    cluster = cluster or Cluster()
    if config.dataset:  # the user's: process 0 checks that it is there
        return cluster.on_main("train/dataset", lambda: str(dataset_path(config, runs_dir)))
    path = dataset_path(config, runs_dir)
    display = None
    if not quiet and cluster.is_main:
        from core.commands.display import SimulationProgress

        display = SimulationProgress()

    def progress(done, total):
        if stop is not None and stop.is_set():
            raise Cancelled("cancelled while simulating the dataset; no run was created "
                            "(its completed chunks are kept: the next start continues from them)")
        if display is not None:
            display(done, total)

    if display is None:
        return str(ensure_dataset(path, config.samples, config.data_seed, config.scale, progress=progress,
                                  cluster=cluster))
    with display:
        return str(ensure_dataset(path, config.samples, config.data_seed, config.scale, progress=progress,
                                  cluster=cluster))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="branch_from", default=None, metavar="RUN:LEVEL",
                        help="branch: start from a stored level of another run (its weights and masks as level 0), "
                             "with the parent's config under --preset/--config/--set")
    config_options(parser)
    runs_option(parser)
    parser.add_argument("--id", dest="run_id", default=None, help="run id (default: date, time and preset)")
    quiet_option(parser)
    distributed_options(parser, "initialise jax.distributed; each process trains its slice of the networks")
    parser.add_argument("--sweep", default=None, metavar="NAME", help="record the run as a member of this sweep")
    parser.add_argument("--queue", action="store_true",
                        help="put the run in the run store's queue instead of training it here (see `mothtui queue`)")
    parallel_option(parser)


def run(args) -> int:
    if getattr(args, "queue", False):  # queue it for the supervisor instead (core.queue)
        from core.commands.queue import enqueue_train

        return enqueue_train(args)
    with from_args(args) as cluster, stop_on_signals() as stop:  # SIGTERM in set-up cancels at the first chunk
        branch = None
        if getattr(args, "branch_from", None):
            runs_dir = resolve_runs(args)
            preset, config, branch = _branch(args, runs_dir, cluster)
        else:
            preset = args.preset or DEFAULT_PRESET
            config = resolve(preset, args.config, args.overrides)
            runs_dir = resolve_runs(args)
        net_slice = cluster.net_slice(config.nets)
        require_fit(config, net_slice.count, runs_dir)  # the memory check of `mothtui plan`, before anything is written
        path = Path(cluster.on_main("train/path", lambda: str(claim_new_run(runs_dir, args.run_id, preset))))
        try:
            return _train(args, cluster, stop, preset, config, runs_dir, net_slice, path, branch)
        finally:
            release(path)


def _branch(args, runs_dir: Path, cluster: Cluster):
    """(preset, config, branch) of `train --from RUN:LEVEL`: the parent and level checked, the branch's
    config resolved over the parent's (core.branch), and the `parent` attribute decided on process 0."""
    from core.branch import branch_config, open_parent, origin

    parent, level = open_parent(runs_dir, args.branch_from)
    config = branch_config(parent, level, args.preset, args.config, args.overrides)
    attr = cluster.on_main("train/origin", lambda: origin(parent, level, config).attr())
    preset = args.preset or parent.attrs.get("preset") or DEFAULT_PRESET
    return preset, config, {"parent": attr, "scaler": parent.attrs["scaler"]}


def _train(args, cluster: Cluster, stop, preset: str, config: Config, runs_dir: Path, net_slice, path: Path,
           branch: dict | None = None) -> int:
    """Dataset, data, store, levels: everything after process 0 has claimed the new run."""
    dataset = dataset_for(config, runs_dir, args.quiet, stop, cluster)
    scaler = branch["scaler"] if branch else None  # a branch's weights expect its parent's scaling
    data, engine = cluster.on_all("train/prepared", lambda: prepare_engine(config, dataset, net_slice, scaler=scaler))
    sizes = config.layer_sizes

    def create() -> str:
        extra = {"parent": branch["parent"]} if branch else {}
        Run.create(path, config, dataset=str(Path(dataset).resolve()), split=data.row_ranges,
                   scaler=data.scaler.to_dict(),
                   chunk_nets=chunk_nets_for(config.nets, max(a * b for a, b in zip(sizes, sizes[1:])),
                                             cluster.count),
                   extra_attrs={"preset": preset, "invalid_samples": data.invalid,
                                "train_rows": data.splits["train"].n, "processes": cluster.count,
                                "layout": engine.layout._asdict(), **extra,
                                **({"sweep": args.sweep} if getattr(args, "sweep", None) else {})},
                   sparsity=(branch["parent"]["sparsity"], *config.schedule) if branch else None)
        return uuid.uuid4().hex  # this attempt, told apart from earlier ones in the status files

    attempt = cluster.on_main("train/created", create)
    return execute(Run.open(path, "r+"), engine, quiet=args.quiet, stop=stop, sync=LevelSync(cluster, attempt))


def prepare_engine(config: Config, dataset: str, net_slice=None, scaler=None, layout: dict | None = None):
    """This process's prepared data and engine (every process reads the whole dataset, read-only).

    `layout`: the run's recorded `layout` attribute when it is continued (None: a new run, laid out
    for this machine), so a resume anywhere computes with the shapes of the levels before it."""
    from core.data import prepare
    from core.engine.loop import Engine, Layout

    data = prepare(dataset, config.splits, scaler=scaler)
    return data, Engine(config, data, net_slice=net_slice, layout=Layout.from_attrs(layout))


def execute(run_store: Run, engine, *, quiet: bool, stop, sync: LevelSync,
            resumed_from: int | None = None) -> int:
    """Run the level loop with the display; print the run id last (also when cancelled)."""
    from core.runlog import keep_output  # the run keeps its engine's output: <run>/engine.log

    with keep_output(run_store.path):
        return _execute(run_store, engine, quiet=quiet, stop=stop, resumed_from=resumed_from, sync=sync)


def _execute(run_store: Run, engine, *, quiet: bool, stop, sync: LevelSync, resumed_from: int | None = None) -> int:
    from core.engine.loop import run_levels

    sinks = []
    display = None
    if not quiet and sync.is_main:
        from core.commands.display import RichDisplay

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
                        f"resume with `{cmdline.resume_hint(run_store.run_id, run_store.path.parent)}`") from None
    print(run_store.run_id, flush=True)
    return 0
