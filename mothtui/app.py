"""The Textual app: wiring of screens, global keys, and the engine jobs it supervises.

Jobs live here, not in a screen, because a screen's workers die with it and a run must outlive
every screen (and the app itself: the engine runs in its own session). Never imports jax: the
engine is `python -m core ...` in another process, and the runs list must show within a second.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from core.errors import MothError
from core.runlist import new_run_id
from core.settings import load_settings, save_theme
from mothtui import cmdline
from mothtui.cmdline import CommandLine
from mothtui.jobs import JobSupervisor, plan_command
from mothtui.notify import Notifier, RunEndWatcher
from mothtui.settings import apply_theme, unknown_keys
from mothtui.screens.dialogs import ConfirmDialog, HelpScreen, MessageDialog
from mothtui.screens.runs import RunsScreen

if TYPE_CHECKING:
    from mothtui.model import RunsModel

# The run, picker and new-run screens (plotext, selection, config) and everything that imports
# zarr or numpy are imported when first needed: the runs list must be on screen within a second
# of starting (core.runlist paints it from plain JSON first).

#: Seconds between looks for runs that ended (core.runlist: one zarr.json per run).
RUN_END_POLL_S = 2.0


class MothApp(App):
    """`mothtui [--runs DIR]`: browse, launch, watch, pick and export runs."""

    CSS_PATH = "app.tcss"
    TITLE = "mothtui"
    BINDINGS = [
        Binding("q", "quit", "quit", show=False, id="app.quit"),  # in the footer of the runs list only
        Binding("question_mark", "help", "help", id="app.help"),
        Binding("ctrl+p", "command_palette", "commands", show=False, id="app.palette"),
        Binding("Q", "queue", show=False, id="app.queue"),  # also "Queue" in the command palette
    ]

    def __init__(self, runs_dir: Path, *, clock: Callable[[], float] = time.time, settings=None,
                 plan_command: Callable[[Path, str, list[str]], list[str]] | None = plan_command):
        """`clock` gives "now" for durations of running runs (tests pin it for stable snapshots);
        `settings` (core.settings.Settings) default to the user's settings file; `plan_command` makes
        the command line of the new-run form's plan (`mothtui plan --json`; None: no plan line)."""
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.clock = clock
        self.plan_command = plan_command
        self.jobs = JobSupervisor(self.runs_dir)
        self._runs_model: RunsModel | None = None
        self.deleted: list[str] = []  # runs moved to the trash in this session, last one last (undo)
        self.pick_states: dict = {}  # run id -> mothtui.screens.picker.PickState, kept while the app runs
        self.settings = settings if settings is not None else load_settings()
        self.run_ends = RunEndWatcher(self.runs_dir, started=time.time())
        self.notifier = Notifier(self.settings, toast=self.notify, bell=self.bell, write=self.write_terminal)

    @property
    def runs_model(self):
        """The runs list's data (mothtui.model.RunsModel), created on first use (it imports zarr)."""
        if self._runs_model is None:
            from mothtui.model import RunsModel

            self._runs_model = RunsModel(self.runs_dir)
        return self._runs_model

    def on_mount(self) -> None:
        problems = list(self.settings.problems)
        problem = apply_theme(self, self.settings)
        if problem:
            problems.append(problem)
        if self.settings.keys:
            self.set_keymap(self.settings.keys)
            self.run_worker(self._check_keymap, thread=True, group="settings", exit_on_error=False)
        for line in problems:
            self.notify(line, title="settings", severity="warning", timeout=15)
        self.theme_changed_signal.subscribe(self, self._save_theme)
        self.push_screen(RunsScreen())
        self._poll_run_ends()  # the first look learns what is running
        self.set_interval(RUN_END_POLL_S, self._poll_run_ends)

    # ---- settings and notifications -------------------------------------------------------
    def _check_keymap(self) -> None:
        for line in unknown_keys(self.settings.keys, self.settings.path):
            self.call_from_thread(self.notify, line, title="settings", severity="warning", timeout=15)

    def _save_theme(self, theme) -> None:
        """The theme chosen in the command palette is kept in the settings file for the next start."""
        if theme.name == (self.settings.theme or "textual-dark"):
            return
        self.settings.theme = theme.name
        try:
            save_theme(theme.name, self.settings.path)
        except OSError as err:
            self.notify(f"theme not saved to {self.settings.path}: {err.strerror or err}",
                        title="settings", severity="warning")

    def _poll_run_ends(self) -> None:
        if self.notifier.enabled:
            self.run_worker(self._look_for_run_ends, thread=True, group="run-ends", exclusive=True,
                            exit_on_error=False)

    def _look_for_run_ends(self) -> None:
        for ended in self.run_ends.poll():
            self.call_from_thread(self.notifier.announce, ended)

    def write_terminal(self, text: str) -> None:
        """Raw bytes to the terminal (a desktop notification's escape sequence); nothing when headless."""
        if not self.is_headless and self._driver is not None:
            self._driver.write(text)

    # ---- navigation ---------------------------------------------------------------------
    def open_run(self, run_id: str) -> None:
        from mothtui.screens.run import RunScreen

        self.push_screen(RunScreen(run_id))

    def open_picker(self, run_id: str, export: bool = False) -> None:
        from mothtui.screens.picker import PickerScreen

        self.push_screen(PickerScreen(run_id, export=export))

    def open_log(self, run_id: str) -> None:
        from mothtui.screens.log import LogScreen

        self.push_screen(LogScreen(run_id))

    def edit_labels(self, run_id: str) -> None:
        """The tags-and-note dialog of a run; saved through core.runstore.Run.set_labels."""
        from mothtui.screens.labels import LabelsDialog

        self.push_screen(LabelsDialog(self.runs_dir, run_id))

    def open_compare(self, names: list[str]) -> None:
        """The comparison of runs and sweeps (a sweep's name stands for its runs)."""
        from mothtui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(names))

    def new_run(self) -> None:
        from mothtui.screens.new_run import NewRunScreen

        self.push_screen(NewRunScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette (ctrl+p): Textual's commands, the app's, and every action of the screen below
        that applies now (its keys, named as in the footer and in `?`), so `export` finds export."""
        builtin = list(super().get_system_commands(screen))
        yield from builtin
        titles = {c.title.lower() for c in builtin}
        for command in (SystemCommand("New run", "Open the new-run form (n on the runs list)", self.new_run),
                        SystemCommand("Help", "List every key of this screen (?)", self.action_help),
                        SystemCommand("Runs", "Back to the runs list", self._home),
                        SystemCommand("Queue", "The run queue: pause, resume, cancel, retry, reorder (Q)",
                                      self.action_queue),
                        *getattr(screen, "palette_commands", lambda: [])(),
                        *screen_commands(screen)):
            if command.title.lower() not in titles:
                titles.add(command.title.lower())
                yield command
        from core.sweep import list_sweeps  # standard library: the sweeps' records

        for record in list_sweeps(self.runs_dir):
            yield SystemCommand(f"Compare sweep {record.name}",
                                f"its {len(record.points)} runs side by side ({', '.join(record.keys)} swept)",
                                lambda name=record.name: self.compare_sweep(name))

    def compare_sweep(self, name: str) -> None:
        """The comparison of a sweep's runs that have a completed level (as `mothtui compare NAME`)."""
        from core.errors import MothError
        from core.sweep_study import expand_names

        try:
            expand_names(self.runs_dir, [name])
        except MothError as err:
            self.notify(str(err), title="compare", severity="warning")
            return
        self.open_compare([name])

    def action_queue(self) -> None:
        """The run queue (mothtui.screens.queue), unless it is already on top."""
        from mothtui.screens.queue import QueueScreen

        if not isinstance(self.screen, QueueScreen):
            self.push_screen(QueueScreen())

    def _home(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    # ---- jobs -----------------------------------------------------------------------------
    def launch_run(self, preset: str, overrides: list[str], run_id: str | None = None,
                   command: CommandLine | None = None) -> str:
        """Start `python -m core train` for a new run and show it in the runs list.

        `command` is the command line the new-run form showed (mothtui.cmdline): it runs as shown.
        """
        if run_id is None:
            run_id, command = new_run_id(self.runs_dir, preset), None
        command = command or cmdline.train(self.runs_dir, preset, overrides, run_id)
        self.run_worker(self._supervise(self.jobs.launch(run_id, command, "train")), name=f"job:{run_id}",
                        group="jobs", exit_on_error=False)
        self.pop_screen()
        self.notify(f"started {run_id}", title="new run")
        return run_id

    def resume_run(self, run_id: str) -> None:
        self.run_worker(self._supervise(self.jobs.resume(run_id)), name=f"job:{run_id}",
                        group="jobs", exit_on_error=False)
        self.notify(f"resuming {run_id}", title="resume")

    def start_step(self, run_id: str, kind: str, scales: str = "0.5,2") -> None:
        """Start `analyze` or `evaluate --scale scales` on a run as a supervised job (mothtui.jobs)."""
        async def starting():
            job = await (self.jobs.analyze(run_id) if kind == "analyze" else self.jobs.evaluate(run_id, scales))
            self.notify(f"{kind} {run_id} started: c cancels", title=kind)
            return job

        self.run_worker(self._supervise(starting()), name=f"job:{run_id}", group="jobs", exit_on_error=False)

    def start_report(self, run_id: str) -> None:
        """`mothtui report RUN --out <runs>/.reports/RUN` as a supervised job: the paper's figures."""
        from core.paths import report_dir

        out = report_dir(self.runs_dir, run_id)

        async def starting():
            job = await self.jobs.report(run_id, out)
            self.notify(f"drawing the figures of {run_id} into {out}", title="report")
            return job

        self.run_worker(self._supervise(starting()), name=f"job:{run_id}", group="jobs", exit_on_error=False)

    async def _supervise(self, starting) -> None:
        """Start a job, wait for it (so it is reaped), and report how it ended."""
        job = await starting
        code = await job.process.wait()
        if code == 0:
            if job.kind == "report":  # no run-end notification: say where the figures are
                from core.paths import report_dir

                self.notify(f"{job.run_id}: figures and index.md in {report_dir(self.runs_dir, job.run_id)}",
                            title="report", timeout=12)
            elif not self.notifier.enabled:  # otherwise the run-end notification says it (mothtui/notify.py)
                done = "engine finished" if job.kind in ("train", "resume") else f"{job.kind} finished"
                self.notify(f"{job.run_id}: {done}", title=job.kind)
        elif code in (-15, 130, 143):
            if not self.notifier.enabled:
                self.notify(f"{job.run_id}: cancelled", title=job.kind, severity="warning")
        else:
            self.push_screen(MessageDialog(f"{job.run_id}: engine exited with code {code}",
                                           f"{self.jobs.log_tail(job.run_id, 6)}\n\nlog: {job.log}"
                                           f"\n(l on the run shows its whole engine log)"))

    def cancel_run(self, run_id: str) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                try:
                    sent = self.jobs.cancel(run_id)
                except MothError as err:  # it runs on another host
                    self.notify(str(err), title="cancel", severity="warning")
                    return
                if sent:
                    self.notify(f"sent SIGTERM to {run_id}: it finishes its level and stops", title="cancel")
                else:
                    self.notify(f"{run_id} has no engine running", severity="warning")

        job = self.jobs.job(run_id)
        if job is not None and job.kind in ("analyze", "evaluate", "report"):  # a step, not the training
            question = (f"Cancel the {job.kind} of run {run_id}?\n"
                        f"What it computed so far is dropped; the run and its stored results stay.")
        else:
            question = f"Cancel run {run_id}?\nThe engine stops after a checkpoint; r resumes it later."
        self.push_screen(ConfirmDialog(question), answer)

    def delete_run(self, run_id: str) -> None:
        """Move a run to the trash after a confirmation; `u` brings it back (core.trash)."""
        from core.runlist import live_owner, run_path

        if live_owner(run_path(self.runs_dir, run_id)) is not None:
            self.notify(f"{run_id} is still running: cancel it first", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                from core.trash import delete_run

                try:
                    delete_run(self.runs_dir, run_id)
                except MothError as err:  # started meanwhile, or a permission problem
                    self.notify(str(err), title="delete", severity="error")
                    return
                self.deleted.append(run_id)
                self.notify(f"moved {run_id} to the trash: u undoes", title="delete")
                self._refresh_runs()

        self.push_screen(ConfirmDialog(f"Delete run {run_id}?\nIt goes to the trash ({self.runs_dir}/.trash): "
                                       f"u undoes, `mothtui restore {run_id}` brings it back later."), answer)

    def undo_delete(self) -> None:
        """Restore the run deleted last in this session."""
        if not self.deleted:
            self.notify("nothing to undo", severity="warning")
            return
        from core.trash import restore_run

        run_id = self.deleted.pop()
        try:
            restore_run(self.runs_dir, run_id)
        except MothError as err:
            self.notify(str(err), title="undo", severity="error")
            return
        self.notify(f"restored {run_id}", title="undo")
        self._refresh_runs()

    def _refresh_runs(self) -> None:
        if isinstance(self.screen, RunsScreen):
            self.screen.refresh_runs()

    # ---- errors -------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place where every worker's failure becomes a message, never a crash."""
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            if isinstance(err, MothError):
                self.notify(str(err), title="error", severity="error")
            else:
                self.push_screen(MessageDialog(f"{type(err).__name__} in {event.worker.name or 'a worker'}",
                                               str(err)))


def screen_commands(screen: Screen) -> list[SystemCommand]:
    """A palette command per enabled key of the screen (and its focused widget) that has a description."""
    from mothtui.screens.dialogs import key_label

    commands, seen = [], set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.description or not active.enabled or binding.action in ("quit", "help", "command_palette"):
            continue
        if (active.node, binding.action) in seen:
            continue
        seen.add((active.node, binding.action))
        keys = binding.key_display or key_label(key)
        where = type(screen).__name__.removesuffix("Screen").lower() or "this"
        commands.append(SystemCommand(binding.description[:1].upper() + binding.description[1:],
                                      f"key {keys} on the {where} screen",
                                      partial(screen.app.run_action, binding.action, active.node)))
    return commands


def run_app(runs_dir: Path, settings=None) -> int:
    """Run the UI on `runs_dir` until the user quits; the exit code of `mothtui`."""
    MothApp(Path(runs_dir), settings=settings).run()
    return 0
