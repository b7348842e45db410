"""The headless progress display: a Rich progress bar fed by the engine's event records.

A sink (callable taking one event record) like the events.jsonl writer, so the terminal shows
exactly what the UI would: level, step, median network loss, rate and ETA. Draws on stderr so
stdout keeps only the run id. No JAX here.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class RichDisplay:
    """Consumes events; use as a context manager around the run."""

    def __init__(self, levels: int, console: Console | None = None):
        self.console = console or Console(file=sys.stderr)
        self.progress = Progress(
            TextColumn("[bold]level {task.fields[level]}/{task.fields[levels]}[/] {task.fields[sparsity]}"),
            BarColumn(bar_width=12), TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
            console=self.console, transient=False,
            disable=not self.console.is_terminal,  # in a log file: the level lines only
        )
        self.levels = levels
        self.task = None

    def __enter__(self) -> "RichDisplay":
        self.progress.start()
        self.task = self.progress.add_task("train", total=1, level=0, levels=self.levels,
                                           sparsity="", info="starting (compiling)…")
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def __call__(self, record: dict[str, Any]) -> None:
        kind = record.get("event")
        if kind == "level_start":
            self.progress.update(self.task, completed=0, total=record["max_steps"], level=record["level"],
                                 sparsity=f"{record['sparsity']:.0%}", info="")
        elif kind == "progress":
            losses = np.array([v for v in record["loss"] if v is not None], float)
            median = f"{np.median(losses):.2e}" if losses.size else "–"
            self.progress.update(
                self.task, completed=record["step"],
                info=f"step {record['step']:,}/{record['max_steps']:,} · loss {median} · "
                     f"{record['active']} active · {record['samples_per_s'] / 1e3:,.0f}k samples/s · "
                     f"ETA {_fmt_eta(record['eta_s'])}")
        elif kind == "level_end":
            val = np.array([v if v is not None else np.nan for v in record["loss"]["val"]], float)
            self.progress.update(self.task, completed=self.progress.tasks[0].total)
            median = np.nanmedian(val) if np.isfinite(val).any() else float("nan")
            self.console.print(
                f"level {record['level']:>2} · {record['sparsity']:>4.0%} pruned · val median {median:.2e} · "
                f"early stop {record['stopped_early']} · diverged {record['diverged']} · {record['seconds']:.1f} s",
                soft_wrap=True)
        elif kind == "run_end":
            self.console.print(f"run {record['status']}: {record.get('message', '')}", soft_wrap=True)
