"""Plotext charts of a run: loss vs sparsity (all networks, or one) and weight magnitudes.

textual-plotext rebuilds the whole chart on every refresh, so these widgets redraw on a timer,
only when their data changed and they are visible (a fast event stream cannot flood the UI).
X is the level index labelled with its target sparsity: the schedule is far from uniform
(0.15 ... 0.90, 0.91, ... 0.98), and the interesting levels are the crowded ones at the end.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import TYPE_CHECKING

import numpy as np
from textual_plotext import PlotextPlot

from core.formatting import fmt_loss, fmt_threshold

if TYPE_CHECKING:
    import numpy.typing as npt

#: Seconds between redraws at most: the chart is cheap to look at, not to build.
REDRAW_INTERVAL_S = 1.0


def _log10(values: npt.ArrayLike) -> np.ndarray:
    """log10 of the positive finite values, NaN elsewhere.

    We plot log10 ourselves and label the ticks as powers of ten: plotext's own log scale
    transforms the data again on every rebuild, and textual-plotext rebuilds on every repaint.
    """
    values = np.asarray(values, dtype=float)
    ok = np.isfinite(values) & (values > 0)
    return np.where(ok, np.log10(np.where(ok, values, 1.0)), np.nan)


def _log_ticks(plt, *series, rows: int | None = None, keep: float | None = None) -> None:
    """Y ticks (data in log10) labelled `1e-3`: whole decades, or 1-2-5 steps within a short span.

    Only ticks inside the data's range (plotext puts a label outside it on a wrong row), and no two
    closer than a row of the plot's `rows`, so each label sits on its own row; `keep`
    (the threshold, drawn as a line) is always a tick, so the line's row is labelled with its value.
    """
    values = np.concatenate([np.ravel(np.asarray(s, dtype=float)) for s in series if np.size(s)] or [np.empty(0)])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    low, high = float(values.min()), float(values.max())
    eps = 1e-9
    if high - low >= 2:
        step = max(1, math.ceil((high - low) / 6))
        candidates = [float(t) for t in range(math.ceil(low - eps), math.floor(high + eps) + 1, step)]
    else:  # less than two decades: a decade alone would leave the axis with one label
        candidates = [e + math.log10(m) for e in range(math.floor(low) - 1, math.ceil(high) + 1) for m in (1, 2, 5)]
        candidates = [t for t in candidates if low - eps <= t <= high + eps] or [low]
    # decades first, then 2 and 5: the ones kept when rows are few
    candidates.sort(key=lambda t: (abs(t - round(t)) > 1e-6, t))
    gap = (high - low) / max(1, rows - 1) if rows else 0.0  # a row apart at least
    ticks = [keep] if keep is not None and low - eps <= keep <= high + eps else []
    for t in candidates:
        if all(abs(t - other) >= max(gap, 1e-6) for other in ticks):
            ticks.append(t)
    ticks.sort()
    plt.yticks(ticks, [fmt_tick(t) for t in ticks])


def _plot_rows(widget, extra: int = 0) -> int:
    """Rows of a plot's frame: its height less the title, frame and x labels (and `extra` lines)."""
    return max(2, widget.size.height - 4 - extra)


def nice_ticks(low: float, high: float, count: int = 5) -> list[int]:
    """About `count` whole-number ticks from `low` to `high` at 1-2-5 steps (`4000 8000 12000`)."""
    span = max(high - low, 1.0)
    exponent = 10 ** math.floor(math.log10(span / max(1, count)))
    steps = [max(1, int(round(m * exponent * f))) for f in (1, 10) for m in (1, 2, 5)]

    def ticks(step: int) -> list[int]:
        return list(range(int(math.ceil(low / step) * step), int(math.floor(high)) + 1, step))

    return min((ticks(step) for step in steps), key=lambda t: (abs(len(t) - count), -len(t)))


def fmt_tick(log_value: float) -> str:
    """10**log_value as `2e-3`."""
    return fmt_threshold(10 ** log_value)


