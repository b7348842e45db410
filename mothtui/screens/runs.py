"""The home screen: every run of the store, live status, and the keys to open, start, resume, cancel.

The first paint comes straight from `core.runlist` (plain JSON); then, once a second, a thread
worker loads a `mothtui.model.RunsView` (rows with the chosen-sparsity and duration columns, and
the running runs' progress lines from their events) and posts it as `RunsScreen.RowsLoaded`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from core.formatting import fmt_bytes, fmt_duration
from core.runlist import RunSummary, list_runs, run_path, setup_labels
from core.sweep_status import sweep_statuses
from mothtui.clipboard import copy
from mothtui.fmt import fmt_created, fmt_store, status_label
from mothtui.runfilter import known_keys, matches, unknown_keys
from mothtui.screens.dialogs import HELP_FIRST

if TYPE_CHECKING:
    from textual.worker import Worker

    from mothtui.app import MothApp

# mothtui.model (numpy, zarr, core.runstore) is imported by the first worker, off the first
# paint's critical path: the first paint uses core.runlist and core.sweep_status (plain JSON, standard library only).

#: Most useful first: at 80 columns the last ones need a horizontal scroll (→ / End, ← / Home).
COLUMNS = ("run", "status", "nets", "setup", "levels", "chosen sparsity", "duration", "created", "disk", "tags")
#: Characters of the setup column (what differs between runs: core.runlist.setup_labels).
SETUP_WIDTH = 24
#: The mark of a run chosen for the comparison (space), in front of its id; not a status symbol.
MARK = "◆ "
SORT_KEYS = ("created", "run", "status", "nets")
#: A sweep's line in the table is keyed `.sweep/NAME`: run ids never start with "." (core.runlist.run_path).
SWEEP_ROW = ".sweep/"
#: In front of a sweep's runs, under its line.
MEMBER_INDENT = "  "
#: Seconds between re-reading the store (cheap: one zarr.json per run, cached loss medians).
POLL_S = 1.0


class FirstPaintRow:
    """A row of the first paint (core.runlist): what zarr.json says; chosen sparsity and duration follow."""

    chosen = "…"
    duration = "…"
    disk_bytes = None

    def __init__(self, summary):
        self.summary = summary
        self.run_id = summary.run_id


def launched_row(runs_dir, run_id: str) -> FirstPaintRow:
    """A run this app has just launched whose directory the engine has not claimed yet."""
    summary = RunSummary(run_id, run_path(runs_dir, run_id), "starting", None, None, None, None)
    row = FirstPaintRow(summary)
    row.chosen = row.duration = "–"
    return row


def _newest_first(row) -> tuple:
    """Sort key of `created`: a starting run has no creation time yet but is the newest; a damaged
    run without one sorts last."""
    created = row.summary.created or ("\uffff" if row.summary.status == "starting" else "")
    return (created, row.run_id)


class RunsTable(DataTable):
    BINDINGS = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False)]


class RunsScreen(Screen):
    """A table of runs; `enter` opens one. Damaged runs are rows that say why, never a crash."""

    if TYPE_CHECKING:
        app: MothApp  # Textual types `self.app` as App

    class RowsLoaded(Message):
        """A worker read the store: a `mothtui.model.RunsView`."""

        def __init__(self, view) -> None:
            super().__init__()
            self.view = view

    BINDINGS = [
        HELP_FIRST,
        Binding("enter", "open", "open", id="runs.open"),
        Binding("n", "new", "new", id="runs.new"),
        Binding("r", "resume", "resume", id="runs.resume"),
        Binding("c", "cancel", "cancel", id="runs.cancel"),
        Binding("d", "delete", "delete", id="runs.delete"),
        Binding("u", "undo_delete", "undo delete", show=False, id="runs.undo_delete"),
        Binding("space", "mark", "mark", id="runs.mark"),
        Binding("C", "compare", "compare", id="runs.compare"),
        Binding("slash", "filter", "filter", id="runs.filter"),
        Binding("s", "sort", "sort", show=False, id="runs.sort"),  # in ? help: the footer fits 80 columns
        Binding("l", "log", "log", id="runs.log"),
        Binding("t", "labels", "tags", show=False, id="runs.labels"),
        Binding("y", "copy_id", "copy id", show=False, id="runs.copy_id"),
        Binding("Y", "copy_path", "copy path", show=False, id="runs.copy_path"),
        Binding("escape", "clear_filter", "clear filter", show=False, id="runs.clear_filter"),
        # shown here only: the other screens' footers keep their room for `? help` at 80 columns
        Binding("q", "app.quit", "quit", id="runs.quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list = []  # RunRow (or a first-paint stand-in with the same fields)
        self.filter_text = ""
        self.sort_key = "created"
        self.live: tuple[str, ...] = ()  # progress lines of the running runs, from the last RunsView
        self._loader: Worker[None] | None = None
        self.marked: list[str] = []  # runs and sweeps marked with space for the comparison, in marking order
        self.sweeps: dict = {}  # sweep name -> core.sweep_status.SweepStatus, from the last RunsView
        self.collapsed: set[str] = set()  # sweeps whose runs are hidden under their line (enter toggles)

    @property
    def model(self):
        """The app's RunsModel (imports numpy and zarr: call from workers, or after the first one)."""
        return self.app.runs_model

    def compose(self) -> ComposeResult:
        yield Static(id="runs-header", classes="screen-header")
        yield Input(placeholder="filter: words, #tag, key=value, nets>100; enter keeps, esc clears", id="runs-filter")
        yield Static(id="runs-note", markup=False)
        table = RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static(id="runs-progress", classes="status-line")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs-filter").display = False
        self.query_one("#runs-note").display = False
        self.query_one(RunsTable).focus()
        # first paint straight away from zarr.json alone (the list must show within a second);
        # the authoritative rows and the chosen-sparsity column follow from a worker
        summaries = list_runs(self.app.runs_dir)
        self.sweeps = {s.name: s for s in sweep_statuses(self.app.runs_dir, summaries, now=self.app.clock())}
        self._show([FirstPaintRow(s) for s in summaries])
        self._loader = self.load_rows()
        self.set_interval(POLL_S, self.poll)

    # ---- data ---------------------------------------------------------------------------
    def poll(self) -> None:
        # a slow store (or a starved CPU) must not pile up readers: skip while one is still reading
        if self._loader is None or self._loader.is_finished:
            self._loader = self.load_rows()

    @work(thread=True, group="runs-poll", exit_on_error=False)
    def load_rows(self) -> None:
        """Re-read the store off the UI thread (zarr reads of a big run take a moment)."""
        self.post_message(self.RowsLoaded(self.model.view(now=self.app.clock())))

    def on_runs_screen_rows_loaded(self, message: RowsLoaded) -> None:
        self.live = message.view.live
        self.sweeps = {s.name: s for s in message.view.sweeps}
        self._show(list(message.view.rows))

    def refresh_runs(self) -> None:
        """Re-read now (after a delete), without waiting for the next poll."""
        self._loader = self.load_rows()

    def _show(self, rows: list) -> None:
        known = {r.run_id for r in rows}
        launched = [launched_row(self.app.runs_dir, rid) for rid in self.app.jobs.running() if rid not in known]
        self.rows = rows
        self.query_one("#runs-progress", Static).update("\n".join(self.live[:2]) or " ")
        visible = self._visible(rows + launched)
        setups = setup_labels([r.summary for r in rows])
        keys, cells = [], []
        for item in self._grouped(visible):
            if isinstance(item, tuple):  # a sweep's line and its visible runs
                status, members = item
                keys.append(SWEEP_ROW + status.name)
                cells.append(self._sweep_cells(status, members))
            else:
                keys.append(item.run_id)
                cells.append(self._cells(item, setups))
        self._fill_table(cells, keys)
        self._show_filter_note(rows, visible)
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.summary.status] = counts.get(r.summary.status, 0) + 1
        tally = " · ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no runs yet: n starts one"
        sizes = [r.disk_bytes for r in rows if r.disk_bytes is not None]
        if sizes:
            tally += f" · {fmt_bytes(sum(sizes))}"
        shown = f"filter '{escape(self.filter_text)}' · " if self.filter_text else ""
        if self.marked:
            shown += f"{len(self.marked)} marked (C compares) · "
        self.query_one("#runs-header", Static).update(
            f"[b]mothtui[/b]  {escape(fmt_store(self.app.runs_dir))}   {shown}sort {self.sort_key}   {tally}")
        self.refresh_bindings()

    def _grouped(self, visible: list) -> list:
        """The rows in table order: a sweep's runs follow its line, which stands where its first
        visible run would (as `mothtui runs` prints them); a collapsed sweep shows its line alone,
        unless a filter is typed (then the runs it matches show)."""
        members: dict[str, list] = {}
        for row in visible:
            if row.summary.sweep in self.sweeps:
                members.setdefault(row.summary.sweep, []).append(row)
        out: list = []
        placed: set[str] = set()
        for row in visible:
            name = row.summary.sweep
            if name not in members:
                out.append(row)
            elif name not in placed:
                placed.add(name)
                out.append((self.sweeps[name], members[name]))
                if name not in self.collapsed or self.filter_text:
                    out += members[name]
        return out

    def _sweep_cells(self, status, members: list) -> tuple:
        """A sweep's line: done/total in the status column, the swept keys in the setup column, its
        ETA in the duration column, what is running, queued or failed in the last; ▸ when its runs
        are hidden (enter shows them)."""
        shown = "▸" if status.name in self.collapsed and not self.filter_text else "▾"
        mark = MARK if self.sweep_key(status.name) in self.marked else " " * len(MARK)
        keys = ", ".join(status.keys)
        sizes = [r.disk_bytes for r in members if r.disk_bytes is not None]
        busy = " · ".join(f"{n} {what}" for n, what in ((status.running, "running"), (status.queued, "queued"),
                                                         (status.failed, "failed")) if n)
        eta = f"ETA {fmt_duration(status.eta_s)}" if status.eta_s is not None and status.done < status.total else "–"
        created = max((r.summary.created or "" for r in members), default="") or None
        return (f"{mark}{shown} sweep {status.name}", f"{status.done}/{status.total} done",
                str(sum(r.summary.nets or 0 for r in members)),
                keys if len(keys) <= SETUP_WIDTH else keys[: SETUP_WIDTH - 1] + "…", "–", "–", eta,
                fmt_created(created), fmt_bytes(sum(sizes)) if sizes else "…", busy)

    @staticmethod
    def sweep_key(name: str) -> str:
        return SWEEP_ROW + name

    def _cells(self, row, setups: dict[str, str]) -> tuple:
        s = row.summary
        levels = "–" if s.levels_complete is None else f"{s.levels_complete}/{s.levels}"
        setup = setups.get(s.run_id, "")
        setup = setup if len(setup) <= SETUP_WIDTH else setup[: SETUP_WIDTH - 1] + "…"
        mark = MARK if s.run_id in self.marked else " " * len(MARK)  # ids stay aligned, marked or not
        disk = fmt_bytes(row.disk_bytes) if row.disk_bytes is not None else ("–" if s.status == "starting" else "…")
        indent = MEMBER_INDENT if s.sweep in self.sweeps else ""
        return (mark + indent + s.run_id, status_label(s.status), "–" if s.nets is None else str(s.nets), setup, levels,
                row.chosen, row.duration, fmt_created(s.created), disk,
                " ".join((*s.tags, s.lineage) if s.parent else s.tags))

    def _fill_table(self, cells: list[tuple], keys: list[str]) -> None:
        """Put the rows in the table when they changed, with column widths measured again (a wide
        value that went away gives its room back) and the cursor and horizontal scroll kept."""
        if (cells, keys) == getattr(self, "_shown_cells", None):
            return
        self._shown_cells = (cells, keys)
        table = self.query_one(RunsTable)
        current, scroll_x = self.selected_key(), table.scroll_x
        table.clear(columns=True)
        table.add_columns(*COLUMNS)
        for key, row in zip(keys, cells):
            table.add_row(*row, key=key)
        if current is not None and current in table.rows:
            table.move_cursor(row=table.get_row_index(current))
        if scroll_x:
            def restore() -> None:
                table.scroll_to(x=scroll_x, animate=False, immediate=True)
            self.call_after_refresh(restore)

    def _show_filter_note(self, rows: list, visible: list) -> None:
        """Say why a filter shows nothing: a key no run has (with the keys there are), or no match."""
        note = self.query_one("#runs-note", Static)
        text = ""
        if self.filter_text:
            configs = [r.summary.config for r in rows]
            unknown = unknown_keys(self.filter_text, configs)
            if unknown:
                import difflib

                keys = known_keys(configs)
                near = [m for k in unknown  # keys that contain the typed one first (epoch: epochs_per_level)
                        for m in ([c for c in keys if k in c][:2] or difflib.get_close_matches(k, keys, n=2, cutoff=0.5))]
                hint = f" (did you mean {' or '.join(near)}?)" if near else ""
                text = (f"⚠ unknown key {', '.join(repr(k) for k in unknown)}: no run has it{hint}. "
                        f"Keys: {', '.join(keys)}")
            elif not visible and rows:
                text = f"no run matches '{self.filter_text}' (esc clears the filter)"
        elif not rows:
            text = (f"no runs in {fmt_store(self.app.runs_dir)} yet: n starts one "
                    f"(mothtui --runs DIR opens another run store)")
        note.update(text)
        note.display = bool(text)

    def _matches(self, summary) -> bool:
        """The filter (mothtui/runfilter.py): words, #tags, the note, config values (nets>100)."""
        return matches(self.filter_text, run_id=summary.run_id, status=summary.status, tags=summary.tags,
                       note=summary.note, config=summary.config)

    def _visible(self, rows: list) -> list:
        shown = [r for r in rows if self._matches(r.summary)]
        key = {"created": _newest_first,
               "run": lambda r: r.run_id, "status": lambda r: (r.summary.status, r.run_id),
               "nets": lambda r: (r.summary.nets or 0, r.run_id)}[self.sort_key]
        return sorted(shown, key=key, reverse=self.sort_key in ("created", "nets"))

    def action_copy_id(self) -> None:
        """`y`: the selected run's id to the clipboard (OSC 52, through tmux: mothtui.clipboard)."""
        if (run_id := self.selected_id()) is not None:
            copy(self.app, run_id, "run id")

    def action_copy_path(self) -> None:
        """`Y`: the selected run's directory to the clipboard."""
        if (run_id := self.selected_id()) is not None:
            copy(self.app, str(run_path(self.app.runs_dir, run_id).resolve()), "run path")

    def selected_key(self) -> str | None:
        """The key of the row under the cursor: a run id, or a sweep's line (`SWEEP_ROW` + name)."""
        table = self.query_one(RunsTable)
        if table.row_count == 0:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - the cursor sits on no row
            return None

    def selected_id(self) -> str | None:
        """The run under the cursor (None on a sweep's line)."""
        key = self.selected_key()
        return None if key is None or key.startswith(SWEEP_ROW) else key

    def selected_sweep(self) -> str | None:
        """The sweep whose line is under the cursor."""
        key = self.selected_key()
        return key[len(SWEEP_ROW):] if key and key.startswith(SWEEP_ROW) else None

    def selected_row(self):
        rid = self.selected_id()
        return next((r for r in self.rows if r.run_id == rid), None)

    def palette_commands(self) -> list:
        """The command palette's commands about the selected run that have no key here (the run
        screen's `p` and `e`), so typing `export` in the palette finds them from the runs list."""
        from textual.app import SystemCommand

        row = self.selected_row()
        if row is None or row.summary.damaged or not row.summary.levels_complete:
            return []
        rid = row.run_id
        return [SystemCommand(f"Export {rid}", "choose the networks and write them (e on the run screen)",
                              lambda: self.app.open_picker(rid, export=True)),
                SystemCommand(f"Pick levels of {rid}", "the picker: threshold, split, levels by hand (p on the run screen)",
                              lambda: self.app.open_picker(rid))]

    # ---- keys ---------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """The footer shows only what applies to the selected run."""
        row = self.selected_row()
        status = row.summary.status if row else None
        if action in ("open", "mark") and self.selected_sweep() is not None:
            return True
        if action == "open":
            return row is not None and not row.summary.damaged
        if action == "resume":
            return status in ("interrupted", "cancelled", "failed")
        if action == "cancel":
            return status == "running"
        if action == "delete":
            return row is not None and status != "running"
        if action in ("log", "labels"):
            return row is not None and not (action == "labels" and row.summary.damaged)
        if action == "compare":
            return bool(self.marked) or self.selected_sweep() is not None
        return True

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        if (sweep := self.selected_sweep()) is not None:  # a sweep's line: show or hide its runs
            self.collapsed ^= {sweep}
            self._show(self.rows)
            return
        row = self.selected_row()
        if row is None:
            return
        if row.summary.damaged:
            self.notify(f"{row.run_id} is damaged: {row.summary.damaged}", severity="warning")
            return
        if row.summary.status == "starting":
            self.notify(f"{row.run_id} is starting (simulating data / compiling): it opens once its "
                        f"store is written; l shows its log now", severity="warning")
            return
        self.app.open_run(row.run_id)

    def action_new(self) -> None:
        self.app.new_run()

    def action_resume(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.app.resume_run(row.run_id)

    def action_cancel(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.app.cancel_run(row.run_id)

    def action_delete(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.app.delete_run(row.run_id)

    def action_mark(self) -> None:
        """Mark or unmark the selected run, or a sweep's line (the whole sweep), for the comparison
        (`C`), and move down as lazygit does."""
        key = self.selected_key()
        row = self.selected_row()
        if key is None or (row is not None and row.summary.damaged):
            return
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.append(key)
        self._show(self.rows)
        self.query_one(RunsTable).action_cursor_down()

    def action_compare(self) -> None:
        """Compare the marked runs and sweeps (with the selected row when only one is marked); a
        sweep's line alone compares its runs (and plots the chosen sparsity against its keys)."""
        keys = list(self.marked)
        current = self.selected_key()
        if len(keys) <= 1 and current and current not in keys:
            keys.append(current)
        names = [k[len(SWEEP_ROW):] if k.startswith(SWEEP_ROW) else k for k in keys]
        if len(names) < 2 and not any(k.startswith(SWEEP_ROW) for k in keys):
            self.notify("mark two or more runs (or a sweep's line) with space, then C compares them",
                        severity="warning")
            return
        self.app.open_compare(names)

    def action_undo_delete(self) -> None:
        self.app.undo_delete()

    def action_log(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.app.open_log(row.run_id)

    def action_labels(self) -> None:
        row = self.selected_row()
        if row is not None and not row.summary.damaged:
            self.app.edit_labels(row.run_id)

    def action_sort(self) -> None:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self._show(self.rows)

    def action_filter(self) -> None:
        field = self.query_one("#runs-filter", Input)
        field.display = True
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#runs-filter", Input)
        field.value = ""
        field.display = False
        self.filter_text = ""
        self._show(self.rows)
        self.query_one(RunsTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "runs-filter":
            self.filter_text = event.value.strip()
            self._show(self.rows)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "runs-filter":
            if not event.value.strip():
                event.input.display = False
            self.query_one(RunsTable).focus()
