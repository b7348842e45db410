"""How far the ETA a run showed was from the truth, read from the run's events.

    python benchmarks/eta_accuracy.py RUN_ID [RUN_ID ...] [--runs DIR] [--json] [--replay]

For every progress event after the first completed level, the ETA it carried (`eta_s`) against the
time the run really took from then (`run_end`'s time minus the event's), as a relative error
(eta / truth - 1). Prints the median and the worst error per run, and the share of events within
±30 % (issue 20's goal). The run must have ended `done` in one go (a resumed run's clock has a gap).

`--replay` also recomputes every event's ETA with today's `core.engine.eta` from the events alone
(each level's cap from its `level_start`; a completed level's training time up to its last progress
event and its evaluation after it; the step time pooled as the engine pools it; the active networks
and their losses from the event), so a change of the predictor is measured on runs that already
ran, with their own machine's timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from core.events import read_events  # noqa: E402


def errors(run_dir: Path) -> list[tuple[float, float]]:
    """(seconds left in truth, relative error of the ETA) of each progress event after level 0 ended."""
    events = read_events(run_dir)
    end = next((e for e in reversed(events) if e.event == "run_end"), None)
    if end is None or end.status != "done":
        raise SystemExit(f"{run_dir.name}: the run has not ended done")
    first_end = next(e.t for e in events if e.event == "level_end")
    out = []
    for e in events:
        if e.event == "progress" and e.t > first_end and e.eta_s is not None:
            truth = end.t - e.t
            if truth > 1.0:
                out.append((truth, e.eta_s / truth - 1.0))
    return out


def replayed(run_dir: Path) -> list[float]:
    """The relative error of today's predictor at every progress event after level 0 ended."""
    from core.engine.eta import LevelTiming, eta_seconds, held
    from core.runstore import open_run

    config = open_run(run_dir.parent, run_dir.name).config
    events = read_events(run_dir)
    end = next(e for e in reversed(events) if e.event == "run_end")
    caps = {e.level: e.max_steps for e in events if e.event == "level_start"}
    caps_list = [caps.get(lv, caps.get(1, 0)) for lv in range(config.levels)]
    done: list[LevelTiming] = []
    start_t, first, last = {}, {}, {}
    out = []
    for e in events:
        if e.event == "level_start":
            start_t[e.level] = e.t
        elif e.event == "progress":
            first.setdefault(e.level, e)
            last[e.level] = e
            if not done:
                continue
            lv_first = first[e.level]
            seconds = sum(t.train_s for t in done) + (e.t - lv_first.t)
            steps = sum(t.steps for t in done) + (e.step - lv_first.step)
            step_s = seconds / max(steps, 1)
            active = [x is not None for x in e.loss]
            hold = held(list(e.loss), active, e.step, config.early_stop_below, config.early_stop_window)
            eta = eta_seconds(caps_list, e.level, e.step, e.active > 0, step_s, done, hold)
            truth = end.t - e.t
            if truth > 1.0:
                out.append(eta / truth - 1.0)
        elif e.event == "level_end" and e.level in last:
            train_s = last[e.level].t - start_t[e.level]
            done.append(LevelTiming(e.level, caps[e.level], max(e.steps), train_s, e.t - last[e.level].t))
    return out


def _summary(errs: list[float]) -> dict:
    return {"events": len(errs), "median_error": statistics.median(errs) if errs else None,
            "worst_error": max(errs, key=abs) if errs else None,
            "within_30_percent": sum(abs(e) <= 0.3 for e in errs) / len(errs) if errs else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_ids", nargs="+")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--replay", action="store_true", help="also today's predictor on the same events")
    args = parser.parse_args()
    report = {}
    for run_id in args.runs_ids:
        report[run_id] = _summary([err for _, err in errors(Path(args.runs) / run_id)])
        if args.replay:
            report[f"{run_id} (replayed)"] = _summary(replayed(Path(args.runs) / run_id))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for run_id, r in report.items():
            if not r["events"]:
                print(f"{run_id}: no progress events after the first level")
                continue
            print(f"{run_id}: {r['events']} ETAs after level 0; median error {r['median_error']:+.0%}, "
                  f"worst {r['worst_error']:+.0%}, within ±30 %: {r['within_30_percent']:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
