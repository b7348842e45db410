"""The run queue (`Q`, or "Queue" in the command palette): what waits, runs and ended, and its keys.

The same queue as `mothtui queue` (core.queue: `<runs>/.queue/queue.json`, standard library), read
once a second by a thread worker. The keys do what the CLI's subcommands do: `p` pause (the running
engines are stopped, resumable), `r` resume (and start the supervisor if none runs), `x` cancel the
selected run, `R` retry a failed or cancelled one, `K`/`J` move a waiting run up or down. Each acts
in a worker (starting the supervisor can take a moment) and the list is read again after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from core import queue as q
from core.errors import MothError

if TYPE_CHECKING:
    from mothtui.app import MothApp

POLL_S = 1.0
COLUMNS = ("#", "run", "sweep", "state", "device", "started", "ended", "note")


class QueueTable(DataTable):
    BINDINGS = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False)]


class QueueScreen(Screen):
    """The queue of the app's run store."""

    if TYPE_CHECKING:
        app: MothApp  # Textual types `self.app` as App

    BINDINGS = [
        Binding("p", "pause", "pause", id="queue.pause"),
        Binding("r", "resume", "resume", id="queue.resume"),
        Binding("x", "cancel", "cancel run", id="queue.cancel"),
        Binding("R", "retry", "retry", id="queue.retry"),
        Binding("K", "move(-1)", "move up", id="queue.up"),
        Binding("J", "move(1)", "move down", id="queue.down"),
        Binding("escape", "back", "back", id="queue.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.state: q.QueueState | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="queue-head")
        yield QueueTable(id="queue-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(QueueTable).add_columns(*COLUMNS)
        self.refresh_queue()
        self.set_interval(POLL_S, self.refresh_queue)

    @work(thread=True, group="queue-poll", exclusive=True, exit_on_error=False)
    def refresh_queue(self) -> None:
        state = q.read_queue(self.app.runs_dir)
        owner = q.supervisor(self.app.runs_dir)
        self.app.call_from_thread(self._show, state, owner.pid if owner.alive else None)

    def _show(self, state: q.QueueState, supervisor_pid: int | None) -> None:
        self.state = state
        counts = " · ".join(f"{n} {s}" for s in q.STATES if (n := len(state.with_state(s))))
        head = f"queue of {self.app.runs_dir}" + (" · PAUSED" if state.paused else "")
        head += f" · {counts or 'empty'} · " + (f"supervisor pid {supervisor_pid}" if supervisor_pid
                                                 else "no supervisor running")
        self.query_one("#queue-head", Static).update(head)
        table = self.query_one(QueueTable)
        selected = self.selected()
        table.clear()
        place = 0
        for entry in state.entries:
            waiting = entry.state in ("queued", "paused")
            place += waiting
            table.add_row(str(place) if waiting else "", entry.run, entry.sweep or "–", entry.state,
                          entry.device or "–", (entry.started or "")[11:19], (entry.ended or "")[11:19],
                          entry.reason, key=entry.run)
        if selected is not None and state.find(selected) is not None:
            table.move_cursor(row=table.get_row_index(selected))

    def selected(self) -> str | None:
        table = self.query_one(QueueTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @work(thread=True, group="queue-act", exit_on_error=False)
    def act(self, what: str, *args) -> None:
        runs_dir = self.app.runs_dir
        try:
            if what == "pause":
                q.pause(runs_dir)
            elif what == "resume":
                q.resume(runs_dir)
            elif what == "cancel":
                q.cancel(runs_dir, list(args))
            elif what == "retry":
                q.retry(runs_dir, list(args))
            elif what == "move":
                q.move(runs_dir, *args)
        except MothError as err:
            self.app.call_from_thread(self.notify, str(err), title="queue", severity="warning")
        self.refresh_queue()

    def action_pause(self) -> None:
        self.act("pause")

    def action_resume(self) -> None:
        self.act("resume")

    def action_cancel(self) -> None:
        run_id = self.selected()
        if run_id:
            self.act("cancel", run_id)

    def action_retry(self) -> None:
        run_id = self.selected()
        if run_id:
            self.act("retry", run_id)

    def action_move(self, step: int) -> None:
        run_id = self.selected()
        if run_id is None or self.state is None:
            return
        waiting = [e.run for e in self.state.entries if e.state in ("queued", "paused")]
        if run_id in waiting:
            self.act("move", run_id, max(1, waiting.index(run_id) + 1 + step))

    def action_back(self) -> None:
        self.app.pop_screen()
