"""Runs side by side (the runs marked with `space`): loss vs sparsity overlaid, chosen-sparsity
histograms, the config keys that differ, the structure at the chosen levels, other body scales, and
for a sweep (its line marked) the chosen sparsity against the swept keys.

The numbers are `core.study.Comparison`'s and `core.sweep_study.sweep_view`'s (the same as
`mothtui compare --json`), loaded by a thread worker and handed over as `CompareScreen.Loaded`;
this module only lays them out.
X axes are the union of the runs' target sparsities in order (the schedules are far from
uniform, and runs may have different ones), labelled with the sparsity.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from core.formatting import fmt_threshold
from mothtui.screens.dialogs import HELP_FIRST
from mothtui.widgets.plots import PALETTE, CurvesPlot, Series, _log10

if TYPE_CHECKING:
    from mothtui.app import MothApp

TABS = ("loss", "chosen", "config", "structure", "scales", "sweep")
#: Characters of the longest histogram bar.
BAR = 12


def short(value) -> str:
    from core.study import short_value

    return short_value(value)


def sparsity_axis(comparison) -> tuple[list[float], dict[float, int]]:
    """Every target sparsity of any run, ascending, and each one's x position."""
    values = sorted({round(float(s), 6) for r in comparison.runs for s in r.sparsity})
    return values, {s: i for i, s in enumerate(values)}


def _xticks(values: list[float]):
    return list(range(len(values))), [f"{s:.2f}" for s in values]


