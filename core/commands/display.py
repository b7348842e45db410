"""The console progress display of `train` and `resume`: a Rich progress bar fed by the engine's events.

A sink (callable taking one `core.events.Event`) like the events.jsonl writer. It keeps the run's
`RunProgress` with the same reducer the app uses, so the terminal shows what the run screen would:
level, step, median network loss, rate and ETA (formatted by `core.formatting`, as in the app).
Draws on stderr so stdout keeps only the run id. Part of the commands layer: the engine only emits.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from core.events import Event, LevelEnd, LevelStart, RunEnd, RunProgress, StepProgress, reduce
from core.formatting import fmt_duration, fmt_rate


def _loss(value: float | None) -> str:
    return "–" if value is None else f"{value:.2e}"


class RunElapsed(ProgressColumn):
    """The run's wall time since its first event (`elapsed 12m05s`), ticking between events.

    Not Rich's TimeElapsedColumn: that is the task's time and stops for good when the task first
    completes (the end of level 0), so the display froze at level 0's time for the rest of the run.
    """

    def __init__(self, display: "RichDisplay"):
        super().__init__()
        self.display = display

    def render(self, task) -> Text:
        started = self.display.state.started_t
        elapsed = None if started is None else self.display.clock() - started
        return Text(f"elapsed {fmt_duration(elapsed)}")


class RichDisplay:
    """Consumes events; use as a context manager around the run.

    The live bar shows the level, its target sparsity (`level 2/9 · sparsity 0.70`: a level's
    sparsity, not its progress, which the bar and the step count show), the step, loss, rate, ETA and
    the run's elapsed time. Each finished level leaves one line. The bar goes when the run ends, so
    nothing stale is left below `run done`; a cancelled or failed run prints nothing here, since the
    command's own last line (`mothtui: run … cancelled …`) says it once.
    """

    def __init__(self, levels: int, console: Console | None = None, clock=time.time):
        self.console = console or Console(file=sys.stderr)
        self.clock = clock
        self.bar = Progress(
            TextColumn("[bold]level {task.fields[level]}/{task.fields[levels]}[/]{task.fields[sparsity]}"),
            BarColumn(bar_width=12), TextColumn("{task.fields[info]}"), RunElapsed(self),
            console=self.console, transient=True,
            disable=not self.console.is_terminal,  # in a log file: the level lines only
        )
        self.levels = levels
        self.state = RunProgress()
        self.task: TaskID | None = None

    def __enter__(self) -> "RichDisplay":
        self.bar.start()
        self.task = self.bar.add_task("train", total=1, level=0, levels=self.levels,
                                      sparsity="", info="starting (compiling)…")
        return self

    def __exit__(self, *exc) -> None:
        self._drop_bar()
        self.bar.stop()

    def _drop_bar(self) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
            self.bar.refresh()

    def __call__(self, event: Event) -> None:
        self.state = s = reduce(self.state, event)
        if isinstance(event, RunEnd):
            self._drop_bar()
            if event.status == "done":
                self.console.print(f"run done: {s.message or ''}", soft_wrap=True)
            return
        if self.task is None:
            return
        if isinstance(event, LevelStart):
            self.bar.update(self.task, completed=0, total=event.max_steps, level=event.level,
                            sparsity=f" · sparsity {event.sparsity:.2f}", info="")
        elif isinstance(event, StepProgress):
            self.bar.update(
                self.task, completed=s.step,
                info=f"step {s.step:,}/{s.max_steps:,} · loss {_loss(s.loss_stats()[0])} · "
                     f"{s.active} active · {fmt_rate(s.samples_per_s)} · ETA {fmt_duration(s.eta_s)}")
        elif isinstance(event, LevelEnd):
            self.bar.update(self.task, completed=self.bar.tasks[0].total)
            self.console.print(
                f"level {event.level:>2} · {event.sparsity:>4.0%} pruned · val median "
                f"{_loss(event.median_loss('val'))} · early stop {event.stopped_early} · "
                f"diverged {event.diverged} · {event.seconds:.1f} s",
                soft_wrap=True)


class SimulationProgress:
    """The progress of simulating a dataset for `train`, drawn like the training display: on a terminal
    a Rich bar (strokes done, rate, elapsed, ETA), in a log file plain lines at most every
    `every_s` seconds (and the last one). A continued dataset says so first: "continuing from N".

    Callable as core.dataset's `progress(done, total)`, whose first call says where the simulation
    starts (0, or the rows of a continued store); use as a context manager around the simulation.
    """

    def __init__(self, console: Console | None = None, every_s: float = 5.0):
        self.console = console or Console(file=sys.stderr)
        self.every_s = every_s
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.started: float | None = None
        self.first_done = 0
        self.last_line: float | None = None

    def __enter__(self) -> "SimulationProgress":
        return self  # the bar appears with the first progress: nothing is drawn for a reused dataset

    def rate_eta(self, done: int, total: int) -> tuple[float | None, float | None]:
        """Strokes per second since this start (a continued store's rows not counted) and the time left."""
        assert self.started is not None  # asked by the bar, which the first progress call starts
        elapsed = time.monotonic() - self.started
        rate = (done - self.first_done) / elapsed if elapsed > 0 and done > self.first_done else None
        return rate, (0.0 if done >= total else (total - done) / rate if rate else None)

    def _start_bar(self, done: int, total: int) -> None:
        from rich.progress import MofNCompleteColumn, TaskProgressColumn

        display = self

        class RateColumn(ProgressColumn):  # strokes per second (core.formatting), as in the training display
            def render(self, task) -> Text:
                return Text(fmt_rate(display.rate_eta(task.completed, task.total)[0]))

        class EtaColumn(ProgressColumn):
            def render(self, task) -> Text:
                return Text(f"ETA {fmt_duration(display.rate_eta(task.completed, task.total)[1])}")

        self.bar = bar = Progress(TextColumn("simulating dataset"), BarColumn(), TaskProgressColumn(),
                                  MofNCompleteColumn(), RateColumn(), TimeElapsedColumn(), EtaColumn(),
                                  console=self.console, transient=False)
        bar.start()
        self.task = bar.add_task("simulate", total=total, completed=done)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, done: int, total: int) -> None:
        if self.started is None:  # where this start begins
            self.started, self.first_done = time.monotonic(), done
            if done:
                self.console.print(f"simulating dataset: continuing from {done:,}/{total:,} strokes "
                                   "(the completed chunks of an interrupted start)", soft_wrap=True)
            if self.console.is_terminal:
                self._start_bar(done, total)
            return
        if self.console.is_terminal:
            assert self.bar is not None and self.task is not None  # started by the first call
            self.bar.update(self.task, completed=done, total=total)
            return
        now = time.monotonic()
        if done < total and self.last_line is not None and now - self.last_line < self.every_s:
            return
        self.last_line = now
        rate, eta = self.rate_eta(done, total)
        self.console.print(f"simulating dataset: {done:,}/{total:,} ({done / max(total, 1):.0%}) · "
                           f"{fmt_rate(rate)} · ETA {fmt_duration(eta)}", soft_wrap=True)
