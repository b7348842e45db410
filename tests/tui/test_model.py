"""The UI's data layer without a terminal: rows, first paint, progress, thresholds, form, analysis."""

from __future__ import annotations

import shlex
import sys

import pytest

from core.analysis import AnalysisParams, analyze_run
from core.analysis.store import load_analysis
from core.analysis.summary import AnalysisSummary
from core.config import ConfigError, resolve
from core.events import EventTail, EventWriter, event_span, fold
from core.formatting import fmt_duration, fmt_loss, fmt_threshold
from core.runstore import open_run
from core.runlist import new_run_id
from mothtui import cmdline
from mothtui.jobs import resume_command, train_command
from mothtui.model import RunsModel, analysis_table, motif_table, progress_line
from mothtui.screens.new_run import form_overrides
from mothtui.screens.picker import step_threshold


def test_formatting():
    assert fmt_loss(4.12e-4) == "4.1e-4" and fmt_loss(float("nan")) == "–" and fmt_loss(None) == "–"
    assert fmt_threshold(1e-3) == "1e-3" and fmt_threshold(0.1) == "1e-1" and fmt_threshold(2.5e-3) == "2.5e-3"
    assert fmt_duration(38) == "38s" and fmt_duration(725) == "12m05s" and fmt_duration(7440) == "2h04m"


def test_threshold_ladder_is_1_2_5():
    assert step_threshold(1e-3, 1) == pytest.approx(2e-3)
    assert step_threshold(2e-3, 1) == pytest.approx(5e-3)
    assert step_threshold(5e-3, 1) == pytest.approx(1e-2)
    assert step_threshold(1e-3, -1) == pytest.approx(5e-4)
    assert step_threshold(3e-3, -1) == pytest.approx(2e-3)  # a typed value steps onto the ladder


def test_rows_chosen_sparsity_and_duration(store):
    events = EventWriter(store / "alpha")
    first = events.emit("run_start", run="alpha", nets=4, levels=5, pid=1, resumed_from=None)
    last = events.emit("run_end", status="done", message="")
    rows = {r.run_id: r for r in RunsModel(store).rows(now=0.0)}
    assert rows["alpha"].duration == fmt_duration(last.t - first.t)
    assert rows["beta"].duration == "–"  # no events: made elsewhere
    assert rows["alpha"].chosen.endswith("@1e-3")
    assert event_span(store / "alpha")[2] is True


def test_progress_follows_the_event_schema(tmp_path):
    events = EventWriter(tmp_path)
    tail = EventTail(tmp_path)
    events.emit("run_start", run="r", nets=3, levels=4, pid=1, resumed_from=None)
    events.emit("level_start", level=1, sparsity=0.5, max_steps=800)
    events.emit("progress", level=1, step=200, max_steps=800, active=2, loss=[1e-3, 3e-3, None],
                samples_per_s=2.5e6, eta_s=90.0)
    new = tail.read()
    assert new
    p = fold(new)
    assert (p.level, p.step, p.active, p.nets) == (1, 200, 2, 3)
    med, p10, p90 = p.loss_stats()
    assert med == pytest.approx(2e-3) and p10 < med < p90
    assert progress_line(p) == "level 1/4 · 50 % · step 200 / ≤ 800 · 2.5M samples/s · ETA 1m30s"
    events.emit("level_end", level=1, sparsity=0.5, steps=[200, 200, 100], stopped_early=1, diverged=1,
                loss={"train": [0.1] * 3, "val": [0.1] * 3, "test": [0.1] * 3}, seconds=3.0)
    events.emit("run_end", status="cancelled", message="SIGTERM")
    p = fold(tail.read(), p)
    assert (p.stopped_early, p.diverged, p.status, p.message) == (1, 1, "cancelled", "SIGTERM")
    assert (p.active, p.samples_per_s, p.eta_s) == (None, None, None)  # nothing trains once it ended
    assert progress_line(p) == "level 1/4 · 50 % · step 200 / ≤ 800 · cancelled"
    assert not tail.read()


def test_new_run_form_overrides_only_what_changed():
    fields = {k: v for k, v in {"nets": "2", "hidden": "16, 16", "schedule": "0.5, 0.7, 0.9",
                                 "threshold": "0.1"}.items()}
    items = form_overrides("smoke", fields, "pruning=global; prune_biases=true")
    assert items == ["schedule=[0.5, 0.7, 0.9]", "pruning=global", "prune_biases=true"]
    cfg = resolve("smoke", overrides=items)
    assert cfg.schedule == (0.5, 0.7, 0.9) and cfg.pruning == "global" and cfg.prune_biases
    with pytest.raises(ConfigError, match="hidden"):
        resolve("smoke", overrides=form_overrides("smoke", {"hidden": "16, x"}, ""))


