"""The tags-and-note dialog of a run (`t` on the runs screen): two fields, saved with enter.

Writes through `core.runstore.Run.set_labels`, the one writer of these attributes (the same as
`mothtui tag` / `mothtui note`); a bad tag is shown in the dialog and nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from core.errors import MothError


class LabelsDialog(ModalScreen[bool]):
    """Edit a run's tags (space-separated) and note; dismisses True when saved."""

    BINDINGS = [Binding("escape", "close", "cancel", id="labels.cancel")]

    def __init__(self, runs_dir: Path, run_id: str):
        super().__init__()
        self.runs_dir, self.run_id = Path(runs_dir), run_id

    def compose(self) -> ComposeResult:
        from core.runstore import open_run

        run = open_run(self.runs_dir, self.run_id)
        with Vertical(classes="dialog"):
            yield Static(f"[b]Tags and note of {self.run_id}[/b]")
            yield Static("tags (space-separated)")
            yield Input(" ".join(run.tags), id="labels-tags")
            yield Static("note")
            yield Input(run.note, id="labels-note")
            yield Static("", id="labels-error", classes="form-error")
            yield Static("enter save   tab next field   esc cancel", classes="dialog-keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from core.runstore import open_run

        tags = self.query_one("#labels-tags", Input).value.replace(",", " ").split()
        note = self.query_one("#labels-note", Input).value
        try:
            open_run(self.runs_dir, self.run_id).set_labels(tags=tags, note=note)
        except MothError as err:
            self.query_one("#labels-error", Static).update(str(err))
            return
        self.dismiss(True)

    def action_close(self) -> None:
        self.dismiss(False)
