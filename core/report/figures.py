"""The report's figures drawn with matplotlib (Agg): one function per figure, a `Report` in, a Figure out.

Imported only by `mothtui report` (matplotlib is the optional `report` extra). Every figure labels
its axes with units, draws the selection threshold where a loss is shown, and draws the seed's
numbers (black, "seed: ..." in the legend) when some run of the report is comparable with the seed
(`core.report.seed.comparable`). A figure that has nothing to show returns a reason instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator  # noqa: E402

from core.paths import figure_files  # noqa: E402
from core.report import seed  # noqa: E402
from core.report.gather import Report  # noqa: E402
from core.study import KEY_COLUMNS, short_value  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

#: Okabe-Ito: distinguishable with every common colour-vision deficiency, and in greyscale print.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
SEED_COLOUR = "black"
#: Size of one figure (inches; about a page's text width) and the PNG's resolution.
FIG_SIZE = (6.4, 4.0)
PNG_DPI = 150
STYLE: dict[RcKeyType, Any] = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 7.5,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5, "legend.frameon": False,
    "svg.fonttype": "none",  # text stays text in the SVG (editable, searchable)
    "svg.hashsalt": "mothtui",  # stable ids: the same report gives the same SVG
}
#: The contract's inputs as the paper writes them (mathtext); another name is shown as it is.
INPUT_LABELS = {"phi_0": r"$\phi_0$", "theta_0": r"$\theta_0$", "x_f": r"$x_f$", "y_f": r"$y_f$",
                "phi_f": r"$\phi_f$", "theta_f": r"$\theta_f$", "xd_0": r"$\dot x_0$", "yd_0": r"$\dot y_0$",
                "phid_0": r"$\dot\phi_0$", "thetad_0": r"$\dot\theta_0$"}
#: Sparsity ticks: the crowded top of the seed's schedule needs a stretched axis (see `_sparsity_axis`).
SPARSITY_TICKS = (0.0, 0.5, 0.75, 0.9, 0.95, 0.98)


def colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def _pct(value: float) -> str:
    return f"{100 * value:.3g}"


def _sparsity_axis(ax) -> None:
    """x: target sparsity on a -log10(1 - s) scale, so 90, 91, ..., 98 % do not sit on one another
    (each tenfold cut of the remaining weights gets the same width), labelled in percent."""
    def forward(s):
        return -np.log10(1.0 - np.clip(s, -0.5, 0.999))

    def inverse(y):
        return 1.0 - np.power(10.0, -np.asarray(y, float))

    ax.set_xscale("function", functions=(forward, inverse))
    ax.xaxis.set_major_locator(FixedLocator(SPARSITY_TICKS))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda s, _: f"{100 * s:.0f}"))
    ax.set_xlim(-0.06, 0.985)


def _sparsity_label(report: Report) -> str:
    modes = {r.side.config.get("pruning", "layer") for r in report.runs}
    per = " of each layer" if modes == {"layer"} else ""
    return f"target sparsity (% of the weights{per} pruned)"


def _run_label(r, report: Report) -> str:
    """`id (8 nets, 10-128-16-7, pruning global)`: the shape, and the key settings that differ between the runs."""
    differ = [f"{key} {short_value(r.side.config.get(key))}" for key in KEY_COLUMNS
              if key in report.comparison.diff and key not in ("nets", "hidden")]
    return f"{r.run_id} ({', '.join([f'{r.side.nets} nets', r.shape, *differ])})"


def _thresholds(ax, report: Report) -> None:
    for t in sorted({r.threshold for r in report.runs}):
        ax.axhline(t, color="0.35", linestyle="--", linewidth=0.9, label=f"threshold {t:g}")


def loss_vs_sparsity(report: Report) -> Figure:
    """Median loss over networks per level with the p10-p90 band, per run; threshold; seed's Keras network."""
    fig, ax = plt.subplots(figsize=FIG_SIZE, layout="constrained")
    for i, r in enumerate(report.runs):
        s = r.side
        ax.fill_between(s.sparsity, s.loss_p10, s.loss_p90, color=colour(i), alpha=0.18, linewidth=0)
        ax.plot(s.sparsity, s.loss_median, "o-", color=colour(i), markersize=3.5, linewidth=1.4,
                label=f"{_run_label(r, report)}: median, p10–p90")
    if report.seed_comparable and report.split == "val":
        ax.plot(seed.SEED_SPARSITY, seed.KERAS_VAL_MSE, "x:", color=SEED_COLOUR, markersize=5,
                linewidth=0.8, label=seed.KERAS_LABEL)
    _thresholds(ax, report)
    ax.set_yscale("log")
    _sparsity_axis(ax)
    ax.set_xlabel(_sparsity_label(report))
    ax.set_ylabel(f"{report.split} MSE (scaled outputs, mean of 7)")
    ax.set_title("Loss vs sparsity per pruning level")
    _legend_below(fig, ax)
    return fig