def test_engine_command_lines(tmp_path):
    cmd = train_command(tmp_path, "r1", "smoke", ["nets=3"])
    assert cmd[:4] == [sys.executable, "-m", "core", "train"]
    assert cmd[4:] == ["--preset", "smoke", "--set", "nets=3", "--runs", str(tmp_path), "--id", "r1", "--quiet"]
    assert resume_command(tmp_path, "r1")[3:] == ["resume", "r1", "--runs", str(tmp_path), "--quiet"]
    import datetime as dt

    when = dt.datetime(2026, 11, 24, 9, 12, 33)
    (tmp_path / "2026-11-24_091233_smoke").mkdir()
    assert new_run_id(tmp_path, "smoke", when) == "2026-11-24_091233_smoke-2"


def test_analysis_table_from_a_stored_analysis(store):
    run = open_run(store, "alpha")
    analyze_run(run, AnalysisParams(performance=False))
    summary = AnalysisSummary.from_dict(load_analysis(run).summary)
    columns, rows, notes = analysis_table(summary)
    assert columns[:4] == ["level", "target", "kept", "ghosts"]
    assert len(rows) == run.levels_complete
    kept = [float(r[2]) for r in rows]
    assert kept[0] == pytest.approx(1.0) and kept == sorted(kept, reverse=True)
    assert "thetad_0" in notes


def test_one_command_line_builder_quotes_for_the_shell(tmp_path):
    """What the form shows (`shell()`) is what the app runs (`argv()`), less the log-only `--quiet`."""
    line = cmdline.train(tmp_path / "my runs", "smoke", ["schedule=[0.5, 0.7, 0.9]", "nets=3"], "r 1")
    shown = line.shell()
    assert "'schedule=[0.5, 0.7, 0.9]'" in shown and f"'{tmp_path / 'my runs'}'" in shown
    assert shlex.split(shown)[0] == "mothtui"
    assert line.argv() == [sys.executable, "-m", "core", *shlex.split(shown)[1:], "--quiet"]
    assert train_command(tmp_path, "r1", "smoke", ["nets=3"]) == cmdline.train(tmp_path, "smoke", ["nets=3"], "r1").argv()
    assert resume_command(tmp_path, "r1") == [sys.executable, "-m", "core", "resume", "r1", "--runs", str(tmp_path),
                                              "--quiet"]


def test_log_ticks_label_the_threshold_row_and_stay_inside_the_data():
    from mothtui.widgets.plots import _log_ticks, nice_ticks

    class Plt:
        def yticks(self, ticks, labels):
            self.ticks, self.labels = ticks, labels

    plt = Plt()
    _log_ticks(plt, [-3.3, -2.4], [-3.0], rows=3, keep=-3.0)  # 1e-3 line; 2e-3 would share its row
    assert "1e-3" in plt.labels and "2e-3" not in plt.labels
    _log_ticks(plt, [-4.2, -1.1], rows=10)
    assert min(plt.ticks) >= -4.2 and max(plt.ticks) <= -1.1  # none outside: no label on a wrong row
    ticks = nice_ticks(100, 13712, 5)
    assert all(isinstance(t, int) and t % 1000 == 0 for t in ticks) and 3 <= len(ticks) <= 7


def test_end_line_says_the_status_once():
    from mothtui.fmt import end_line

    assert end_line("cancelled", "cancelled; 0 levels complete, resume with x") == \
        "✗ cancelled: 0 levels complete, resume with x"
    assert end_line("done", "5 levels complete") == "✓ done: 5 levels complete"
    assert end_line("failed", None) == "✗ failed"


def test_motif_table_from_a_stored_analysis(store):
    run = open_run(store, "alpha")
    analyze_run(run, AnalysisParams(performance=False, motif_samples=30))
    stored = load_analysis(run).summary
    summary = AnalysisSummary.from_dict(stored)
    columns, rows, note = motif_table(summary)
    assert columns == ["level", "target", "div 2", "conv 2", "chain 2", "div 3", "conv 3"]   # edges: no z
    assert len(rows) == run.levels_complete and "30 random networks" in note
    z = stored["motif_z_median"]
    assert rows[-1][2] == ("–" if z[-1][1] is None else f"{z[-1][1]:+.1f}")
    older = AnalysisSummary.from_dict({**stored, "motif_names": None})             # an older analysis
    assert older.motifs is None and motif_table(older)[1] == []
    assert "no z-scores" in motif_table(AnalysisSummary.from_dict({**stored, "motif_samples": 0}))[2]
