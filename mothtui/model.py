"""What the screens show, computed from the run store: pure Python + numpy, no textual, no jax.

The screens stay thin: each loads one view object (`RunsView`, `RunView`, `WeightsView`,
`PickerView`) from here in a worker and receives it as a Textual message, so the logic is
testable without a terminal. What `core` computes, `core` computes: selection is `core.select`,
layer fractions are `core.analysis.structure`, live progress is `core.events`' reducer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.analysis import structure
from core.analysis.summary import AnalysisSummary
from core.config import Config
from core.events import EventTail, RunProgress, event_span, fold
from core.formatting import fmt_duration, fmt_loss, fmt_rate, fmt_threshold
from core.runstore import SPLITS, Run, RunSummary, disk_usage, list_runs, open_run
from core.select import Selection, select

#: Networks read for the layer and weight views: enough for fractions and histograms, and a
#: 400-network paper run stays a quick read.
SAMPLE_NETS = 16

# ---- selection --------------------------------------------------------------------------------

def median_chosen_sparsity(losses: np.ndarray, sparsity: np.ndarray, threshold: float) -> float | None:
    """Median sparsity of the chosen levels over the networks that have one."""
    if losses.size == 0:
        return None
    return select(losses, sparsity, threshold).median_sparsity


# ---- the runs list ------------------------------------------------------------------------------

#: Characters of a damaged run's reason shown in the table (the full text is in the notification).
DAMAGED_WIDTH = 26


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class RunRow:
    """One row of the runs table."""

    summary: RunSummary
    chosen: str = "–"
    duration: str = "–"
    disk_bytes: int | None = None  # bytes of the run directory (core.runlist.disk_usage)

    @property
    def run_id(self) -> str:
        return self.summary.run_id


@dataclass(frozen=True)
class RunsView:
    """The runs screen's data: every row, and a status line per running run (from its events)."""

    rows: tuple[RunRow, ...]
    live: tuple[str, ...] = ()
    sweeps: tuple = ()
    """`core.sweep_status.SweepStatus` of each sweep of the store: the runs table groups their runs."""


