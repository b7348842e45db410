"""A run's logs (`l`): the whole file, followed as it grows, searchable; running or ended runs.

A run has up to two logs: `<run>/engine.log` (core/runlog.py: every run keeps its engine's
output, wherever it was started) and the app's job log `<runs>/.logs/<run_id>.log`, where the
output of what the app started goes, the analysis steps (`a` analyze, `s` evaluate) included.
The screen opens the one written last and `o` switches to the other. The file is read from where
the last read stopped, four times a second, complete lines only; a file that shrank (replaced) is
read again from the start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.highlighter import Highlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Log, Static

from core import paths
from mothtui.screens.dialogs import HELP_FIRST

if TYPE_CHECKING:
    from mothtui.app import MothApp

POLL_S = 0.25
#: A log bigger than this opens at its last part (the screen says so).
MAX_INITIAL_BYTES = 4_000_000


def log_files(runs_dir: Path, run_id: str) -> list[tuple[str, Path]]:
    """(name, path) of a run's logs: the engine's, and the app's job log (analyze, evaluate, launches)."""
    return [("engine log", paths.engine_log(paths.run_dir(runs_dir, run_id))),
            ("job log: analyze, evaluate, launch", paths.log_file(runs_dir, run_id))]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def log_file(runs_dir: Path, run_id: str) -> Path:
    """The log the screen opens with: the one written last (the engine's when neither exists)."""
    files = [path for _, path in log_files(runs_dir, run_id)]
    return max(files, key=lambda p: (_mtime(p), p == files[0]))


class TermHighlighter(Highlighter):
    """Highlights every occurrence of the search term (case-insensitive)."""

    def __init__(self) -> None:
        self.term = ""

    def highlight(self, text: Text) -> None:
        if self.term:
            text.highlight_words([self.term], "reverse bold", case_sensitive=False)


class SearchLog(Log):
    """Textual's Log with the search term highlighted."""

    def set_term(self, term: str) -> None:
        assert isinstance(self.highlighter, TermHighlighter)  # LogScreen.compose gives it one
        self.highlighter.term = term
        self._render_line_cache.clear()  # rendered lines carry the old highlight
        self.refresh()


