"""`mothtui resume RUN_ID [--runs DIR] [--quiet] [--distributed ...]`: continue a run from its last complete level.

Refuses a run that is done or whose engine is still alive, and checks that the level it
continues from is intact before anything is written. Re-reads the dataset with the run's stored
scaler and checks the row ranges still match, so the continued levels are bit-identical to an
uninterrupted run.

One flow for one process and for many: process 0 checks the run once (and first advances
`levels_complete` from the slice markers an interrupted distributed job left; a single process
finds none); every process then starts from that level on its slice of the networks.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

from core.cli import distributed_options, quiet_option, resolve_runs, run_id_argument, runs_option
from core.commands.signals import stop_on_signals
from core.commands.train import execute, prepare_engine
from core.distributed import LevelSync, advance, check_alignment, from_args
from core.errors import StoreError
from core.owner import claim, held
from core.runlist import no_run, run_path
from core.runstore import open_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_id_argument(parser)
    runs_option(parser)
    quiet_option(parser)
    distributed_options(parser, "resume a distributed run")


def run(args) -> int:
    with from_args(args) as cluster, stop_on_signals() as stop:
        runs_dir = resolve_runs(args)

        def check() -> dict[str, Any]:
            path = run_path(runs_dir, args.run_id)
            if not path.is_dir():
                raise no_run(runs_dir, args.run_id)
            claim(path)  # before anything else: a second resume (here or elsewhere) is refused, named
            run_store = open_run(runs_dir, args.run_id, mode="r+")
            check_alignment(run_store, cluster)
            start = advance(run_store)
            if run_store.status == "done" and start >= run_store.levels:
                raise StoreError(f"run {args.run_id!r} is already done ({run_store.levels} levels)")
            if start:  # the level we continue from must be intact before we write anything
                run_store.level(start - 1)
            return {"attempt": uuid.uuid4().hex, "start": start}

        try:
            return _resume(args, cluster, stop, runs_dir, cluster.on_main("resume/checked", check))
        finally:
            mine = held(runs_dir / args.run_id)
            if mine is not None:
                mine.release()


def _resume(args, cluster, stop, runs_dir, info: dict[str, Any]) -> int:
    """Every process: prepare its slice and continue the levels from `info["start"]`."""
    run_store = open_run(runs_dir, args.run_id, mode="r+")
    config = run_store.config

    def ready():
        data, engine = prepare_engine(config, run_store.attrs["dataset"], cluster.net_slice(config.nets),
                                      scaler=run_store.attrs["scaler"], layout=run_store.attrs.get("layout"))
        stored = {name: list(rows) for name, rows in run_store.row_ranges.items()}
        if data.row_ranges != stored:
            raise StoreError(f"run {args.run_id!r}: its dataset {run_store.attrs['dataset']} has changed "
                             f"(rows {data.row_ranges} instead of {stored})")
        return engine

    engine = cluster.on_all("resume/prepared", ready)
    saved = run_store.checkpoint(engine.net_slice.slice)
    if saved is not None and cluster.is_main:  # said even with --quiet: what resume does with the level
        print(f"continuing level {saved.level} from step {saved.step:,}", file=sys.stderr, flush=True)
    return execute(run_store, engine, quiet=args.quiet, stop=stop, resumed_from=info["start"],
                   sync=LevelSync(cluster, info["attempt"]))
