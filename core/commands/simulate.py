"""`mothtui simulate`: random wing strokes into a dataset store, with a progress bar.

Progress (a Rich bar with rate and ETA) and the count of invalid samples go to stderr; the
path of the store is the last line of stdout, so scripts can capture it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from core.cli import distributed_options
from core.errors import MothError


def progress_bar(total: int, description: str = "simulating"):
    """A Rich progress bar on stderr (samples, rate, ETA) and a `progress(done, total)` callback."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    from core.formatting import fmt_rate

    class RateColumn(TextColumn):
        def render(self, task):  # samples per second (core.formatting, as everywhere), not Rich's bytes/s
            return fmt_rate(task.finished_speed or task.speed or None)

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), MofNCompleteColumn(),
                   RateColumn(""), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                   console=Console(stderr=True))
    task = bar.add_task(description, total=total)

    first = [True]

    def update(done: int, total_here: int) -> None:  # a distributed process counts its own share
        if first[0]:  # where it starts (a continued store: its completed rows); the rate counts from here
            first[0] = False
            bar.reset(task, completed=done, total=total_here)
            return
        bar.update(task, completed=done, total=total_here)

    return bar, update


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, required=True, help="number of wing strokes")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the sampling (default 0)")
    parser.add_argument("--scale", type=float, default=1.0, help="body scale s (default 1.0)")
    parser.add_argument("--out", type=Path, required=True, help="path of the new dataset store")
    parser.add_argument("--force", action="store_true", help="replace an existing store at --out")
    parser.add_argument("--chunk", type=int, default=None, help="samples per written chunk")
    parser.add_argument("--float64", action="store_true", help="integrate in float64 (slower)")
    distributed_options(parser, "initialise jax.distributed; each process simulates its slice")


def run(args: argparse.Namespace) -> int:
    """One flow for one process or many (`--distributed`): every process simulates its share."""
    from core.distributed import from_args

    if args.samples <= 0:
        raise MothError(f"--samples must be positive, got {args.samples}")
    if args.seed < 0:
        raise MothError(f"--seed must be non-negative, got {args.seed}")
    if args.chunk is not None and args.chunk <= 0:
        raise MothError(f"--chunk must be positive, got {args.chunk}")
    from core.sim.sampling import validate_scale
    validate_scale(args.scale)
    with from_args(args) as cluster:  # options, $MOTHTUI_* or the cluster scheduler's variables
        from core.dataset import create_dataset, open_dataset
        from core.sim import use_all_cpu_cores
        use_all_cpu_cores()
        cluster.on_main("simulate/checked", lambda: _check_out(args))
        bar, update = progress_bar(args.samples)
        with bar:
            path = create_dataset(args.out, samples=args.samples, seed=args.seed, scale=args.scale,
                                  force=args.force, chunk=args.chunk, progress=update,
                                  dtype=np.float64 if args.float64 else np.float32, cluster=cluster)
        dataset = open_dataset(path, require_complete=False)
        invalid = dataset.attrs.get("invalid")
        if invalid is not None:
            print(f"{invalid} of {args.samples} samples invalid (flagged valid=False)", file=sys.stderr)
        print(path)
        return 0


def _check_out(args: argparse.Namespace) -> None:
    """Refuse an --out we may not write, before the progress bar appears, naming the user's path."""
    if args.out.exists() and not args.force:
        raise MothError(f"{args.out} already exists (use --force to replace it)")
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MothError(f"cannot write a dataset at {args.out}: {err.strerror or err}") from None
    if not os.access(args.out.parent, os.W_OK):
        raise MothError(f"cannot write a dataset at {args.out}: {args.out.parent} is not writable")