class LogScreen(Screen):
    """The log of `run_id`: `f` follow, `/` search, `n`/`N` next/previous match, `g`/`G` top/end."""

    if TYPE_CHECKING:
        app: MothApp  # Textual types `self.app` as App

    BINDINGS = [
        HELP_FIRST,
        Binding("slash", "search", "search", id="log.search"),
        Binding("n", "match(1)", "next", id="log.next"),
        Binding("N", "match(-1)", "previous", id="log.previous"),
        Binding("f", "follow", "follow", id="log.follow"),
        Binding("o", "other", "other log", id="log.other"),
        Binding("g", "top", "top", show=False, id="log.top"),
        Binding("G", "end", "end", show=False, id="log.end"),
        Binding("escape", "back", "back", id="log.back"),
    ]

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id
        self.log_path: Path | None = None
        self.read_offset = 0
        self.partial = b""
        self.following = True
        self.term = ""
        self.hits: list[int] = []
        self.hit_index = -1
        self.note = ""
        self.skip_partial = False

    def compose(self) -> ComposeResult:
        yield Static(id="log-header", classes="screen-header")
        yield Input(placeholder="search the log; enter finds, esc closes", id="log-search")
        log = SearchLog(id="log-text", highlight=True, auto_scroll=True)
        log.highlighter = TermHighlighter()
        yield log
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#log-search").display = False
        self._open(log_file(self.app.runs_dir, self.run_id))
        self.set_interval(POLL_S, self.poll)
        self.query_one(SearchLog).focus()

    def _open(self, path: Path) -> None:
        """Show `path` from its start (or its last MAX_INITIAL_BYTES)."""
        self.log_path, self.read_offset, self.partial = path, 0, b""
        self.note, self.skip_partial, self.hits, self.hit_index = "", False, [], -1
        self.text_log.clear()
        try:
            size = self.log_path.stat().st_size
        except OSError:
            size = 0
        if size > MAX_INITIAL_BYTES:
            self.read_offset = size - MAX_INITIAL_BYTES
            self.note = f" · last {MAX_INITIAL_BYTES // 1_000_000} MB of {size / 1e6:.0f} MB"
            self.skip_partial = True  # the first line read is the tail of a line: dropped
        self.poll()

    def action_other(self) -> None:
        """Switch between the engine log and the job log (what analyze and evaluate wrote)."""
        files = [path for _, path in log_files(self.app.runs_dir, self.run_id)]
        self._open(files[(files.index(self.log_path) + 1) % len(files)] if self.log_path in files else files[0])

    @property
    def text_log(self) -> SearchLog:
        return self.query_one(SearchLog)

    # ---- following the file ------------------------------------------------------------------
    def poll(self) -> None:
        """Append the lines written since the last read."""
        assert self.log_path is not None  # opened on mount
        try:
            size = self.log_path.stat().st_size
            if size < self.read_offset:  # replaced or truncated: start again
                self.read_offset, self.partial = 0, b""
                self.text_log.clear()
            with open(self.log_path, "rb") as f:
                f.seek(self.read_offset)
                data = f.read()
        except OSError:
            data = b""
        if data:
            self.read_offset += len(data)
            data = self.partial + data
            end = data.rfind(b"\n")
            self.partial = data[end + 1:]
            if end >= 0:
                lines = data[: end + 1].decode("utf-8", errors="replace").splitlines()
                if self.skip_partial:
                    lines, self.skip_partial = lines[1:], False
                self.text_log.auto_scroll = self.following
                self.text_log.write_lines(lines)
                if self.term:
                    self._find_matches()
        self._show_header()

    def _show_header(self) -> None:
        exists = self.log_path is not None and self.log_path.exists()
        where = str(self.log_path) if exists else f"no log yet ({self.log_path})"
        state = "following" if self.following else "paused (f follows)"
        found = ""
        if self.term:
            found = (f" · '{self.term}' {self.hit_index + 1}/{len(self.hits)}" if self.hits
                     else f" · '{self.term}' not found")
        names = dict((path, name) for name, path in log_files(self.app.runs_dir, self.run_id))
        name = names.get(self.log_path, "log") if self.log_path is not None else "log"
        self.query_one("#log-header", Static).update(
            f"[b]{self.run_id}[/b] {name} · {self.text_log.line_count} lines · {state}{found}{self.note}"
            f"\n{where}")

    # ---- search --------------------------------------------------------------------------------
    def _find_matches(self) -> None:
        term = self.term.lower()
        self.hits = [i for i, line in enumerate(self.text_log.lines) if term in line.lower()]

    def action_search(self) -> None:
        field = self.query_one("#log-search", Input)
        field.display = True
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.term = event.value.strip()
        self.text_log.set_term(self.term)
        event.input.display = False
        self.text_log.focus()
        self.hit_index = -1
        if self.term:
            self._find_matches()
            self.following = False
            top = int(self.text_log.scroll_y)
            after = [i for i, line in enumerate(self.hits) if line >= top]
            self.hit_index = (after[0] if after else 0) - 1
            self.action_match(1)
        self._show_header()

    def action_match(self, step: int) -> None:
        if not self.hits:
            self._show_header()
            return
        self.following = False
        self.text_log.auto_scroll = False
        self.hit_index = (self.hit_index + step) % len(self.hits)
        line = self.hits[self.hit_index]
        self.text_log.scroll_to(y=max(0, line - self.text_log.size.height // 2), animate=False)
        self._show_header()

    # ---- moving ----------------------------------------------------------------------------------
    def action_follow(self) -> None:
        self.following = not self.following
        self.text_log.auto_scroll = self.following
        if self.following:
            self.text_log.scroll_end(animate=False)
        self._show_header()

    def action_top(self) -> None:
        self.hit_index = -1  # `n` then finds the first match
        self.following = False
        self.text_log.auto_scroll = False
        self.text_log.scroll_home(animate=False)
        self._show_header()

    def action_end(self) -> None:
        self.following = True
        self.text_log.auto_scroll = True
        self.text_log.scroll_end(animate=False)
        self._show_header()

    def action_back(self) -> None:
        field = self.query_one("#log-search", Input)
        if field.display:
            field.display = False
            self.text_log.focus()
            return
        self.app.pop_screen()
