"""What the screens show, computed from the run store: pure Python + numpy, no textual, no jax.

The screens stay thin by asking this module for rows, selections and progress, so the logic is
testable without a terminal. Selection itself is `core.select` (the single source of the rule).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.events import EVENTS_FILE
from core.runstore import RunSummary, disk_usage, list_runs, open_run
from core.select import select
from mothtui.fmt import fmt_duration, fmt_loss, fmt_rate, fmt_threshold

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


def event_span(run_dir: Path) -> tuple[float | None, float | None, bool]:
    """(first event time, last event time, ended) from a run's event file, reading only its ends."""
    path = Path(run_dir) / EVENTS_FILE
    try:
        with open(path, "rb") as f:
            first_line = f.readline()
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - 4096))
            tail = f.read().splitlines()
    except OSError:
        return None, None, False
    first = _event_time(first_line)
    last, ended = None, False
    for line in reversed(tail):
        record = _event(line)
        if record is not None:
            last, ended = record.get("t"), record.get("event") == "run_end"
            break
    return first, last, ended


def _event(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _event_time(line: bytes) -> float | None:
    record = _event(line)
    return record.get("t") if record else None


class RunsModel:
    """The runs table's data: summaries plus the slower columns, cached per run state."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = Path(runs_dir)
        self._chosen: dict[tuple, str] = {}
        self._disk: dict[str, tuple[tuple, int]] = {}  # run id -> (state it was measured in, bytes)

    def rows(self, now: float | None = None, *, quick: bool = False) -> list[RunRow]:
        """Every run's row. `quick`: only what zarr.json tells (the first paint), `…` for the rest."""
        return [self.row(s, now, quick=quick) for s in list_runs(self.runs_dir)]

    def row(self, summary: RunSummary, now: float | None = None, *, quick: bool = False) -> RunRow:
        if summary.damaged:
            reason = summary.damaged.replace("store unreadable: ", "unreadable ")
            return RunRow(summary, chosen=_clip(reason, DAMAGED_WIDTH), disk_bytes=self._disk_bytes(summary, quick))
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

@dataclass
class Progress:
    """The latest state of a run as told by its events (core/events.py's schema)."""

    nets: int | None = None
    levels: int | None = None
    level: int | None = None
    sparsity: float | None = None
    step: int | None = None
    max_steps: int | None = None
    active: int | None = None
    losses: list[float | None] = field(default_factory=list)
    samples_per_s: float | None = None
    eta_s: float | None = None
    stopped_early: int | None = None
    diverged: int | None = None
    status: str | None = None
    message: str | None = None
    last_t: float | None = None
    events: int = 0
    devices: int | None = None       # devices the engine uses (run_start)
    device_kind: str | None = None   # their kind, e.g. "cpu", "NVIDIA H200" (run_start, newer engines)

    def feed(self, events: list[dict[str, Any]]) -> bool:
        """Apply new events; True if anything changed."""
        for ev in events:
            self.events += 1
            self.last_t = ev.get("t", self.last_t)
            kind = ev.get("event")
            if kind == "run_start":
                self.nets, self.levels = ev.get("nets", self.nets), ev.get("levels", self.levels)
                self.status, self.message = "running", None
                self.devices, self.device_kind = ev.get("devices", self.devices), ev.get("device_kind")
            elif kind == "level_start":
                self.level, self.sparsity = ev.get("level"), ev.get("sparsity")
                self.step, self.max_steps = 0, ev.get("max_steps")
                self.active, self.losses = self.nets, []
            elif kind == "progress":
                self.level = ev.get("level", self.level)
                self.step, self.max_steps = ev.get("step"), ev.get("max_steps", self.max_steps)
                self.active = ev.get("active", self.active)
                self.losses = list(ev.get("loss") or [])
                self.samples_per_s, self.eta_s = ev.get("samples_per_s"), ev.get("eta_s")
            elif kind == "level_end":
                self.stopped_early, self.diverged = ev.get("stopped_early"), ev.get("diverged")
            elif kind == "run_end":
                self.status, self.message = ev.get("status"), ev.get("message")
                # nothing trains any more: keep the last level's numbers, drop the live ones
                self.active = self.samples_per_s = self.eta_s = None
        return bool(events)

    def loss_stats(self) -> tuple[float | None, float | None, float | None]:
        """(median, p10, p90) of the per-network training losses of the latest progress event."""
        values = np.array([v for v in self.losses if v is not None and math.isfinite(v)], dtype=float)
        if values.size == 0:
            return None, None, None
        p10, med, p90 = np.percentile(values, [10, 50, 90])
        return float(med), float(p10), float(p90)

    def line(self) -> str:
        """One status line: `level 11/18 · 92 % · step 3,400 · 61k samples/s · ETA 38 min`."""
        if self.level is None:
            return "starting…" if self.status in (None, "running") else (self.status or "")
        # as the runs table's "levels 11/18": training level index 11 of 18 levels, 11 done
        parts = [f"level {self.level}/{self.levels if self.levels is not None else '?'}"]
        if self.sparsity is not None:
            parts.append(f"{self.sparsity * 100:.0f} %")
        if self.step is not None:
            parts.append(f"step {self.step:,}" + (f" / ≤ {self.max_steps:,}" if self.max_steps else ""))
        if self.samples_per_s is not None:
            parts.append(fmt_rate(self.samples_per_s))
        if self.eta_s is not None:
            parts.append(f"ETA {fmt_duration(self.eta_s)}")
        if self.status and self.status != "running":
            parts.append(self.status)
        return " · ".join(parts)


def input_connections(first_layer_mask: np.ndarray, names: list[str]) -> list[tuple[str, float]]:
    """Remaining fraction of each input's outgoing weights. first_layer_mask: (N, in, out) bool."""
    kept = first_layer_mask.mean(axis=(0, 2)) if first_layer_mask.size else np.zeros(len(names))
    return [(name, float(k)) for name, k in zip(names, kept)]


# ---- the analysis step's results ---------------------------------------------------------------

#: (summary key, column header, formatter) of the per-level analysis table, in display order.
ANALYSIS_COLUMNS = (
    ("remaining_mean", "kept", lambda v: f"{float(np.mean(v)):.3f}"),
    ("ghosts_mean", "ghosts", lambda v: f"{float(np.sum(v)):.1f}"),
    ("eval_loss_median", "eval loss", lambda v: fmt_loss(v)),
    ("noise_loss_median", "noisy loss", lambda v: fmt_loss(v)),
    ("flight_position_cm_median", "flight cm", lambda v: "–" if v is None else f"{float(v):.3g}"),
    ("flight_valid_fraction", "flown", lambda v: "–" if v is None else f"{float(v):.0%}"),
)


def analysis_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]], str]:
    """(columns, rows, notes) of a stored analysis summary (core.analysis), one row per level.

    `noise_loss_median` is (S, L): the table shows the largest noise level; `remaining_mean` is
    (L, K) per layer: the table shows the mean over layers.
    """
    levels = int(summary.get("levels") or 0)
    sparsity = summary.get("sparsity") or [None] * levels
    present = [(key, header, fmt) for key, header, fmt in ANALYSIS_COLUMNS if summary.get(key) is not None]
    columns = ["level", "target", *(header for _, header, _ in present)]
    rows = []
    for level in range(levels):
        row = [str(level), "–" if sparsity[level] is None else f"{sparsity[level]:.2f}"]
        for key, _, fmt in present:
            value = summary[key]
            if key == "noise_loss_median":
                value = value[-1][level] if value else None
            else:
                value = value[level]
            try:
                row.append(fmt(value))
            except (TypeError, ValueError):
                row.append("–")
        rows.append(row)
    notes = []
    if summary.get("noise_sigma"):
        notes.append(f"noisy loss: input noise σ = {summary['noise_sigma'][-1]:g} (scaled units)")
    if summary.get("replay_position_cm_median") is not None:
        notes.append(f"flight cm: median position error flying the predicted controls; "
                     f"the dataset's own controls give {summary['replay_position_cm_median']:.3g} cm")
    names, fractions = summary.get("input_names"), summary.get("input_connections_fraction")
    if names and fractions:
        last = fractions[-1]
        notes.append("first-layer connections kept per input at the last level: " +
                     "  ".join(f"{n} {float(f):.0%}" for n, f in zip(names, last)))
    return columns, rows, "\n".join(notes)