class CompareScreen(Screen):
    """The comparison of runs and sweeps (`names`); `d` toggles the config table between what differs and everything."""

    if TYPE_CHECKING:
        app: MothApp  # Textual types `self.app` as App

    class Loaded(Message):
        def __init__(self, comparison, sweeps: list) -> None:
            super().__init__()
            self.comparison = comparison
            self.sweeps = sweeps  # core.sweep_study.sweep_view of each sweep named

    class Failed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    BINDINGS = [
        HELP_FIRST,
        Binding("d", "toggle_diff", "diff only/all", id="compare.diff"),
        *(Binding(str(i + 1), f"tab('{t}')", t, show=False, id=f"compare.tab{i + 1}") for i, t in enumerate(TABS)),
        Binding("escape", "app.pop_screen", "back", id="compare.back"),
    ]

    def __init__(self, names: list[str], threshold: float | None = None):
        """`names`: run ids and sweep names (a sweep stands for its runs with a completed level)."""
        super().__init__()
        self.names = list(names)
        self.threshold = threshold
        self.comparison = None
        self.diff_only = True

    def compose(self) -> ComposeResult:
        yield Static(f"compare · {', '.join(self.names)} · loading…", id="compare-header",
                     classes="screen-header")
        with TabbedContent(id="compare-tabs"):
            with TabPane("1 loss", id="loss"):
                yield CurvesPlot(id="compare-loss")
            with TabPane("2 chosen", id="chosen"):
                yield DataTable(id="compare-histogram", zebra_stripes=True)
            with TabPane("3 config", id="config"):
                yield DataTable(id="compare-config", zebra_stripes=True)
            with TabPane("4 structure", id="structure"):
                yield DataTable(id="compare-structure", zebra_stripes=True)
            with TabPane("5 scales", id="scales"):
                yield CurvesPlot(id="compare-scales")
            with TabPane("6 sweep", id="sweep"):
                yield CurvesPlot(id="compare-sweep")
                yield DataTable(id="compare-sweep-table", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="compare-load", exit_on_error=False)
    def load(self) -> None:
        from core.errors import MothError
        from core.study import compare_ids
        from core.sweep_study import expand_names, sweep_view

        try:
            run_ids, sweeps = expand_names(self.app.runs_dir, self.names)
            comparison = compare_ids(self.app.runs_dir, run_ids, self.threshold)
        except MothError as e:
            self.post_message(self.Failed(str(e)))
            return
        self.post_message(self.Loaded(comparison, [sweep_view(r, comparison) for r in sweeps]))

    def on_compare_screen_failed(self, message: Failed) -> None:
        self.query_one("#compare-header", Static).update(f"[b]compare[/b] · [red]{escape(message.error)}[/]")

    def on_compare_screen_loaded(self, message: Loaded) -> None:
        c = self.comparison = message.comparison
        thresholds = sorted(set(c.thresholds))
        at = (f"threshold {fmt_threshold(thresholds[0])}" if len(thresholds) == 1
              else "thresholds " + "/".join(fmt_threshold(t) for t in c.thresholds))
        self.query_one("#compare-header", Static).update(
            f"[b]compare[/b] · {len(c.runs)} runs · {at} ({c.split}) · " +
            "  ".join(f"[{PALETTE[i % len(PALETTE)]}]■[/] {r.run_id}" for i, r in enumerate(c.runs)))
        self._show_loss(c)
        self._show_histogram(c)
        self._show_config(c)
        self._show_structure(c)
        self._show_scales(c)
        self._show_sweeps(message.sweeps)
        if message.sweeps:  # a sweep was asked for: its view first
            self.action_tab("sweep")

    # ---- the panes ----------------------------------------------------------------------------
    def _show_loss(self, c) -> None:
        values, position = sparsity_axis(c)
        series = []
        for i, r in enumerate(c.runs):
            colour = PALETTE[i % len(PALETTE)]
            x = [position[round(float(s), 6)] for s in r.sparsity]
            for band in (r.loss_p10, r.loss_p90):
                series.append(Series(x, _log10(band), None, colour, "dot"))
            series.append(Series(x, _log10(r.loss_median), r.run_id, colour, "braille"))
        thresholds = set(c.thresholds)
        self.query_one("#compare-loss", CurvesPlot).set_data(
            f"median {c.split} loss vs sparsity (log), p10–p90 dotted", series, xticks=_xticks(values),
            hline=thresholds.pop() if len(thresholds) == 1 else None)

    def _show_histogram(self, c) -> None:
        table = self.query_one("#compare-histogram", DataTable)
        table.clear(columns=True)
        table.add_columns("chosen sparsity", *c.run_ids)
        most = max([n for r in c.runs for n in r.histogram.values()] or [1])
        for s in c.sparsities:
            cells = []
            for r in c.runs:
                n = r.histogram.get(s, 0)
                cells.append(f"{'█' * max(1 if n else 0, round(BAR * n / most)):<{BAR}} {n}")
            table.add_row(f"{s:.2f}", *cells)
        table.add_row("none", *(f"{'':<{BAR}} {r.nets - r.chosen}" for r in c.runs))
        table.add_row("median", *("–" if r.chosen_median is None else f"{r.chosen_median:.2f}" for r in c.runs))

    def _show_config(self, c) -> None:
        table = self.query_one("#compare-config", DataTable)
        table.clear(columns=True)
        label = "key (differs)" if self.diff_only else "key (all)"
        table.add_columns(label, *c.run_ids)
        keys = list(c.diff) if self.diff_only else list(c.runs[0].config)
        if not keys:
            table.add_row("(identical configs)", *("" for _ in c.runs))
        for key in keys:
            mark = "≠ " if key in c.diff and not self.diff_only else ""
            table.add_row(f"{mark}{key}", *(short(r.config.get(key)) for r in c.runs))

    def _show_structure(self, c) -> None:
        table = self.query_one("#compare-structure", DataTable)
        table.clear(columns=True)
        table.add_columns("at the chosen levels", *c.run_ids)
        table.add_row("median sparsity", *("–" if r.chosen_median is None else f"{r.chosen_median:.2f}"
                                          for r in c.runs))
        layers = max((len(r.remaining) for r in c.runs if r.remaining), default=0)
        for k in range(layers):
            table.add_row(f"layer {k} kept", *("–" if not r.remaining or k >= len(r.remaining)
                                               else f"{r.remaining[k]:.3f}" for r in c.runs))
        names = next((list(r.inputs) for r in c.runs if r.inputs), [])
        for name in names:
            table.add_row(f"{name} connections", *("–" if not r.inputs else f"{r.inputs.get(name, 0):.0%}"
                                                   for r in c.runs))

    def _show_scales(self, c) -> None:
        values, position = sparsity_axis(c)
        series, colour = [], 0
        for r in c.runs:
            e = r.extrapolation
            if not e:
                continue
            x = [position[round(float(s), 6)] for s in e["sparsity"]]
            series.append(Series(x, _log10(np.asarray(e["test_loss_median"], float)), f"{r.run_id} s=own",
                                 PALETTE[colour % len(PALETTE)], "braille"))
            colour += 1
            for scale, median in zip(e["scales"], e["loss_median"]):
                values_ = np.asarray([math.nan if v is None else v for v in median], float)
                series.append(Series(x, _log10(values_), f"{r.run_id} s={scale:g}",
                                     PALETTE[colour % len(PALETTE)], "braille"))
                colour += 1
        self.query_one("#compare-scales", CurvesPlot).set_data(
            "median test loss vs sparsity at other body scales (log)", series, xticks=_xticks(values),
            empty="no run evaluated at other scales: mothtui evaluate RUN --scale 0.5,2 (or s on a run)")

    def _show_sweeps(self, views: list) -> None:
        """The chosen sparsity (median, p10–p90 dotted) against the first sweep's first key, and a
        table of every sweep's keys and values."""
        plot = self.query_one("#compare-sweep", CurvesPlot)
        table = self.query_one("#compare-sweep-table", DataTable)
        table.clear(columns=True)
        table.add_columns("sweep", "key", "value", "chosen sparsity", "p10–p90", "chosen/nets", "runs")
        series, xticks, title = [], None, "chosen sparsity against a swept key"
        for view in views:
            for key, rows in view["by_key"].items():
                for row in rows:
                    band = row["chosen_sparsity"]
                    table.add_row(view["name"], key, short(row["value"]),
                                  "–" if band["median"] is None else f"{band['median']:.3f}",
                                  "–" if band["median"] is None else f"{band['p10']:.3f}–{band['p90']:.3f}",
                                  f"{row['chosen']}/{row['nets']}", str(len(row["runs"])))
        if views and views[0]["by_key"]:
            view = views[0]
            key, rows = next(iter(view["by_key"].items()))
            x = list(range(len(rows)))
            bands = [row["chosen_sparsity"] for row in rows]
            pick = lambda name: [math.nan if b[name] is None else b[name] for b in bands]  # noqa: E731
            series = [Series(x, pick("p10"), None, PALETTE[0], "dot"), Series(x, pick("p90"), None, PALETTE[0], "dot"),
                      Series(x, pick("median"), f"{view['name']}: median", PALETTE[0], "braille")]
            xticks = (x, [short(row["value"]) for row in rows])
            title = f"sweep {view['name']}: chosen sparsity vs {key} (median, p10–p90 dotted)"
        plot.set_data(title, series, xticks=xticks, log=False, xlabel=key if series else "",
                      empty="no sweep here: mark a sweep's line in the runs list (space), then C")

    # ---- keys -------------------------------------------------------------------------------
    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_toggle_diff(self) -> None:
        self.diff_only = not self.diff_only
        if self.comparison is not None:
            self._show_config(self.comparison)
            self.action_tab("config")