def chosen_sparsity(report: Report) -> Figure:
    """Share of each run's networks whose sparsest level under the threshold is at each sparsity."""
    seeded = report.seed_comparable
    bins = sorted({round(float(s), 6) for r in report.runs for s in r.side.sparsity}
                  | {round(s, 6) for r in report.runs for s in r.side.histogram}
                  | (set(seed.HISTOGRAM) if seeded else set()))
    labels = [f"{100 * s:.3g}" for s in bins]
    none = any(r.side.nets > r.side.chosen for r in report.runs)
    if none:
        labels.append("none")
    series: list[tuple[str, list[int], int, dict[str, Any]]] = []
    for i, r in enumerate(report.runs):
        counts = [r.side.histogram.get(s, 0) for s in bins] + ([r.side.nets - r.side.chosen] if none else [])
        median = "–" if r.side.chosen_median is None else f"{_pct(r.side.chosen_median)} %"
        series.append((f"{r.run_id}: {r.side.chosen} of {r.side.nets} chosen, median {median}",
                       counts, r.side.nets, dict(color=colour(i))))
    if seeded:
        counts = [seed.HISTOGRAM.get(s, 0) for s in bins] + ([0] if none else [])
        series.append((seed.HISTOGRAM_LABEL + ", median 93 %", counts, seed.HISTOGRAM_NETS,
                       dict(facecolor="none", edgecolor=SEED_COLOUR, hatch="///", linewidth=0.8)))
    fig, ax = plt.subplots(figsize=FIG_SIZE, layout="constrained")
    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for j, (label, counts, nets, style) in enumerate(series):
        share = 100.0 * np.asarray(counts, float) / max(nets, 1)
        bars = ax.bar(x - 0.4 + width * (j + 0.5), share, width, label=label, **style)
        ax.bar_label(bars, labels=[str(c) if c else "" for c in counts], fontsize=6.5, padding=1)
    ax.set_xticks(x, labels)
    if len(labels) > 12:
        ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("chosen target sparsity (%): the sparsest level at or under the threshold")
    ax.set_ylabel("networks (% of the run; counts on the bars)")
    thresholds = sorted({r.threshold for r in report.runs})
    ax.set_title(f"Chosen sparsity ({report.split} loss ≤ {', '.join(f'{t:g}' for t in thresholds)})")
    ax.grid(axis="x", visible=False)
    _legend_below(fig, ax)
    return fig


def _legend_below(fig, ax) -> None:
    """The legend under the axes, where it never hides a bar or a curve (runs first, the seed last)."""
    _figure_legend(fig, *ax.get_legend_handles_labels())


