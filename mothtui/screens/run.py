"""One run: live progress from its event stream, loss vs sparsity, layers, weights, analysis.

Two timers keep it live without blocking: events are tailed at 4 Hz (reading new lines is
cheap), the store's `zarr.json` is re-read once a second and, only when a level completes,
the losses are reloaded in a thread worker. Plots redraw on their own throttled timers.
"""

from __future__ import annotations

import numpy as np
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from core.events import EventTail
from core.runstore import open_run, summarize
from mothtui.fmt import fmt_duration, fmt_loss, fmt_rate, fmt_threshold, status_label
from mothtui.model import Progress, analysis_table, input_connections
from mothtui.widgets.plots import LossPlot, WeightHistogram

EVENT_POLL_S = 0.25
STORE_POLL_S = 1.0
#: Networks read for the layer and weight views: enough for fractions and histograms, and a
#: 400-network paper run stays a quick read.
SAMPLE_NETS = 16
TABS = ("progress", "layers", "weights", "analysis")


class RunScreen(Screen):
    """The run `run_id`; `p` opens the picker on it."""

    BINDINGS = [
        Binding("p", "pick", "pick", id="run.pick"),
        Binding("e", "export", "export", id="run.export"),
        Binding("c", "cancel", "cancel", id="run.cancel"),
        Binding("r", "resume", "resume", id="run.resume"),
        Binding("l", "log", "log", id="run.log"),
        Binding("1", "tab('progress')", "progress", show=False, id="run.tab1"),
        Binding("2", "tab('layers')", "layers", show=False, id="run.tab2"),
        Binding("3", "tab('weights')", "weights", show=False, id="run.tab3"),
        Binding("4", "tab('analysis')", "analysis", show=False, id="run.tab4"),
        Binding("left_square_bracket", "weights_level(-1)", "level -", show=False, id="run.level_down"),
        Binding("right_square_bracket", "weights_level(1)", "level +", show=False, id="run.level_up"),
        Binding("escape", "app.pop_screen", "back", id="run.back"),
    ]

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id
        self.path = None  # set on mount, when the app (and its run store) is known
        self.config = None
        self.progress = Progress()
        self.tail: EventTail | None = None
        self.state: tuple | None = None  # (status, levels_complete) last seen
        self.status = "?"
        self.levels_complete = 0
        self.sparsity = np.zeros(0)
        self.losses = np.zeros((0, 0))
        self.threshold = 1e-3
        self.weights_level: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="run-header", classes="screen-header")
        with TabbedContent(id="run-tabs"):
            with TabPane("1 progress", id="progress"):
                with Horizontal():
                    yield LossPlot(id="run-loss-plot")
                    yield Static(id="run-progress", classes="side-panel")
            with TabPane("2 layers", id="layers"):
                with Vertical():
                    yield DataTable(id="run-layers", cursor_type="row", zebra_stripes=True)
                    yield Static(id="run-inputs")
            with TabPane("3 weights", id="weights"):
                yield WeightHistogram(id="run-weights")
            with TabPane("4 analysis", id="analysis"):
                with Vertical():
                    yield DataTable(id="run-analysis-table", cursor_type="row", zebra_stripes=True)
                    yield Static(id="run-analysis", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.path = self.app.runs_dir / self.run_id
        self.tail = EventTail(self.path)
        self.poll_events()
        self.poll_store()
        self.set_interval(EVENT_POLL_S, self.poll_events)
        self.set_interval(STORE_POLL_S, self.poll_store)

    # ---- live data ------------------------------------------------------------------------
    def poll_events(self) -> None:
        if self.tail is not None and self.progress.feed(self.tail.read()):
            self._show_progress()

    def poll_store(self) -> None:
        summary = summarize(self.path)
        self.status = summary.status
        state = (summary.status, summary.levels_complete)
        if state != self.state:
            self.state = state
            self.load_run()
        self._show_header(summary)
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group="run-load", exit_on_error=False)
    def load_run(self) -> None:
        run = open_run(self.app.runs_dir, self.run_id)
        data = dict(config=run.config, sparsity=run.sparsity, losses=run.losses("val"),
                    levels_complete=run.levels_complete, attrs=run.attrs,
                    layers=self._layer_fractions(run), analysis=self._analysis(run))
        self.app.call_from_thread(self._loaded, data)

    def _loaded(self, data: dict) -> None:
        cfg = data["config"]
        self.config = cfg
        self.threshold = float(cfg.threshold)
        self.sparsity, self.losses = data["sparsity"], data["losses"]
        self.levels_complete = data["levels_complete"]
        self._show_header(summarize(self.path))
        self.refresh_bindings()  # pick/export apply once a level is complete
        self._plot()
        self._show_progress()
        self._show_layers(data["layers"])
        self._show_analysis(data["analysis"])
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
        if self.levels_complete:
            last = self.losses[self.levels_complete - 1] if self.losses.size else np.zeros(0)
            finite = last[np.isfinite(last)]
            lines.append("")
            lines.append(f"[b]completed {self.levels_complete} levels[/b]")
            if finite.size:
                lines.append(f"val loss at {self.sparsity[self.levels_complete - 1]:.2f}: "
                             f"median {fmt_loss(float(np.median(finite)))}")
            passing = int((np.nan_to_num(self.losses, nan=np.inf) <= self.threshold).any(axis=0).sum())
            lines.append(f"{passing}/{self.losses.shape[1]} nets pass {fmt_threshold(self.threshold)}")
        if p.status and p.status != "running":
            lines.append(f"{status_label(p.status)}" + (f": {p.message}" if p.message else ""))
        if not lines:
            lines = ["no progress events", "(a run made elsewhere, or not started yet)"]
        self.query_one("#run-progress", Static).update("\n".join(lines))
        if self.status == "running":
            self._plot()

    # ---- layers, weights, analysis --------------------------------------------------------
    @staticmethod
    def _layer_fractions(run) -> dict:
        """Remaining weight fraction per (level, layer) over the first SAMPLE_NETS networks."""
        nets = slice(0, min(SAMPLE_NETS, run.nets))
        rows = []
        first_masks = None
        for level in range(run.levels_complete):
            fractions = []
            kept = total = 0
            for k in range(run.n_layers):
                mask = np.asarray(run.group[f"layer_{k}/weight_mask"][level, nets])
                fractions.append(float(mask.mean()))
                kept, total = kept + int(mask.sum()), total + mask.size
                if k == 0 and level == run.levels_complete - 1:
                    first_masks = mask
            rows.append((level, float(run.sparsity[level]), fractions, kept / max(1, total)))
        inputs = input_connections(first_masks, list(run.attrs.get("input_names", []))) \
            if first_masks is not None else []
        return {"rows": rows, "layers": run.n_layers, "inputs": inputs, "sampled": nets.stop}

    def _show_layers(self, data: dict) -> None:
        table = self.query_one("#run-layers", DataTable)
        table.clear(columns=True)
        table.add_columns("level", "target", *(f"layer {k}" for k in range(data["layers"])), "all")
        for level, target, fractions, overall in data["rows"]:
            table.add_row(str(level), f"{target:.2f}", *(f"{1 - f:.3f}" for f in fractions), f"{1 - overall:.3f}")
        inputs = data["inputs"]
        text = [f"pruned fraction per layer, {data['sampled']} networks sampled"]
        if inputs:
            text.append("first-layer connections kept per input at the last level: " +
                        "  ".join(f"{name} {kept:.0%}" for name, kept in inputs))
        self.query_one("#run-inputs", Static).update("\n".join(text))

    @work(thread=True, exclusive=True, group="run-weights", exit_on_error=False)
    def load_weights(self, level: int) -> None:
        run = open_run(self.app.runs_dir, self.run_id)
        nets = slice(0, min(SAMPLE_NETS, run.nets))
        weights = np.concatenate([np.asarray(run.group[f"layer_{k}/weight"][level, nets]).ravel()
                                  for k in range(run.n_layers)])
        caption = (f"level {level} · target {run.sparsity[level]:.2f} · |w| of remaining weights, "
                   f"{nets.stop} nets · [ ] change level")
        self.app.call_from_thread(self.query_one(WeightHistogram).set_data, weights, caption)

    @staticmethod
    def _analysis(run) -> dict | None:
        """The stored analysis summary (core.analysis), or None when absent or half-written."""
        from core.analysis.store import load_analysis  # numpy + zarr only

        found = load_analysis(run)
        return None if found is None else found["summary"]

    def _show_analysis(self, summary: dict | None) -> None:
        table = self.query_one("#run-analysis-table", DataTable)
        table.clear(columns=True)
        table.display = summary is not None
        if summary is None:
            self.query_one("#run-analysis", Static).update(
                f"no analysis stored yet: run  mothtui analyze {self.run_id}")
            return
        columns, rows, notes = analysis_table(summary)
        table.add_columns(*columns)
        for row in rows:
            table.add_row(*row)
        self.query_one("#run-analysis", Static).update(notes)

    # ---- keys -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("pick", "export"):
            return self.levels_complete > 0
        if action == "cancel":
            return self.status == "running"
        if action == "resume":
            return self.status in ("interrupted", "cancelled", "failed")
        return True

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

