"""One run: live progress from its event stream, loss vs sparsity, the training curve of the level
in training, layers, weights, analysis (started here with `a`), other body scales (`s`), and the
network motifs' z-scores (stored with the analysis).

Two timers keep it live without blocking: events are tailed at 4 Hz (reading the new lines is
cheap) and folded into a `core.events.RunProgress` by the shared reducer; the store's `zarr.json`
is re-read once a second and, only when a level completes, a thread worker loads a
`mothtui.model.RunView` and posts it as a `RunScreen.Loaded` message (the weights histogram the
same way, `WeightsLoaded`). Plots redraw on their own throttled timers. The analysis steps run as
supervised jobs (mothtui.jobs, like training); the view is reloaded when their stored results
change (`core.analysis.store.stored_stamp`), so a tab fills in when its step ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from core.analysis.store import stored_stamp
from core.analysis.summary import AnalysisSummary
from core.events import EventTail, RunProgress, fold
from core.formatting import fmt_duration, fmt_loss, fmt_rate, fmt_threshold
from core.runstore import run_path, summarize
from mothtui.clipboard import copy
from mothtui.fmt import end_line, status_label
from mothtui.model import (LayersView, RunView, WeightsView, analysis_table, load_run_view, load_weights_view,
                           motif_table)
from mothtui.screens.dialogs import HELP_FIRST
from mothtui.widgets.plots import PALETTE, CurvesPlot, LossPlot, Series, WeightHistogram, _log10

if TYPE_CHECKING:
    from pathlib import Path

    from core.config import Config
    from mothtui.app import MothApp

EVENT_POLL_S = 0.25
STORE_POLL_S = 1.0
TABS = ("progress", "layers", "weights", "analysis", "scales", "motifs")
#: The body scales `s` evaluates the run at (the seed's extrapolation question, model.md §5).
EVALUATE_SCALES = "0.5,2"
#: The analysis steps the run screen starts (jobs of these kinds show their progress line).
STEPS = ("analyze", "evaluate")


class RunScreen(Screen):
    """The run `run_id`; `p` opens the picker on it."""

    if TYPE_CHECKING:
        app: MothApp  # Textual types `self.app` as App

    class Loaded(Message):
        """A worker read the run's view from the store (after a level completed, or on opening)."""

        def __init__(self, view: RunView) -> None:
            super().__init__()
            self.view = view

    class WeightsLoaded(Message):
        """A worker read one level's weights for the histogram."""

        def __init__(self, view: WeightsView) -> None:
            super().__init__()
            self.view = view

    BINDINGS = [
        HELP_FIRST,
        Binding("p", "pick", "pick", id="run.pick"),
        Binding("e", "export", "export", id="run.export"),
        Binding("c", "cancel", "cancel", id="run.cancel"),
        Binding("r", "resume", "resume", id="run.resume"),
        Binding("l", "log", "log", id="run.log"),
        Binding("a", "analyze", "analyze", id="run.analyze"),
        Binding("s", "evaluate", "scales", id="run.evaluate"),
        Binding("f", "report", "figures (report)", show=False, id="run.report"),
        Binding("y", "copy_id", "copy id", show=False, id="run.copy_id"),
        Binding("Y", "copy_path", "copy path", show=False, id="run.copy_path"),
        Binding("1", "tab('progress')", "tab 1: progress", show=False, id="run.tab1"),
        Binding("2", "tab('layers')", "tab 2: layers", show=False, id="run.tab2"),
        Binding("3", "tab('weights')", "tab 3: weights", show=False, id="run.tab3"),
        Binding("4", "tab('analysis')", "tab 4: analysis", show=False, id="run.tab4"),
        Binding("5", "tab('scales')", "tab 5: scales", show=False, id="run.tab5"),
        Binding("6", "tab('motifs')", "tab 6: motifs", show=False, id="run.tab6"),
        Binding("left_square_bracket", "weights_level(-1)", "level -", show=False, id="run.level_down"),
        Binding("right_square_bracket", "weights_level(1)", "level +", show=False, id="run.level_up"),
        Binding("escape", "app.pop_screen", "back", id="run.back"),
        Binding("j,down", "scroll_tab(1)", "down in the tab (analysis: scroll)", show=False, id="run.down"),
        Binding("k,up", "scroll_tab(-1)", "up in the tab (analysis: scroll)", show=False, id="run.up"),
    ]

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id
        self.path: Path | None = None  # set on mount, when the app (and its run store) is known
        self.config: Config | None = None
        self.view: RunView | None = None
        self.progress = RunProgress()
        self.tail: EventTail | None = None
        self.state: tuple | None = None  # (status, levels_complete) last seen
        self.status = "?"
        self.levels_complete = 0
        self.sparsity = np.zeros(0)
        self.losses = np.zeros((0, 0))
        self.threshold = 1e-3
        self.weights_level: int | None = None
        self.held: str | None = None  # what holds the run (an analysis, a training), None: nobody

    def compose(self) -> ComposeResult:
        yield Static(id="run-header", classes="screen-header")
        yield Static(id="run-step", markup=False)  # above the tabs: seen from whichever tab started it
        with TabbedContent(id="run-tabs"):
            with TabPane("1 progress", id="progress"):
                with Horizontal():
                    with Vertical(id="run-plots"):
                        yield LossPlot(id="run-loss-plot")
                        yield CurvesPlot(id="run-curve")
                    yield Static(id="run-progress", classes="side-panel")
            with TabPane("2 layers", id="layers"):
                with Vertical():
                    yield DataTable(id="run-layers", cursor_type="row", zebra_stripes=True)
                    yield Static(id="run-inputs")
            with TabPane("3 weights", id="weights"):
                yield WeightHistogram(id="run-weights")
            with TabPane("4 analysis", id="analysis"):
                with VerticalScroll(id="run-analysis-scroll"):
                    with Horizontal(id="run-analysis-plots"):
                        yield CurvesPlot(id="run-noise")
                        yield CurvesPlot(id="run-flight")
                    yield DataTable(id="run-analysis-table", cursor_type="row", zebra_stripes=True)
                    yield Static(id="run-analysis", markup=False)
            with TabPane("5 scales", id="scales"):
                with Vertical():
                    yield CurvesPlot(id="run-scales")
                    yield Static(id="run-scales-note", markup=False)
            with TabPane("6 motifs", id="motifs"):
                with Vertical():
                    yield Static(id="run-motifs-note", markup=False)
                    yield DataTable(id="run-motifs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        # not focusable: j/k scroll the whole analysis tab (plots, table, notes) instead
        self.query_one("#run-analysis-table", DataTable).can_focus = False
        self.path = run_path(self.app.runs_dir, self.run_id)
        self.tail = EventTail(self.path)
        self.poll_events()
        self.poll_store()
        self.set_interval(EVENT_POLL_S, self.poll_events)
        self.set_interval(STORE_POLL_S, self.poll_store)

    # ---- live data ------------------------------------------------------------------------
    def poll_events(self) -> None:
        events = self.tail.read() if self.tail is not None else []
        if events:
            self.progress = fold(events, self.progress)
            self._show_progress()

    def poll_store(self) -> None:
        assert self.path is not None  # polled from mount on
        summary = summarize(self.path)
        self.status = summary.status
        owner = summary.owner
        self.held = None if owner is None else ((owner.record.command if owner.record else None) or "a process")
        state = (summary.status, summary.levels_complete, stored_stamp(self.path))
        if state != self.state:
            self.state = state
            self.load_run()
        self._show_header(summary)
        self._show_step()
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group="run-load", exit_on_error=False)
    def load_run(self) -> None:
        self.post_message(self.Loaded(load_run_view(self.app.runs_dir, self.run_id)))

    def on_run_screen_loaded(self, message: Loaded) -> None:
        view = self.view = message.view
        self.config = view.config
        self.threshold = view.threshold
        self.sparsity, self.losses = view.sparsity, view.losses
        self.levels_complete = view.levels_complete
        assert self.path is not None  # loaded from mount on
        self._show_header(summarize(self.path))
        self.refresh_bindings()  # pick/export apply once a level is complete
        self._plot()
        self._show_progress()
        self._show_layers(view.layers)
        self._show_analysis(view.analysis)
        self._show_scales(view.extrapolation)
        self._show_motifs(view.analysis)
        if self.weights_level is None or self.weights_level >= self.levels_complete:
            self.weights_level = max(0, self.levels_complete - 1)
        if self.levels_complete:
            self.load_weights(self.weights_level)

    def _plot(self) -> None:
        live = None
        median = self.progress.loss_stats()[0]
        if self.status == "running" and self.progress.level is not None and median:
            live = (self.progress.level, median)
        self.query_one(LossPlot).set_data(self.sparsity, self.losses, self.threshold, "val", live)

    def _show_header(self, summary) -> None:
        cfg = self.config
        arch = "-".join(str(s) for s in cfg.layer_sizes) if cfg else "?"
        pruning = {"layer": "layer-wise", "global": "global"}.get(cfg.pruning, "?") if cfg else "?"
        nets = summary.nets if summary.nets is not None else "?"
        self.query_one("#run-header", Static).update(
            f"[b]{self.run_id}[/b] · {status_label(summary.status)} · {nets} nets · {arch} · {pruning} · "
            f"{summary.lineage + ' · ' if summary.parent else ''}"
            f"threshold {fmt_threshold(self.threshold)} (val) · levels {summary.levels_complete}/{summary.levels}"
            f"{self._devices_text()}")

    def _devices_text(self) -> str:
        """` · 4 × cpu`: the devices the engine uses, as its run_start event says (none: a run made elsewhere)."""
        p = self.progress
        if not p.devices:
            return ""
        return f" · {p.devices} × {p.device_kind}" if p.device_kind else f" · {p.devices} devices"

    def _show_progress(self) -> None:
        p = self.progress
        lines = []
        if p.level is not None:
            sparsity = f" · {p.sparsity * 100:.0f} %" if p.sparsity is not None else ""
            lines.append(f"[b]level {p.level}{sparsity}[/b]")
            if p.step is not None:
                lines.append(f"step {p.step:,}" + (f" / ≤ {p.max_steps:,}" if p.max_steps else ""))
            med, p10, p90 = p.loss_stats()
            lines.append(f"train loss median {fmt_loss(med)}")
            lines.append(f"           p10–p90 {fmt_loss(p10)}–{fmt_loss(p90)}")
            if p.active is not None and p.nets:
                lines.append(f"training {p.active}/{p.nets} nets")
            if p.stopped_early is not None:
                lines.append(f"last level: stopped early {p.stopped_early}, diverged {p.diverged or 0}")
            if p.samples_per_s is not None:
                eta = f" · ETA {fmt_duration(p.eta_s)}" if p.eta_s is not None else ""
                lines.append(f"{fmt_rate(p.samples_per_s)}{eta}")
        view = self.view
        if view is not None and view.levels_complete:
            lines.append("")
            lines.append(f"[b]completed {view.levels_complete} levels[/b]")
            median = view.last_level_median()
            if median is not None:
                lines.append(f"val loss at {view.sparsity[view.levels_complete - 1]:.2f}: median {fmt_loss(median)}")
            sel = view.selection
            chosen = "–" if sel.median_sparsity is None else f"{sel.median_sparsity:.2f}"
            lines.append(f"chosen levels (val loss ≤ {fmt_threshold(sel.threshold)}):")
            lines.append(f"  {sel.passing}/{len(sel.choices)} nets · median sparsity {chosen}")
        if p.status and p.status != "running":
            lines.append(end_line(p.status, p.message))
        self._show_curve()
        if not lines:
            lines = ["no progress events", "(a run made elsewhere, or not started yet)"]
        self.query_one("#run-progress", Static).update("\n".join(lines))
        if self.status == "running":
            self._plot()

    def _show_curve(self) -> None:
        """Training loss vs step of the level in training (median, p10 and p90 over networks)."""
        p, plot = self.progress, self.query_one("#run-curve", CurvesPlot)
        curve = p.curve
        plot.display = bool(curve)  # only while a level's curve is known: a finished run keeps its plot big
        if not curve:
            return
        steps = [c[0] for c in curve]
        series = [Series(steps, _log10([c[2] for c in curve]), None, "gray", "dot"),
                  Series(steps, _log10([c[3] for c in curve]), None, "gray", "dot"),
                  Series(steps, _log10([c[1] for c in curve]), "median", "cyan", "braille")]
        sparsity = f" ({p.sparsity:.2f})" if p.sparsity is not None else ""
        plot.set_data(f"level {p.level}{sparsity}: training loss vs step (log), p10–p90 dotted", series)

    # ---- layers, weights, analysis --------------------------------------------------------
    def _show_layers(self, layers: LayersView) -> None:
        table = self.query_one("#run-layers", DataTable)
        table.clear(columns=True)
        table.add_columns("level", "target", *(f"layer {k}" for k in range(layers.layers)), "all")
        for level, target, remaining, overall in layers.rows:
            table.add_row(str(level), f"{target:.2f}", *(f"{1 - f:.3f}" for f in remaining), f"{1 - overall:.3f}")
        inputs = layers.inputs
        text = [f"pruned fraction per layer, {layers.sampled} networks sampled"]
        if inputs:
            text.append("first-layer connections kept per input at the last level: " +
                        "  ".join(f"{name} {kept:.0%}" for name, kept in inputs))
        self.query_one("#run-inputs", Static).update("\n".join(text))

    @work(thread=True, exclusive=True, group="run-weights", exit_on_error=False)
    def load_weights(self, level: int) -> None:
        self.post_message(self.WeightsLoaded(load_weights_view(self.app.runs_dir, self.run_id, level)))

    def on_run_screen_weights_loaded(self, message: WeightsLoaded) -> None:
        if message.view.level == self.weights_level:  # not a level the user has already left
            self.query_one(WeightHistogram).set_data(message.view.weights, message.view.caption)

    def _show_step(self) -> None:
        """The analysis step this run is busy with (this app's job, or one found through the run's
        owner record, e.g. started before the app was reopened), and its last progress line."""
        job = self.app.jobs.job(self.run_id)
        step = job.kind if job is not None and job.kind in STEPS else \
            next((k for k in STEPS if self.held and f" {k} " in f" {self.held} "), None)
        text = ""
        if step is not None:
            last = self.app.jobs.log_tail(self.run_id, 1).strip()
            text = f"{step} running · {last or 'starting…'} · c cancels · l shows its log"
        self.query_one("#run-step", Static).update(text)
        self.query_one("#run-step").display = bool(text)
        if step != getattr(self, "_step_shown", None):  # the empty tabs say what is under way
            self._step_shown = step
            if self.view is not None:
                self._show_analysis(self.view.analysis)
                self._show_scales(self.view.extrapolation)

    def _level_axis(self, sparsity: list[float]):
        return list(range(len(sparsity))), [f"{s:.2f}" for s in sparsity]

    def _show_analysis(self, summary: AnalysisSummary | None) -> None:
        table = self.query_one("#run-analysis-table", DataTable)
        table.clear(columns=True)
        table.display = summary is not None
        perf = summary.performance if summary is not None else None
        self.query_one("#run-analysis-plots").display = bool(perf and perf.eval_loss_median)
        if summary is None:
            self.query_one("#run-analysis", Static).update(
                "analyzing… (progress above; the table fills in when it ends)"
                if getattr(self, "_step_shown", None) == "analyze" else
                f"no analysis stored yet: press a to analyze this run (or: mothtui analyze {self.run_id})")
            return
        if perf and perf.eval_loss_median:
            x, labels = self._level_axis(summary.sparsity)
            series = [Series(x, _log10(np.asarray(perf.eval_loss_median, float)), "no noise", PALETTE[0])]
            noise = zip(perf.noise_sigma, perf.noise_loss_median)
            for i, (sigma, losses) in enumerate(noise):
                values = np.asarray([np.nan if v is None else v for v in losses], float)
                series.append(Series(x, _log10(values), f"σ {sigma:g}", PALETTE[(i + 1) % len(PALETTE)]))
            self.query_one("#run-noise", CurvesPlot).set_data(
                "loss vs sparsity with input noise (log)", series, xticks=(x, labels))
            flight = np.asarray([np.nan if v is None else v for v in perf.flight_position_cm_median], float)
            replay = perf.replay_position_cm_median
            self.query_one("#run-flight", CurvesPlot).set_data(
                "closed-loop flight error, cm (log)", [Series(x, _log10(flight), "median", PALETTE[0])],
                xticks=(x, labels), hline=replay if replay else None)
        columns, rows, notes = analysis_table(summary)
        table.add_columns(*columns)
        for row in rows:
            table.add_row(*row)
        self.query_one("#run-analysis", Static).update(notes)

    def _show_scales(self, summary: dict | None) -> None:
        plot, note = self.query_one("#run-scales", CurvesPlot), self.query_one("#run-scales-note", Static)
        if not summary:
            if getattr(self, "_step_shown", None) == "evaluate":
                plot.set_data("test loss vs sparsity at other body scales", [],
                              empty=f"evaluating at s = {EVALUATE_SCALES}… (progress above)")
                note.update("the plot fills in when the evaluation ends")
                return
            plot.set_data("test loss vs sparsity at other body scales", [],
                          empty=f"not evaluated yet: press s to evaluate at s = {EVALUATE_SCALES}")
            note.update(f"s simulates held-out strokes at body scales {EVALUATE_SCALES} and evaluates every level "
                        f"(or: mothtui evaluate {self.run_id} --scale {EVALUATE_SCALES})")
            return
        x, labels = self._level_axis(summary.get("sparsity") or [])
        series = [Series(x, _log10(np.asarray(summary["test_loss_median"], float)),
                         f"own (s={self.config.scale:g})" if self.config else "own", PALETTE[0])]
        for i, (scale, row) in enumerate(zip(summary["scales"], summary["loss_median"])):
            values = np.asarray([np.nan if v is None else v for v in row], float)
            series.append(Series(x, _log10(values), f"s={scale:g}", PALETTE[(i + 1) % len(PALETTE)]))
        plot.set_data("median test loss vs sparsity per body scale (log)", series, xticks=(x, labels))
        note.update("  ".join(
            f"s={s:g}: level 0 {fmt_loss(m[0])} ({'–' if q is None else f'{q:.0f}×'} own) · {v:.0%} valid"
            for s, m, q, v in zip(summary["scales"], summary["loss_median"], summary["ratio_to_level0"],
                                  summary["valid_fraction"])))

    def _show_motifs(self, summary: AnalysisSummary | None) -> None:
        table = self.query_one("#run-motifs", DataTable)
        table.clear(columns=True)
        if summary is None:
            table.display = False
            self.query_one("#run-motifs-note", Static).update(
                f"no analysis stored yet: press a to analyze this run (or mothtui analyze {self.run_id}); it counts the motifs")
            return
        columns, rows, note = motif_table(summary)
        table.display = bool(rows)
        table.add_columns(*columns)
        for row in rows:
            table.add_row(*row)
        self.query_one("#run-motifs-note", Static).update(note)

    # ---- keys -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("pick", "export", "report"):
            return self.levels_complete > 0
        if action in ("analyze", "evaluate"):
            return self.levels_complete > 0 and self.status != "running" and not self.held
        if action == "cancel":
            return self.status == "running" or bool(self.held) or self.app.jobs.job(self.run_id) is not None
        if action == "resume":
            return self.status in ("interrupted", "cancelled", "failed")
        return True

    def action_scroll_tab(self, step: int) -> None:
        """j/k (and ↓/↑) move in the tab shown: the analysis tab scrolls (its table is below its plots
        and runs past the bottom at 80x24), the layers tab moves its table's cursor."""
        tab = self.query_one(TabbedContent).active
        if tab == "analysis":
            self.query_one("#run-analysis-scroll", VerticalScroll).scroll_relative(y=step * 2, animate=False)
        elif tab == "layers":
            table = self.query_one("#run-layers", DataTable)
            table.action_cursor_down() if step > 0 else table.action_cursor_up()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_weights_level(self, step: int) -> None:
        if self.levels_complete and self.weights_level is not None:
            self.weights_level = int(np.clip(self.weights_level + step, 0, self.levels_complete - 1))
            self.load_weights(self.weights_level)

    def action_pick(self) -> None:
        self.app.open_picker(self.run_id)

    def action_export(self) -> None:
        self.app.open_picker(self.run_id, export=True)

    def action_cancel(self) -> None:
        self.app.cancel_run(self.run_id)

    def action_resume(self) -> None:
        self.app.resume_run(self.run_id)

    def action_log(self) -> None:
        self.app.open_log(self.run_id)

    def action_analyze(self) -> None:
        self.app.start_step(self.run_id, "analyze")
        self.action_tab("analysis")

    def action_copy_id(self) -> None:
        """`y`: this run's id to the clipboard (OSC 52, through tmux: mothtui.clipboard)."""
        copy(self.app, self.run_id, "run id")

    def action_copy_path(self) -> None:
        """`Y`: this run's directory to the clipboard."""
        copy(self.app, str(run_path(self.app.runs_dir, self.run_id).resolve()), "run path")

    def action_report(self) -> None:
        """`mothtui report` of this run into `<runs>/.reports/<run>/` (SVG, PNG, index.md)."""
        self.app.start_report(self.run_id)

    def action_evaluate(self) -> None:
        self.app.start_step(self.run_id, "evaluate", EVALUATE_SCALES)
        self.action_tab("scales")

