"""`mothtui resume RUN_ID [--runs DIR] [--quiet]`: continue a run from its last completed level.

Refuses a run that is done or whose engine is still alive. Re-reads the dataset with the run's
stored scaler and checks the row ranges still match, so the continued levels are bit-identical
to an uninterrupted run.
"""

from __future__ import annotations

from core.cli import resolve_runs
from core.errors import StoreError
from core.runstore import open_run


def run(args) -> int:
    if getattr(args, "distributed", False):  # several processes, one run: core/distributed.py
        from core.distributed import resume_command

        return resume_command(args)
    from core.commands.signals import stop_on_signals

    with stop_on_signals() as stop:
        run_store = open_run(resolve_runs(args), args.run_id, mode="r+")
        if run_store.engine_pid() is not None:
            raise StoreError(f"run {args.run_id!r} is still running (pid {run_store.engine_pid()})")
        if run_store.status == "done" and run_store.levels_complete >= run_store.levels:
            raise StoreError(f"run {args.run_id!r} is already done ({run_store.levels} levels)")
        if run_store.levels_complete:  # the level we continue from must be intact before we write anything
            run_store.level(run_store.levels_complete - 1)
        from core.commands.train import execute
        from core.data import prepare
        from core.engine.loop import Engine

        config = run_store.config
        data = prepare(run_store.attrs["dataset"], config.splits, scaler=run_store.attrs["scaler"])
        if data.split != run_store.split_lists():
            raise StoreError(f"run {args.run_id!r}: its dataset {run_store.attrs['dataset']} has changed "
                             f"(rows {data.split} instead of {run_store.split_lists()})")
        engine = Engine(config, data)
        return execute(run_store, engine, quiet=args.quiet, stop=stop, resumed_from=run_store.levels_complete)