class ThrottledPlot(PlotextPlot):
    """A plot that rebuilds only on a timer, when `mark_dirty` was called and it is on screen."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._dirty = True
        self._drawn_at = -math.inf
        self._had_data = False

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(REDRAW_INTERVAL_S, self._maybe_redraw)
        self.call_after_refresh(self._maybe_redraw)

    def on_resize(self, _event) -> None:
        """A new size: drawn again, since the y range left for the legend depends on the height."""
        self._dirty = True
        self.call_after_refresh(self._maybe_redraw)

    def mark_dirty(self) -> None:
        """New data: drawn now if the last draw is old enough, else by the timer."""
        self._dirty = True
        if not self._had_data or time.monotonic() - self._drawn_at >= REDRAW_INTERVAL_S:
            self._had_data = True  # the first data replaces the empty chart at once
            self._drawn_at = -math.inf
            self.call_after_refresh(self._maybe_redraw)

    def _maybe_redraw(self) -> None:
        # a hidden tab has no size: keep the data dirty, the timer draws it once shown
        if self._dirty and self.is_mounted and self.size.width > 4 and self.size.height > 4:
            self._dirty = False
            self._drawn_at = time.monotonic()
            self.plt.clear_figure()
            self.draw()
            self.refresh()

    def draw(self) -> None:  # overridden
        """Issue the plotext calls for the current data (on self.plt)."""


def _level_ticks(plt, sparsity: np.ndarray, width: int) -> None:
    """Label level indices with sparsities; thin the labels so they do not overlap."""
    levels = len(sparsity)
    every = max(1, math.ceil(levels * 5 / max(10, width - 10)))
    ticks = list(range(0, levels, every))
    plt.xticks(ticks, [f"{sparsity[i]:.2f}" for i in ticks])


class LossPlot(ThrottledPlot):
    """Median and p10-p90 spread of the loss over networks per level, threshold as a line (log y)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sparsity = np.zeros(0)
        self.losses = np.zeros((0, 0))
        self.threshold = 1e-3
        self.split = "val"
        self.live: tuple[int, float] | None = None  # (level, median training loss) of the level in progress

    def set_data(self, sparsity: np.ndarray, losses: np.ndarray, threshold: float, split: str,
                 live: tuple[int, float] | None = None) -> None:
        self.sparsity, self.losses = np.asarray(sparsity), np.asarray(losses, dtype=float)
        self.threshold, self.split, self.live = threshold, split, live
        self.mark_dirty()

    def draw(self) -> None:
        plt = self.plt
        plt.title(f"{self.split} loss vs sparsity (log) · threshold {fmt_threshold(self.threshold)}")
        levels = self.losses.shape[0]
        threshold = math.log10(self.threshold)
        if levels == 0 and self.live is None:
            plt.text("no completed level yet", x=0, y=threshold)
            plt.hline(threshold, "red")
            _log_ticks(plt, [threshold - 1, threshold + 1])
            return
        x = list(range(levels))
        med = np.zeros(0)
        if levels:
            values = _log10(self.losses)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN level (every net diverged)
                p10, med, p90 = (np.nanpercentile(values, q, axis=1) for q in (10, 50, 90))
            for series, label, marker, color in ((p90, "p90", "dot", "gray"), (p10, "p10", "dot", "gray"),
                                                 (med, "median", "braille", "cyan")):
                keep = np.isfinite(series)
                if keep.any():
                    plt.plot([xi for xi, k in zip(x, keep) if k], series[keep].tolist(),
                             label=label, marker=marker, color=color)
        live = []
        if self.live is not None and self.live[1] and self.live[1] > 0:
            live = [math.log10(self.live[1])]
            plt.scatter([self.live[0]], live, marker="●", color="yellow", label="training")
        plt.hline(threshold, "red")
        spread = [p10, p90] if levels else []
        _log_ticks(plt, med, live, [threshold], *spread, rows=_plot_rows(self), keep=threshold)
        _level_ticks(plt, self.sparsity[: max(levels, (self.live or (0,))[0] + 1)], self.size.width)


