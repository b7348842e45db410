"""The export dialog: where to write, what will be written, then `core.export.export_run`.

Writing runs in a thread worker (a 400-network export reads hundreds of MB) that posts how it
went as a message: `Written` with the manifest, or `Failed` with a `MothError` (a non-empty
directory, nothing passing), shown in the dialog, one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from core import paths
from core.errors import MothError
from core.formatting import fmt_threshold
from core.runstore import open_run
from mothtui.clipboard import copy

if TYPE_CHECKING:
    from mothtui.app import MothApp


def default_export_dir(runs_dir: Path, run_id: str, threshold: float, split: str) -> Path:
    """`<runs>/../exports/<run>_<threshold>_<split>`: beside the store, named by what was picked."""
    return paths.export_dir(runs_dir, run_id, fmt_threshold(threshold), split)


def fresh_export_dir(path: Path) -> Path:
    """`path` if an export can go there (absent, or an empty directory), else `path-2`, `path-3`, ...:
    a second export of the same pick is offered a new directory, not the one that would be refused."""
    candidate, n = Path(path), 1
    while candidate.exists() and not (candidate.is_dir() and not any(candidate.iterdir())):
        n += 1
        candidate = Path(f"{path}-{n}")
    return candidate


def in_app_terms(message: str) -> str:
    """A core error as the dialog words it: the directory field, not the CLI's `--out` flag."""
    return message.replace("--out ", "the directory ", 1) if message.startswith("--out ") else message


class ExportDialog(ModalScreen[dict | None]):
    """Type or accept a directory, `enter` writes; dismisses with the manifest (None if cancelled)."""

    if TYPE_CHECKING:
        app: MothApp  # Textual types `self.app` as App

    BINDINGS = [Binding("escape", "cancel", "cancel", id="export.cancel")]

    class Written(Message):
        """The export is on disk: its directory and manifest."""

        def __init__(self, out: Path, manifest: dict) -> None:
            super().__init__()
            self.out, self.manifest = out, manifest

    class Failed(Message):
        """The export was refused or failed, with the one-line reason; `--out` is left as it was."""

        def __init__(self, error: MothError) -> None:
            super().__init__()
            self.error = error

    def __init__(self, run_id: str, threshold: float, split: str, overrides: dict[int, int],
                 nets: list[int] | None, summary: str):
        super().__init__()
        self.run_id, self.threshold, self.split = run_id, threshold, split
        self.overrides, self.nets, self.summary = dict(overrides), nets, summary

    def compose(self) -> ComposeResult:
        out = fresh_export_dir(default_export_dir(self.app.runs_dir, self.run_id, self.threshold, self.split))
        with Vertical(classes="dialog export"):
            yield Static(f"[b]Export[/b] {self.run_id}", markup=True)
            yield Static(self.summary, markup=False, id="export-summary")
            yield Static("into directory (new or empty):")
            yield Input(str(out), id="export-dir")
            yield Static("", id="export-result", markup=False)
            yield Static("enter write   esc cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#export-dir", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.query_one("#export-result", Static).update("writing…")
            self.write(Path(event.value.strip()).expanduser())

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def write(self, out: Path) -> None:
        from core.export import export_run  # numpy + zarr only; loaded when first needed

        try:
            run = open_run(self.app.runs_dir, self.run_id)
            manifest = export_run(run, out, threshold=self.threshold, split=self.split,
                                  nets=self.nets, overrides=self.overrides)
        except MothError as err:
            self.post_message(self.Failed(err))
            return
        self.post_message(self.Written(out, manifest))

    def on_export_dialog_failed(self, message: Failed) -> None:
        self.query_one("#export-result", Static).update(f"⚠ {in_app_terms(str(message.error))}")

    def on_export_dialog_written(self, message: Written) -> None:
        self.app.notify(f"exported {len(message.manifest['networks'])} networks to {message.out}", title="export")
        copy(self.app, str(Path(message.out).resolve()), "export folder")  # to paste into scp/rsync over SSH
        self.dismiss(message.manifest)

    def action_cancel(self) -> None:
        self.dismiss(None)