class RunsModel:
    """The runs table's data: summaries plus the slower columns, cached per run state.

    Keeps each running run's event tail and progress between polls (safe from worker threads).
    """

    def __init__(self, runs_dir: Path):
        self.runs_dir = Path(runs_dir)
        self._chosen: dict[tuple, str] = {}
        self._live: dict[str, tuple[EventTail, RunProgress]] = {}
        self._lock = threading.Lock()
        self._disk: dict[str, tuple[tuple, int]] = {}  # run id -> (state it was measured in, bytes)

    def view(self, now: float | None = None) -> RunsView:
        """Rows and the live progress lines of the running runs (the runs screen's worker calls this)."""
        from core.sweep_status import sweep_statuses

        rows = tuple(self.rows(now))
        sweeps = sweep_statuses(self.runs_dir, [r.summary for r in rows], now=now)
        return RunsView(rows, tuple(self.live_lines(rows)), tuple(sweeps))

    def rows(self, now: float | None = None, *, quick: bool = False) -> list[RunRow]:
        """Every run's row. `quick`: only what zarr.json tells (the first paint), `…` for the rest."""
        return [self.row(s, now, quick=quick) for s in list_runs(self.runs_dir)]

    def row(self, summary: RunSummary, now: float | None = None, *, quick: bool = False) -> RunRow:
        if summary.damaged:
            reason = summary.damaged.replace("store unreadable: ", "unreadable ")
            return RunRow(summary, chosen=_clip(reason, DAMAGED_WIDTH), disk_bytes=self._disk_bytes(summary, quick))
        if summary.status == "starting":  # claimed by a live engine, its store not written yet: nothing to read
            return RunRow(summary, duration=self._duration(summary, now), disk_bytes=self._disk_bytes(summary, quick))
        return RunRow(summary, self._chosen_text(summary, quick), self._duration(summary, now),
                      self._disk_bytes(summary, quick))

    def _disk_bytes(self, s: RunSummary, quick: bool = False) -> int | None:
        """Disk use, re-measured when the run's state changes and every minute while it runs."""
        key = (s.levels_complete, s.status, s.status == "running" and int(time.time() // 60))
        cached = self._disk.get(s.run_id)
        if cached is None or cached[0] != key:
            if quick:
                return None
            cached = self._disk[s.run_id] = (key, disk_usage(s.path))
        return cached[1]

    def live_lines(self, rows) -> list[str]:
        """`<run>: level 11/18 · …` for each running run, its events tailed since the last call."""
        lines = []
        with self._lock:
            for r in rows:
                if r.summary.status == "starting":
                    lines.append(f"{r.run_id}: starting: simulating data / compiling…")
                    continue
                if r.summary.status != "running":
                    continue
                tail, progress = self._live.get(r.run_id) or (EventTail(r.summary.path), RunProgress())
                progress = fold(tail.read(), progress)
                self._live[r.run_id] = (tail, progress)
                lines.append(f"{r.run_id}: {progress_line(progress)}")
        return lines

    def _chosen_text(self, s: RunSummary, quick: bool = False) -> str:
        key = (s.run_id, s.levels_complete, s.status)
        if key not in self._chosen:
            if quick:
                return "…"
            try:
                run = open_run(self.runs_dir, s.run_id)
                threshold = float(run.config.threshold)
                median = median_chosen_sparsity(run.losses("val"), run.sparsity, threshold)
                text = "–" if median is None else f"{median:.2f} @{fmt_threshold(threshold)}"
            except Exception as err:  # noqa: BLE001 - a damaged run is a row, never a crash
                text = f"unreadable: {str(err)[:40]}"
            self._chosen[key] = text
        return self._chosen[key]

    @staticmethod
    def _duration(s: RunSummary, now: float | None) -> str:
        first, last, ended = event_span(s.path)
        if first is None:
            return "–"
        if s.status == "running" and now is not None:
            return fmt_duration(now - first)
        return fmt_duration((last or first) - first)


# ---- live progress from the event stream -------------------------------------------------------

def progress_line(p: RunProgress) -> str:
    """One status line: `level 11/18 · 92 % · step 3,400 · 61k samples/s · ETA 38m00s`."""
    if p.level is None:
        return "starting…" if p.status in (None, "running") else (p.status or "")
    # as the runs table's "levels 11/18": training level index 11 of 18 levels, 11 done
    parts = [f"level {p.level}/{p.levels if p.levels is not None else '?'}"]
    if p.sparsity is not None:
        parts.append(f"{p.sparsity * 100:.0f} %")
    if p.step is not None:
        parts.append(f"step {p.step:,}" + (f" / ≤ {p.max_steps:,}" if p.max_steps else ""))
    if p.samples_per_s is not None:
        parts.append(fmt_rate(p.samples_per_s))
    if p.eta_s is not None:
        parts.append(f"ETA {fmt_duration(p.eta_s)}")
    if p.status and p.status != "running":
        parts.append(p.status)
    return " · ".join(parts)


# ---- one run --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayersView:
    """Remaining weights per level and layer over the first `sampled` networks (core.analysis.structure)."""

    rows: tuple[tuple[int, float, tuple[float, ...], float], ...]
    """(level, target sparsity, remaining fraction per layer, remaining fraction of all weights)."""
    layers: int
    inputs: tuple[tuple[str, float], ...]
    """(input name, fraction of its first-layer weights kept) at the last completed level."""
    sampled: int


@dataclass(frozen=True)
class RunView:
    """Everything the run screen shows from the store (its live progress comes from events)."""

    run_id: str
    config: Config
    sparsity: np.ndarray
    losses: np.ndarray
    """(levels_complete, N) validation loss."""
    levels_complete: int
    selection: Selection
    """`core.select` at the run's threshold on val: which networks pass."""
    layers: LayersView
    analysis: AnalysisSummary | None
    """The stored analysis summary (core.analysis), None when absent or half-written."""
    extrapolation: dict[str, Any] | None = None
    """`mothtui evaluate`'s stored summary (core.analysis.extrapolate), None when absent."""

    @property
    def threshold(self) -> float:
        return float(self.config.threshold)

    def last_level_median(self) -> float | None:
        """Median validation loss of the last completed level over the networks with a finite one."""
        if not self.levels_complete:
            return None
        last = self.losses[self.levels_complete - 1]
        finite = last[np.isfinite(last)]
        return float(np.median(finite)) if finite.size else None


def layers_view(run: Run, sparsity: np.ndarray, sample_nets: int = SAMPLE_NETS) -> LayersView:
    """Remaining fractions of every completed level over the first `sample_nets` networks."""
    nets = slice(0, min(sample_nets, run.nets))
    rows, first_masks = [], None
    for level in range(run.levels_complete):
        masks = run.weight_masks(level, nets)
        per_layer = structure.remaining_fractions(masks).mean(axis=0)
        overall = float(structure.remaining_overall(masks).mean())
        rows.append((level, float(sparsity[level]), tuple(float(f) for f in per_layer), overall))
        first_masks = masks[0]
    inputs: tuple[tuple[str, float], ...] = ()
    if first_masks is not None:
        kept = structure.input_connection_fractions(first_masks).mean(axis=0)
        inputs = tuple((name, float(k)) for name, k in zip(run.attrs.get("input_names", []), kept))
    return LayersView(tuple(rows), run.n_layers, inputs, nets.stop)


def load_run_view(runs_dir: Path, run_id: str, sample_nets: int = SAMPLE_NETS) -> RunView:
    """The run screen's view of `<runs_dir>/<run_id>` (reads the store: call from a worker)."""
    from core.analysis.store import EXTRAPOLATION, load_analysis  # numpy + zarr only

    run = open_run(runs_dir, run_id)
    config, sparsity, losses = run.config, run.sparsity, run.losses("val")
    found = load_analysis(run)
    scales = load_analysis(run, EXTRAPOLATION)
    return RunView(run_id=run_id, config=config, sparsity=sparsity, losses=losses,
                   levels_complete=losses.shape[0],
                   selection=select(losses, sparsity, config.threshold, split="val", run=run_id),
                   layers=layers_view(run, sparsity, sample_nets),
                   analysis=None if found is None else AnalysisSummary.from_dict(found.summary),
                   extrapolation=None if scales is None else scales.summary)


@dataclass(frozen=True)
class WeightsView:
    """The values of one level's weights over the first `sampled` networks (the histogram's data)."""

    level: int
    sparsity: float
    weights: np.ndarray
    sampled: int

    @property
    def caption(self) -> str:
        # short enough for an 80-column plot (plotext drops a title wider than the plot)
        return f"level {self.level} · target {self.sparsity:.2f} · {self.sampled} nets · [ ] other level"


def load_weights_view(runs_dir: Path, run_id: str, level: int, sample_nets: int = SAMPLE_NETS) -> WeightsView:
    """One completed level's weights, read with the store's damage checks (`Run.level`)."""
    run = open_run(runs_dir, run_id)
    nets = slice(0, min(sample_nets, run.nets))
    stored = run.level(level, nets)
    weights = np.concatenate([np.asarray(w).ravel() for w in stored.weights])
    return WeightsView(level, float(run.sparsity[level]), weights, nets.stop)


# ---- the picker -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PickerView:
    """What the picker selects from: every split's losses at the completed levels."""

    status: str
    levels_complete: int
    threshold: float
    """The run's configured threshold (the picker's starting value)."""
    sparsity: np.ndarray
    losses: dict[str, np.ndarray]
    nets: int


def load_picker_view(runs_dir: Path, run_id: str) -> PickerView:
    run = open_run(runs_dir, run_id)
    return PickerView(run.status, run.levels_complete, float(run.config.threshold), run.sparsity,
                      {s: run.losses(s) for s in SPLITS}, run.nets)


# ---- the analysis step's results ---------------------------------------------------------------

#: (column header, its values per level in a summary (an empty list: not stored), formatter) of the
#: per-level analysis table, in display order. `remaining_mean` is (L, K) per layer: the table shows
#: the mean over layers; `noise_loss_median` is (S, L): the table shows the largest noise level.
ANALYSIS_COLUMNS: tuple[tuple[str, Callable[[AnalysisSummary], list], Callable[[Any], str]], ...] = (
    ("kept", lambda s: s.remaining_mean, lambda v: f"{float(np.mean(v)):.3f}"),
    ("ghosts", lambda s: s.ghosts_mean, lambda v: f"{float(np.sum(v)):.1f}"),
    ("eval loss", lambda s: s.performance.eval_loss_median if s.performance else [], lambda v: fmt_loss(v)),
    ("noisy loss", lambda s: s.performance.noise_loss_median[-1] if s.performance and s.performance.noise_loss_median
     else [], lambda v: fmt_loss(v)),
    ("flight cm", lambda s: s.performance.flight_position_cm_median if s.performance else [],
     lambda v: "–" if v is None else f"{float(v):.3g}"),
    ("flown", lambda s: s.performance.flight_valid_fraction if s.performance else [],
     lambda v: "–" if v is None else f"{float(v):.0%}"),
)


def analysis_table(summary: AnalysisSummary) -> tuple[list[str], list[list[str]], str]:
    """(columns, rows, notes) of a stored analysis summary (core.analysis), one row per level;
    a column for each of ANALYSIS_COLUMNS the summary has."""
    levels = summary.levels
    sparsity: list[float | None] = [*summary.sparsity] or [None] * levels
    present = [(header, values(summary), fmt) for header, values, fmt in ANALYSIS_COLUMNS if values(summary)]
    columns = ["level", "target", *(header for header, _, _ in present)]
    rows = []
    for level in range(levels):
        target = sparsity[level]
        row = [str(level), "–" if target is None else f"{target:.2f}"]
        for _, values, fmt in present:
            try:
                row.append(fmt(values[level]))
            except (TypeError, ValueError):
                row.append("–")
        rows.append(row)
    notes = []
    perf = summary.performance
    if perf and perf.noise_sigma:
        notes.append(f"noisy loss: input noise σ = {perf.noise_sigma[-1]:g} (scaled units)")
    if perf and perf.replay_position_cm_median is not None:
        notes.append(f"flight cm: median position error flying the predicted controls; "
                     f"the dataset's own controls give {perf.replay_position_cm_median:.3g} cm")
    names, fractions = summary.input_names, summary.input_connections_fraction
    if names and fractions:
        last = fractions[-1]
        notes.append("first-layer connections kept per input at the last level: " +
                     "  ".join(f"{n} {float(f):.0%}" for n, f in zip(names, last)))
    return columns, rows, "\n".join(notes)


# ---- motifs (stored with the analysis) -----------------------------------------------------------

#: Short column headers of the motif table, by the stored motif names (core.analysis.motifs.MOTIFS).
MOTIF_HEADERS = {"diverging2": "div 2", "converging2": "conv 2", "chain2": "chain 2",
                 "diverging3": "div 3", "converging3": "conv 3"}


def motif_table(summary: AnalysisSummary | None) -> tuple[list[str], list[list[str]], str]:
    """(columns, rows, note) of the motifs' median z-score over the networks, one row per level.

    `edges` has no column: the null model keeps every layer's weights, so its z is undefined.
    Without stored motifs (an analysis from before they were counted) there are no rows and the
    note says how to get them.
    """
    motifs = summary.motifs if summary is not None else None
    if motifs is None:
        return [], [], "the stored analysis predates the motif counts: a analyses again (or mothtui analyze RUN)"
    names, z, samples = motifs.names, motifs.z_median, motifs.samples
    shown = [i for i, name in enumerate(names) if name in MOTIF_HEADERS]
    sparsity: list[float | None] = [*summary.sparsity] if summary is not None and summary.sparsity else [None] * len(z)
    columns = ["level", "target", *(MOTIF_HEADERS[names[i]] for i in shown)]
    rows = []
    for level, row in enumerate(z):
        target = "–" if sparsity[level] is None else f"{sparsity[level]:.2f}"
        rows.append([str(level), target, *("–" if row[i] is None else f"{row[i]:+.1f}" for i in shown)])
    if not samples:
        note = "counted without random networks (--motif-samples 0): no z-scores"
    else:
        note = (f"median z over the networks vs {samples:,} random networks each (same live units, weights "
                f"per layer) · div/conv 2, 3: pairs, triples leaving/entering a unit · chain 2: a→b→c")
    return columns, rows, note