class NetworkPlot(ThrottledPlot):
    """One network's loss vs sparsity with its chosen level marked."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sparsity = np.zeros(0)
        self.curve = np.zeros(0)
        self.network = 0
        self.chosen: int | None = None
        self.manual = False
        self.threshold = 1e-3

    def set_data(self, sparsity: np.ndarray, curve: np.ndarray, network: int, chosen: int | None,
                 manual: bool, threshold: float) -> None:
        self.sparsity, self.curve = np.asarray(sparsity), np.asarray(curve, dtype=float)
        self.network, self.chosen, self.manual, self.threshold = network, chosen, manual, threshold
        self.mark_dirty()

    def draw(self) -> None:
        plt = self.plt
        values = _log10(self.curve)
        threshold = math.log10(self.threshold)
        mark = " (chosen by hand *)" if self.manual else ""
        if self.manual and self.chosen is not None and self.chosen < values.size \
                and not values[self.chosen] <= threshold:
            mark = " (by hand *, ⚠ above threshold)"
        plt.title(f"net {self.network}: loss vs sparsity{mark}")
        keep = np.isfinite(values)
        if keep.any():
            x = np.arange(values.size)
            plt.plot(x[keep].tolist(), values[keep].tolist(), marker="braille", color="cyan")
        if self.chosen is not None and self.chosen < values.size and np.isfinite(values[self.chosen]):
            plt.scatter([self.chosen], [float(values[self.chosen])], marker="●", color="yellow",
                        label=f"chosen: level {self.chosen}, {fmt_loss(10 ** values[self.chosen])}")
        plt.hline(threshold, "red")
        _log_ticks(plt, values, [threshold], rows=_plot_rows(self), keep=threshold)
        _level_ticks(plt, self.sparsity[: values.size], self.size.width)


class WeightHistogram(ThrottledPlot):
    """Histogram of log10 |w| of the remaining (non-zero) weights at one level."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.counts = np.zeros(0)
        self.edges = np.zeros(0)
        self.caption = "no level loaded"

    def set_data(self, weights: np.ndarray, caption: str, bins: int = 30) -> None:
        magnitudes = np.abs(np.asarray(weights, dtype=float).ravel())
        magnitudes = magnitudes[magnitudes > 0]
        if magnitudes.size:
            self.counts, self.edges = np.histogram(np.log10(magnitudes), bins=bins)
        else:
            self.counts, self.edges = np.zeros(0), np.zeros(0)
        self.caption = caption
        self.mark_dirty()

    def draw(self) -> None:
        plt = self.plt
        plt.title(self.caption)
        if self.counts.size:
            centres = ((self.edges[:-1] + self.edges[1:]) / 2).round(2).tolist()
            plt.bar(centres, self.counts.tolist(), width=0.9 * float(self.edges[1] - self.edges[0]))
            plt.xlabel("log10 |w| of remaining weights")
            # (a list[float] for plotext's annotation; the ticks stay whole numbers)
            ticks: list[float] = list(nice_ticks(0, float(self.counts.max()), max(2, min(6, _plot_rows(self, 1) // 2))))
            plt.yticks(ticks, [str(t) for t in ticks])  # counts: whole numbers


class Series:
    """One line of a `CurvesPlot`: x and y values (y already log10 when the plot is logarithmic)."""

    def __init__(self, x, y, label: str | None = None, color: str = "cyan", marker: str = "braille"):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        self.x, self.y = x[keep].tolist(), y[keep].tolist()
        self.label, self.color, self.marker = label, color, marker


#: Colours of the runs of a comparison (and the scales of an extrapolation), in order.
PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "red", "white")


class CurvesPlot(ThrottledPlot):
    """Several labelled lines over one x axis (log10 y with decade labels, or linear): comparison
    overlays, extrapolation per scale, noise and flight vs sparsity, the training curve."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = ""
        self.series: list[Series] = []
        self.xticks: tuple[list[float], list[str]] | None = None
        self.hline: float | None = None
        self.ylog = True
        self.xlabel = ""
        self.empty = "no data"

    def set_data(self, title: str, series: list[Series], *, xticks=None, hline: float | None = None,
                 log: bool = True, xlabel: str = "", empty: str = "no data") -> None:
        """`hline` in data units (a threshold); `xticks` (positions, labels) or None for plotext's own."""
        self.title, self.series, self.xticks = title, [s for s in series if s.x], xticks
        self.hline, self.ylog, self.xlabel, self.empty = hline, log, xlabel, empty
        self.mark_dirty()

    def draw(self) -> None:
        plt = self.plt
        plt.title(self.title)
        if not self.series:
            plt.text(self.empty, x=0, y=0, alignment="center")
            plt.xticks([], [])
            plt.yticks([], [])
            return
        for s in self.series:
            if s.label:
                plt.plot(s.x, s.y, label=s.label, marker=s.marker, color=s.color)
            else:
                plt.plot(s.x, s.y, marker=s.marker, color=s.color)
        extra = []
        if self.hline is not None and (not self.ylog or self.hline > 0):
            line = math.log10(self.hline) if self.ylog else self.hline
            plt.hline(line, "red")
            extra = [line]
        if self.ylog:
            _log_ticks(plt, *(s.y for s in self.series), extra, rows=_plot_rows(self),
                       keep=extra[0] if extra else None)
        self._legend_room(plt, extra)
        if self.xticks is not None:
            positions, labels = self.xticks
            every = max(1, math.ceil(len(positions) * 5 / max(10, self.size.width - 10)))
            plt.xticks(positions[::every], labels[::every])
        else:
            xs = [x for s in self.series for x in s.x]
            if xs and all(float(x).is_integer() for x in xs):  # steps: whole numbers, not 13712.5
                ticks: list[float] = list(nice_ticks(min(xs), max(xs), max(2, min(6, (self.size.width - 10) // 10))))
                plt.xticks(ticks, [str(t) for t in ticks])
        if self.xlabel:
            plt.xlabel(self.xlabel)

    def _legend_room(self, plt, extra: list[float]) -> None:
        """Raise the top of the y range so plotext's legend (top left, one row per label) sits
        above the data instead of hiding it."""
        labels = sum(1 for s in self.series if s.label)
        ys = [y for s in self.series for y in s.y] + list(extra)
        if not labels or not ys:
            return
        low, high = min(ys), max(ys)
        span = (high - low) or 1.0
        rows = max(4, self.size.height - 5)              # plot rows inside the frame
        room = span * (labels + 0.5) / max(1, rows - labels - 1)
        top = high + room
        if self.ylog and high - low >= 2:  # whole-decade ticks: the top one must be inside the frame
            top = max(top, math.ceil(high))
        plt.ylim(low - 0.02 * span, top)
