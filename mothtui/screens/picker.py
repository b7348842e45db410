"""The picker: a threshold and a split, each network's chosen level, overrides by hand, export.

The rule is `core.select.select` (the same as `mothtui select`), so what the picker shows is what
the command line would pick; overrides (left/right on a network) are passed to it and to the
export, marked `*` in the table and in the network's own plot. Under the plot, the histogram of
chosen sparsity over the ensemble (the paper's main figure, `core.select.histogram_lines`, the
same drawing as `mothtui select`) follows the threshold, the split and the overrides. The losses come in a
`mothtui.model.PickerView`, loaded by a thread worker and posted as `PickerScreen.Loaded` (on
opening, and again whenever a level completes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from core.errors import MothError
from core.formatting import fmt_loss, fmt_threshold
from core.runstore import run_path, summarize
from core.select import SPLITS, Selection, check_threshold, histogram_lines, select
from mothtui.model import PickerView, load_picker_view
from mothtui.screens.dialogs import HELP_FIRST
from mothtui.screens.export import ExportDialog
from mothtui.widgets.plots import NetworkPlot

if TYPE_CHECKING:
    from mothtui.app import MothApp

#: Threshold steps with +/-: 1, 2, 5 per decade, the values people actually try.
LADDER = (1.0, 2.0, 5.0)
STORE_POLL_S = 1.0
#: Longest bar of the picker's chosen-sparsity histogram (characters).
HISTOGRAM_WIDTH = 10


def step_threshold(value: float, direction: int) -> float:
    """The next value of the 1-2-5 ladder above (direction +1) or below (-1) `value`."""
    exponent = math.floor(math.log10(value))
    candidates = sorted(m * 10.0 ** e for e in (exponent - 1, exponent, exponent + 1) for m in LADDER)
    if direction > 0:
        return next(c for c in candidates if c > value * (1 + 1e-9))
    return next(c for c in reversed(candidates) if c < value * (1 - 1e-9))


@dataclass
class PickState:
    """What the user chose in a run's picker: kept by the app per run while it runs, so leaving the
    picker (esc) and coming back (p) finds the threshold, split and overrides as they were."""

    threshold: float
    split: str = "val"
    overrides: dict[int, int] = field(default_factory=dict)
    excluded: set[int] = field(default_factory=set)


class ChoiceTable(DataTable):
    """The networks; left/right change the highlighted network's level (the screen's actions)."""

    BINDINGS = [
        HELP_FIRST,
        Binding("left,h", "screen.level(-1)", "level", key_display="←/→", id="picker.level_down"),
        Binding("right,l", "screen.level(1)", "level", key_display="←/→", show=False, id="picker.level_up"),
        Binding("j", "cursor_down", show=False),
        Binding("k", "cursor_up", show=False),
    ]


class PickerScreen(Screen):
    """Pick the sparse network of each member of run `run_id`."""

    if TYPE_CHECKING:
        app: MothApp  # Textual types `self.app` as App

    class Loaded(Message):
        """A worker read the run's losses: a `PickerView`."""

        def __init__(self, view: PickerView) -> None:
            super().__init__()
            self.view = view

    BINDINGS = [
        Binding("plus,equals_sign", "threshold(1)", "threshold", key_display="+/-", id="picker.threshold_up"),
        Binding("minus", "threshold(-1)", "threshold", show=False, id="picker.threshold_down"),
        Binding("i", "edit_threshold", "type threshold", show=False, id="picker.edit_threshold"),
        Binding("t", "toggle_split", "split", id="picker.split"),
        Binding("u", "clear_override", "undo override", show=False, id="picker.clear_override"),
        Binding("R", "reset", "reset to the run's threshold", show=False, id="picker.reset"),
        Binding("space", "toggle_include", "select for export", show=False, id="picker.select"),
        Binding("a", "include_all", "all passing", show=False, id="picker.all"),
        Binding("x,e", "export", "export", id="picker.export"),
        Binding("escape", "back", "back", id="picker.back"),
    ]

    def __init__(self, run_id: str, *, export: bool = False):
        super().__init__()
        self.run_id = run_id
        self.open_export = export
        self.split = "val"
        self.threshold = 1e-3
        self.overrides: dict[int, int] = {}
        self.excluded: set[int] = set()
        self.losses: dict[str, np.ndarray] = {}
        self.sparsity = np.zeros(0)
        self.selection: Selection | None = None
        self.state: tuple | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="picker-bar"):
            yield Label("threshold", classes="bar-label")
            yield Input(id="picker-threshold", classes="threshold", compact=True)
            yield Static(id="picker-summary")
        with Horizontal(id="picker-main"):
            yield ChoiceTable(id="picker-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="picker-side"):
                yield NetworkPlot(id="picker-plot")
                yield Static(id="picker-histogram")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ChoiceTable).focus()
        self.load()
        self.set_interval(STORE_POLL_S, self._poll)

    @work(thread=True, exclusive=True, group="picker-load", exit_on_error=False)
    def load(self) -> None:
        self.post_message(self.Loaded(load_picker_view(self.app.runs_dir, self.run_id)))

    @property
    def kept(self) -> dict[str, PickState]:
        """The app's picker states per run (a bare App in a test has none: start one)."""
        if not hasattr(self.app, "pick_states"):
            self.app.pick_states = {}
        return self.app.pick_states

    def _remember(self) -> None:
        state = self.kept.setdefault(self.run_id, PickState(self.threshold))
        state.threshold, state.split = self.threshold, self.split
        state.overrides, state.excluded = dict(self.overrides), set(self.excluded)

    def on_unmount(self) -> None:
        if self.state is not None:  # loaded: what is on screen is the user's choice
            self._remember()

    def on_picker_screen_loaded(self, message: Loaded) -> None:
        view, first = message.view, self.state is None
        if first:
            kept = self.kept.get(self.run_id)
            if kept is None:
                self.set_threshold(view.threshold, update=False)
            else:  # as the user left it (esc), in this session
                self.split, self.overrides, self.excluded = kept.split, dict(kept.overrides), set(kept.excluded)
                self.set_threshold(kept.threshold, update=False)
                if kept.threshold != view.threshold or kept.overrides:
                    self.notify(f"as you left it: threshold {fmt_threshold(kept.threshold)}, "
                                f"{len(kept.overrides)} by hand (R resets to the run's threshold)",
                                title="picker")
            self.run_threshold = view.threshold
        self.state = (view.status, view.levels_complete)
        self.sparsity = view.sparsity
        self.losses = view.losses
        self.nets = view.nets
        self.overrides = {n: lv for n, lv in self.overrides.items() if lv < view.levels_complete}
        self.update_selection()
        if first and self.open_export:
            self.call_after_refresh(self.action_export)

    def _poll(self) -> None:
        s = summarize(run_path(self.app.runs_dir, self.run_id))
        if self.state is not None and (s.status, s.levels_complete) != self.state and not s.damaged:
            self.load()

    # ---- selection ----------------------------------------------------------------------------
    def update_selection(self) -> None:
        if not self.losses:  # not loaded yet
            return
        self.selection = select(self.losses[self.split], self.sparsity, self.threshold, self.overrides,
                                split=self.split, run=self.run_id)
        table = self.query_one(ChoiceTable)
        row = table.cursor_row if table.row_count else 0
        table.clear(columns=True)
        other = "test" if self.split != "test" else "val"
        table.add_columns("net", "level", "sparsity", f"{self.split} loss", f"{other} loss", "export")
        for c in self.selection.choices:
            level = "–" if c.level is None else f"{c.level}{'*' if c.manual else ''}"
            shown = c.level if c.level is not None else self._best_level(c.network)
            loss_here = self.losses[self.split][shown, c.network] if shown is not None else None
            loss_other = self.losses[other][shown, c.network] if shown is not None else None
            export = "✓" if c.level is not None and c.network not in self.excluded else ""
            if export and self.above_threshold(c):
                export = "✓ ⚠ above"  # chosen by hand at a level whose loss fails the threshold
            table.add_row(str(c.network), level,
                          "–" if c.sparsity is None else f"{c.sparsity:.2f}",
                          fmt_loss(loss_here), fmt_loss(loss_other), export, key=str(c.network))
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))
        self._summary()
        self._histogram()
        self._plot_network()

    def above_threshold(self, choice) -> bool:
        """A level chosen by hand whose loss on the split is above the threshold (or not finite)."""
        return choice.manual and choice.level is not None and not (
            choice.loss is not None and math.isfinite(choice.loss) and choice.loss <= self.threshold)

    def _best_level(self, network: int) -> int | None:
        """For a network that passes nowhere: the level of its lowest loss (what the table shows)."""
        column = self.losses[self.split][:, network]
        return int(np.nanargmin(column)) if np.isfinite(column).any() else None

    def _summary(self) -> None:
        sel = self.selection
        assert sel is not None  # shown by update_selection, once it has made one
        median = sel.median_sparsity
        exported = len(self.export_nets())
        manual = sum(c.manual for c in sel.choices)
        above = sum(self.above_threshold(c) for c in sel.choices)
        warn = f" ([b]⚠ {above} above threshold[/b])" if above else ""
        text = (f"split [b]{self.split}[/b] (t) · {sel.passing}/{len(sel.choices)} networks chosen"
                f" · median sparsity {'–' if median is None else f'{median:.2f}'}"
                f" · {manual} by hand{warn} · {exported} to export · {self.run_id}")
        self.query_one("#picker-summary", Static).update(text)

    def _histogram(self) -> None:
        """Chosen sparsity over the ensemble: one bar per level someone was chosen at, and none."""
        assert self.selection is not None  # shown by update_selection, once it has made one
        lines = histogram_lines(self.selection.histogram(), HISTOGRAM_WIDTH, skip_empty=True)
        self.query_one("#picker-histogram", Static).update(
            "[b]chosen sparsity[/b]\n" + "\n".join(lines), layout=True)

    def highlighted(self) -> int | None:
        table = self.query_one(ChoiceTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        assert key is not None  # every row is added with its network as its key
        return int(key)

    def _plot_network(self) -> None:
        net = self.highlighted()
        if net is None or self.selection is None:
            return
        c = self.selection.choices[net]
        self.query_one(NetworkPlot).set_data(self.sparsity, self.losses[self.split][:, net], net, c.level,
                                             c.manual, self.threshold)

    def export_nets(self) -> list[int]:
        if self.selection is None:
            return []
        return [c.network for c in self.selection.chosen if c.network not in self.excluded]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._plot_network()

    # ---- keys ------------------------------------------------------------------------------------
    def set_threshold(self, value: float, *, update: bool = True) -> None:
        self.threshold = value
        self.query_one("#picker-threshold", Input).value = fmt_threshold(value)
        if update:
            self.update_selection()

    def action_threshold(self, direction: int) -> None:
        self.set_threshold(step_threshold(self.threshold, direction))

    def action_edit_threshold(self) -> None:
        self.query_one("#picker-threshold", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            self.set_threshold(check_threshold(event.value))
        except MothError as err:
            # the field shows the threshold in use again, never a value that is not applied
            self.notify(f"{err}; the threshold stays {fmt_threshold(self.threshold)}", severity="error")
            event.input.value = fmt_threshold(self.threshold)
            return
        self.query_one(ChoiceTable).focus()

    def action_reset(self) -> None:
        """Back to the run's configured threshold, the val split, no level by hand, all exported."""
        self.split, self.overrides, self.excluded = "val", {}, set()
        self.set_threshold(getattr(self, "run_threshold", self.threshold))

    def action_toggle_split(self) -> None:
        self.split = SPLITS[(SPLITS.index(self.split) + 1) % len(SPLITS)]
        self.update_selection()

    def action_level(self, step: int) -> None:
        """Override the highlighted network's level (from its current pick, or its best level)."""
        net = self.highlighted()
        if net is None or self.selection is None:
            return
        levels = self.losses[self.split].shape[0]
        c = self.selection.choices[net]
        start = c.level if c.level is not None else (self._best_level(net) or 0)
        self.overrides[net] = int(np.clip(start + step, 0, levels - 1))
        self.update_selection()

    def action_clear_override(self) -> None:
        net = self.highlighted()
        if net is not None and self.overrides.pop(net, None) is not None:
            self.update_selection()

    def action_toggle_include(self) -> None:
        net = self.highlighted()
        if net is not None:
            self.excluded ^= {net}
            self.update_selection()

    def action_include_all(self) -> None:
        self.excluded.clear()
        self.update_selection()

    def action_export(self) -> None:
        nets = self.export_nets()
        if not nets:
            self.notify("no network is chosen: raise the threshold or pick levels by hand", severity="warning")
            return
        assert self.selection is not None  # there are networks to export
        manual = sum(1 for n in nets if n in self.overrides)
        above = sum(1 for c in self.selection.choices if c.network in nets and self.above_threshold(c))
        summary = (f"{len(nets)} networks ({manual} chosen by hand"
                   f"{f', ⚠ {above} above the threshold' if above else ''}) at threshold "
                   f"{fmt_threshold(self.threshold)} on {self.split}")
        self.app.push_screen(ExportDialog(self.run_id, self.threshold, self.split,
                                          {n: lv for n, lv in self.overrides.items() if n in nets},
                                          nets, summary))

    def action_back(self) -> None:
        field = self.query_one("#picker-threshold", Input)
        if self.focused is field:
            field.value = fmt_threshold(self.threshold)  # an unsubmitted edit is dropped, visibly
            self.query_one(ChoiceTable).focus()
        else:
            self.app.pop_screen()
