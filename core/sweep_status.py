"""Where each sweep of a store stands: members done of total, running, failed, and an ETA.

The runs list (`mothtui runs`, its `--json`, the app) groups a sweep's runs under one line built from
this. The ETA: each running run's own (its engine's ETA, `core.engine.eta`, from its latest progress
event), then the runs still waiting at the mean duration of the sweep's finished runs (as the queue
timed them; before one has finished, the duration the running ones are heading for), divided by
the runs the queue runs at once. None before any run reported progress (and for a SLURM sweep,
which the cluster's scheduler times). Pure standard library.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.events import latest_eta
from core.formatting import fmt_duration
from core.queue import QueueState, read_queue
from core.runlist import RunSummary, run_path
from core.sweep import SweepRecord, list_sweeps


@dataclass(frozen=True)
class SweepStatus:
    name: str
    total: int
    done: int
    running: int
    failed: int
    queued: int
    eta_s: float | None
    where: str
    keys: tuple[str, ...] = ()
    """The swept keys (the sweep record's)."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "total": self.total, "done": self.done, "running": self.running,
                "failed": self.failed, "queued": self.queued,
                "eta_s": None if self.eta_s is None else round(self.eta_s), "where": self.where,
                "keys": list(self.keys)}

    def summary(self) -> str:
        """`2/4 done · 1 running · 1 queued · ETA 16m00s`: the sweep's line in `runs` and in the app."""
        parts = [f"{self.done}/{self.total} done"]
        parts += [f"{n} {what}" for n, what in ((self.running, "running"), (self.queued, "queued"),
                                                 (self.failed, "failed")) if n]
        if self.eta_s is not None and self.done < self.total:
            parts.append(f"ETA {fmt_duration(self.eta_s)}")
        if self.where != "queue":
            parts.append(self.where.replace("slurm:", "SLURM "))
        return " · ".join(parts)


def _time(text: str | None) -> float | None:
    try:
        return _dt.datetime.fromisoformat(text).timestamp() if text else None
    except ValueError:
        return None


def _eta(record: SweepRecord, state: QueueState, runs_dir: Path, now: float) -> float | None:
    entries = [e for e in state.entries if e.sweep == record.name]
    spans = [(_time(e.ended) or 0) - (_time(e.started) or 0) for e in entries
             if e.state == "done" and _time(e.started) and _time(e.ended)]
    running = [e for e in entries if e.state == "running"]
    own = {}  # a running run's own ETA (its engine's, from its latest progress event), aged to now
    for e in running:
        latest = latest_eta(run_path(runs_dir, e.run))
        if latest is not None:
            own[e.run] = max(0.0, latest[1] - (now - latest[0]))
    if not spans:  # no member finished yet: a run takes what the running ones will have taken
        spans = [now - (_time(e.started) or now) + own[e.run] for e in running if e.run in own]
    if not spans:
        return None
    mean = sum(spans) / len(spans)
    waiting = sum(1 for e in entries if e.state in ("queued", "paused"))
    left_running = sum(own.get(e.run, max(0.0, mean - (now - (_time(e.started) or now)))) for e in running)
    parallel = max(1, state.parallel or 1)
    return left_running / max(1, len(running)) + waiting * mean / parallel


def sweep_statuses(runs_dir: Path | str, summaries: list[RunSummary],
                   now: float | None = None) -> list[SweepStatus]:
    """One status per sweep record of the store, from the runs' own statuses and the queue."""
    records = list_sweeps(runs_dir)
    if not records:
        return []
    now = _dt.datetime.now().timestamp() if now is None else now
    by_id = {s.run_id: s for s in summaries}
    try:
        state = read_queue(runs_dir)
    except Exception:  # an unreadable queue must not hide the runs list
        state = QueueState()
    out = []
    for record in records:
        statuses = [by_id[r].status if r in by_id else "not started" for r in record.run_ids]
        queued = sum(1 for e in state.entries if e.sweep == record.name and e.state in ("queued", "paused"))
        out.append(SweepStatus(record.name, len(statuses), statuses.count("done"),
                               sum(s in ("running", "starting") for s in statuses),
                               sum(s in ("failed", "interrupted", "cancelled", "damaged") for s in statuses),
                               queued, _eta(record, state, Path(runs_dir), now) if record.where == "queue" else None,
                               record.where, tuple(record.keys)))
    return out