def _figure_legend(fig, handles, labels) -> None:
    """One legend under everything, in one column when its entries are long; the figure grows to hold it."""
    pairs = sorted(zip(handles, labels), key=lambda hl: hl[1].startswith("seed:"))  # runs first
    ncols = 1 if max(len(label) for _, label in pairs) > 48 else min(len(pairs), 2)
    fig.legend(*zip(*pairs), loc="outside lower center", ncols=ncols)
    fig.set_figheight(fig.get_figheight() + 0.17 * -(-len(pairs) // ncols))  # the axes keep their height


def _grouped_bars(ax, categories: list[str], series) -> None:
    """Bars of several runs per category: `series` = [(label, values (len(categories),), colour)]."""
    x = np.arange(len(categories))
    width = 0.8 / max(len(series), 1)
    for j, (label, values, c) in enumerate(series):
        ax.bar(x - 0.4 + width * (j + 0.5), values, width, label=label, color=c)
    ax.set_xticks(x, categories)
    ax.grid(axis="x", visible=False)


def _chosen_runs(report: Report) -> list:
    return [r for r in report.runs if r.side.remaining is not None]


def kept_per_layer(report: Report) -> Figure | str:
    """Median over the chosen networks of the percentage of each layer's weights kept; the seed's at 93 %."""
    runs = _chosen_runs(report)
    if not runs:
        return "no network of any run is chosen at the threshold"
    depth = max(len(r.side.remaining) for r in runs)
    shapes = {r.layer_sizes for r in runs}
    categories = ([n.replace(" (", "\n(") for n in runs[0].layer_names] if len(shapes) == 1
                  else [f"layer {k}" for k in range(depth)])
    series = []
    for i, r in enumerate(report.runs):
        if r.side.remaining is None or r.side.chosen_median is None:  # both None together: none chosen
            continue
        values = np.full(depth, np.nan)
        values[:len(r.side.remaining)] = 100.0 * np.asarray(r.side.remaining)
        median = f"{_pct(r.side.chosen_median)} %"
        series.append((f"{r.run_id}: median over {r.side.chosen} chosen (median sparsity {median})", values,
                       colour(i)))
    fig, ax = plt.subplots(figsize=FIG_SIZE, layout="constrained")
    _grouped_bars(ax, categories, series)
    if report.seed_comparable and depth == len(seed.KEPT_PER_LAYER):
        ax.plot(np.arange(depth), 100.0 * np.asarray(seed.KEPT_PER_LAYER), "D", color=SEED_COLOUR,
                markersize=5, label=seed.KEPT_LABEL)
    ax.set_ylabel("weights kept at the chosen level (%)")
    ax.set_xlabel("layer (inputs → outputs)")
    ax.set_title("Weights kept per layer")
    _legend_below(fig, ax)
    return fig


def input_connections(report: Report) -> Figure | str:
    """Median percentage of each input's first-layer connections kept at the chosen levels; the seed's."""
    runs = _chosen_runs(report)
    if not runs:
        return "no network of any run is chosen at the threshold"
    names = list(runs[0].side.inputs)
    series = [(f"{r.run_id}: median over {r.side.chosen} chosen", 100.0 * np.asarray(
        [r.side.inputs.get(n, np.nan) for n in names]), colour(i))
        for i, r in enumerate(report.runs) if r.side.inputs is not None]
    fig, ax = plt.subplots(figsize=FIG_SIZE, layout="constrained")
    _grouped_bars(ax, [INPUT_LABELS.get(n, n) for n in names], series)
    if report.seed_comparable:
        ax.plot(np.arange(len(names)), [seed.INPUT_KEPT_PERCENT.get(n, np.nan) for n in names], "D",
                color=SEED_COLOUR, markersize=5, label=seed.KEPT_LABEL)
    width = {r.layer_sizes[1] for r in runs}
    of = f" of {width.pop()}" if len(width) == 1 else ""
    ax.set_ylabel(f"first-layer connections kept (%{of})")
    ax.set_xlabel("network input")
    ax.set_title("First-layer connections per input")
    _legend_below(fig, ax)
    return fig


def weight_distributions(report: Report) -> Figure | str:
    """Per layer, the surviving weights at the chosen levels (per network per bin, log) over the dense ones."""
    runs = [r for r in report.runs if r.weights]
    if not runs:
        return "no network of any run is chosen at the threshold"
    depth = max(len(r.weights) for r in runs)
    cols = min(depth, 3)
    rows = -(-depth // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(FIG_SIZE[0], 2.0 * rows + 0.6), layout="constrained",
                             squeeze=False)
    for k in range(rows * cols):
        ax = axes.flat[k]
        if k >= depth:
            ax.set_visible(False)
            continue
        layers = [(i, r.weights[k]) for i, r in enumerate(report.runs) if k < len(r.weights)]
        # wide enough for every value: survivors often grow past the dense weights while retrained
        top = max(float(np.max(np.abs(values))) for _, w in layers for values in (w.dense, w.chosen)
                  if values.size) if any(w.dense.size or w.chosen.size for _, w in layers) else 1.0
        edges = np.linspace(-top, top, 61)
        first = layers[0][1]
        ax.hist(first.dense, bins=edges, color="0.8",
                weights=np.full(first.dense.size, first.per_network("dense")),
                label=f"{report.runs[layers[0][0]].run_id}: dense (level 0)")
        for i, w in layers:
            ax.hist(w.chosen, bins=edges, histtype="step", color=colour(i), linewidth=1.2,
                    weights=np.full(w.chosen.size, w.per_network("chosen")),
                    label=f"{report.runs[i].run_id}: surviving at the chosen level")
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(runs[0].weights[k].name if len({r.layer_sizes for r in runs}) == 1 else f"layer {k}",
                     fontsize=8.5)
        if k % cols == 0:
            ax.set_ylabel("weights per network")
        ax.set_xlabel("weight value", fontsize=8)
    _figure_legend(fig, *axes.flat[0].get_legend_handles_labels())
    fig.suptitle("Surviving weight distributions (chosen networks, per layer)", fontsize=10)
    return fig


def extrapolation(report: Report) -> Figure | str:
    """Median test loss per level on held-out strokes of other body sizes (`mothtui evaluate`); seed's."""
    runs = [(i, r) for i, r in enumerate(report.runs) if r.side.extrapolation]
    if not runs:
        ids = " ".join(report.run_ids)
        return f"no run has been evaluated at other body scales (mothtui evaluate {ids.split()[0]} --scale 0.5,2)"
    markers = ("v", "^", "s", "D", "P", "X")
    fig, ax = plt.subplots(figsize=FIG_SIZE, layout="constrained")
    for i, r in runs:
        e = r.side.extrapolation
        assert e is not None  # `runs` has the evaluated ones
        x = np.asarray(e["sparsity"], float)
        own = np.asarray([np.nan if v is None else v for v in e["test_loss_median"]], float)
        body = r.side.config.get("scale", 1.0)
        ax.plot(x, own, "o-", color=colour(i), markersize=3.5, linewidth=1.4,
                label=f"{r.run_id}: s = {body:g} (trained), own test split")
        for j, (scale, med) in enumerate(zip(e["scales"], e["loss_median"])):
            med = np.asarray([np.nan if v is None else v for v in med], float)
            style = ("--", ":", "-.")[j % 3]
            ax.plot(x, med, style, marker=markers[j % len(markers)], color=colour(i), markersize=3.5,
                    linewidth=1.1, label=f"{r.run_id}: s = {scale:g} (held-out)")
            if len(runs) == 1:
                p10 = np.asarray([np.nan if v is None else v for v in e["loss_p10"][j]], float)
                p90 = np.asarray([np.nan if v is None else v for v in e["loss_p90"][j]], float)
                ax.fill_between(x, p10, p90, color=colour(i), alpha=0.1, linewidth=0)
    if report.seed_comparable:
        scales = list(seed.EXTRAPOLATION_TEST_MSE)
        ax.plot([0.0] * len(scales), [seed.EXTRAPOLATION_TEST_MSE[s] for s in scales], "*", color=SEED_COLOUR,
                markersize=8, label=f"{seed.EXTRAPOLATION_LABEL}: s = {', '.join(f'{s:g}' for s in scales)}")
        for s in scales:
            ax.annotate(f"s = {s:g}", (0.0, seed.EXTRAPOLATION_TEST_MSE[s]), xytext=(6, 4 if s > 1 else -10),
                        textcoords="offset points", fontsize=6.5)
    _thresholds(ax, report)
    ax.set_yscale("log")
    _sparsity_axis(ax)
    ax.set_xlabel(_sparsity_label(report))
    ax.set_ylabel("test MSE (scaled outputs), median over networks")
    ax.set_title("Other body sizes: loss on moths of body scale s")
    _legend_below(fig, ax)
    return fig


#: Stem -> drawing function (the order and titles are `core.report.FIGURES`).
DRAW: dict[str, Callable[[Report], Figure | str]] = {
    "loss_vs_sparsity": loss_vs_sparsity, "chosen_sparsity": chosen_sparsity,
    "kept_per_layer": kept_per_layer, "input_connections": input_connections,
    "weight_distributions": weight_distributions, "extrapolation": extrapolation,
}


def draw(report: Report, stem: str, out: Path) -> list[Path] | str:
    """Draw one figure into `out/<stem>.svg` and `.png`: the files, or the reason it was not drawn."""
    with plt.rc_context(STYLE):
        fig = DRAW[stem](report)
        if isinstance(fig, str):
            return fig
        try:
            paths = figure_files(out, stem)
            fig.savefig(paths[0], metadata={"Date": None})  # no timestamp: the same report, the same file
            fig.savefig(paths[1], dpi=PNG_DPI)
        finally:
            plt.close(fig)
    return paths
