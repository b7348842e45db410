"""Pilot tests of the study workbench: marking runs and comparing them, the analysis started from
the run screen as a supervised job (the tab fills in when it ends, and it can be cancelled)."""

from __future__ import annotations

import asyncio
import signal
import time

import numpy as np
import pytest

from core.runstore import open_run
from core.select import select
from mothtui.screens.compare import CompareScreen
from mothtui.screens.dialogs import ConfirmDialog
from mothtui.screens.run import RunScreen
from mothtui.screens.runs import RunsScreen
from fixture_runs import make_fixture_run
from tui.helpers import make_app, settle

pytestmark = pytest.mark.asyncio


def cells(table) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def wait_for(pilot, done, timeout: float, what: str) -> None:
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not within {timeout}s")
        await pilot.pause(0.2)


async def test_mark_two_runs_and_compare(store):
    app = make_app(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        runs = app.screen
        await pilot.press("C")                       # nothing marked: nothing to compare
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("space")                   # alpha (newest first), the cursor moves on
        await pilot.press("space")                   # beta
        await settle(pilot)
        assert runs.marked == ["alpha", "beta"]
        labels = [str(runs.query_one("#runs-table").get_row_at(i)[0]) for i in range(2)]
        assert labels == ["◆ alpha", "◆ beta"]  # the mark is not the running symbol ●
        assert "2 marked" in str(runs.query_one("#runs-header").render())
        await pilot.press("C")
        await settle(pilot, 0.3)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await wait_for(pilot, lambda: screen.comparison is not None, 20, "the comparison")
        await settle(pilot, 1.2)

        # the overlay: one coloured median line and one legend entry per run, bands without entries
        plot = screen.query_one("#compare-loss")
        labelled = [s for s in plot.series if s.label]
        assert [s.label for s in labelled] == ["alpha", "beta"]
        assert labelled[0].color != labelled[1].color
        assert len(plot.series) == 6
        drawn = plot.plt.build()
        assert "alpha" in drawn and "beta" in drawn   # the legend is in the chart itself
        alpha = open_run(store, "alpha")
        np.testing.assert_allclose(10 ** np.asarray(labelled[0].y), np.median(alpha.losses("val"), axis=1))

        # the config diff shows only the keys that differ (the fixtures differ in seed and nets)
        config = cells(screen.query_one("#compare-config"))
        assert [row[0] for row in config] == ["seed", "nets"]
        assert config[1][1:] == ["4", "6"]
        await pilot.press("d")                       # everything, what differs marked
        await settle(pilot)
        every = cells(screen.query_one("#compare-config"))
        assert len(every) > 10 and ["≠ nets", "4", "6"] in every and ["hidden", "8-8", "8-8"] in every

        # the histograms, side by side, equal the selection rule applied by hand
        table = cells(screen.query_one("#compare-histogram"))
        for column, run_id in ((1, "alpha"), (2, "beta")):
            run = open_run(store, run_id)
            levels = select(run.losses("val"), run.sparsity, 1e-3).levels
            for row in table:
                if row[0] in ("none", "median"):
                    continue
                expected = sum(1 for lvl in levels if lvl is not None and f"{run.sparsity[lvl]:.2f}" == row[0])
                assert int(row[column].split()[-1]) == expected, (run_id, row)
            none = next(row for row in table if row[0] == "none")
            assert int(none[column]) == sum(lvl is None for lvl in levels)
        await pilot.press("4")
        await settle(pilot)
        structure = cells(screen.query_one("#compare-structure"))
        assert structure[1][0] == "layer 0 kept" and any(r[0] == "phi_0 connections" for r in structure)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)


def _run_with_dataset(runs_dir, tmp_path, nets=2, schedule=(0.5, 0.8), hidden=(8, 8)):
    """A fixture run on a small stand-in dataset (tests/core/engine_fixtures.py) of 1,000 rows."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "engine_fixtures", Path(__file__).resolve().parents[1] / "core" / "engine_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    write_dataset = module.write_dataset

    run = make_fixture_run(runs_dir, "withdata", nets=nets, hidden=hidden, schedule=schedule)
    dataset = write_dataset(tmp_path / "dataset", n=1000, seed=0)
    run.set_attrs(dataset=str(dataset))   # its rows: train 0-640, val 640-800, test 800-1000
    return run


@pytest.mark.slow
async def test_analysis_started_from_the_run_screen_fills_the_tab(runs_dir, tmp_path):
    run = _run_with_dataset(runs_dir, tmp_path)
    app = make_app(runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        assert "press a to analyze" in str(screen.query_one("#run-analysis").render())
        await pilot.press("a")
        await wait_for(pilot, lambda: app.jobs.jobs.get("withdata") is not None, 10, "the job")
        job = app.jobs.jobs["withdata"]
        assert job.kind == "analyze" and screen.query_one("#run-analysis-table").display is False
        seen_step = False
        start = time.monotonic()
        while job.process.returncode is None and time.monotonic() - start < 240:
            seen_step |= "analyze running" in str(screen.query_one("#run-step").render())
            await pilot.pause(0.2)
        assert job.process.returncode == 0, app.jobs.log_tail("withdata", 20)
        assert seen_step
        table = screen.query_one("#run-analysis-table")
        await wait_for(pilot, lambda: table.display and table.row_count == 3, 10, "the analysis tab")
        await settle(pilot, 1.2)
        noise = screen.query_one("#run-noise")
        assert [s.label for s in noise.series] == ["no noise", "σ 0.01", "σ 0.03", "σ 0.1"]
        assert screen.query_one("#run-flight").series and str(screen.query_one("#run-step").render()) == ""
        stored = run.path / "analysis" / "zarr.json"
        assert stored.exists()
        await pilot.press("6")                        # the motifs the same job counted
        await settle(pilot)
        motifs = screen.query_one("#run-motifs")
        assert motifs.display and motifs.row_count == 3 and [c.label.plain for c in motifs.columns.values()][2] == "div 2"
        assert "1,000 random networks" in str(screen.query_one("#run-motifs-note").render())


@pytest.mark.slow
async def test_an_analysis_started_from_the_app_survives_it_and_can_be_cancelled(runs_dir, tmp_path):
    # an analysis long enough to outlive one app and be cancelled from the next (its programs may come
    # from the session's compilation cache, so it is sized by its work: 64 networks, 9 levels, about
    # 8 s of analysis on the 2-core machine)
    _run_with_dataset(runs_dir, tmp_path, nets=64, hidden=(32, 32),
                      schedule=(0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95))
    app = make_app(runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: app.jobs.jobs.get("withdata") is not None, 10, "the job")
        job = app.jobs.jobs["withdata"]
        await wait_for(pilot, lambda: (runs_dir / "withdata" / "owner.json").exists()
                       and app.screen.held is not None, 60, "the analysis to claim the run")
    # the app has quit; the analysis runs on in its own session, and a new app sees and cancels it
    assert job.process.returncode is None
    app = make_app(runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot, 1.2)
        screen = app.screen
        assert "analyze running" in str(screen.query_one("#run-step").render())
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await pilot.pause()
    assert await asyncio.wait_for(job.process.wait(), 20) == -signal.SIGTERM
    assert not (runs_dir / "withdata" / "analysis" / "zarr.json").exists() or \
        '"complete": true' not in (runs_dir / "withdata" / "analysis" / "zarr.json").read_text()


async def test_the_run_screen_shows_the_training_curve_of_the_level_in_training(runs_dir):
    from core.events import EventWriter

    run = make_fixture_run(runs_dir, "curve", nets=3, levels_complete=2)
    events = EventWriter(run.path)
    events.emit("run_start", run="curve", nets=3, levels=5, pid=None, resumed_from=None)
    events.emit("level_start", level=2, sparsity=0.8, max_steps=1000)
    app = make_app(runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        curve = screen.query_one("#run-curve")
        assert curve.display is False                         # no progress yet: the loss plot keeps the room
        for step, losses in ((100, [0.3, 0.2, 0.1]), (200, [0.2, 0.1, None]), (300, [0.05, 0.04, 0.03])):
            events.emit("progress", level=2, step=step, max_steps=1000, active=3, loss=losses,
                        samples_per_s=None, eta_s=None)
        await pilot.pause(0.5)                                # tailed at 4 Hz
        await settle(pilot)
        assert curve.display is True
        median = next(s for s in curve.series if s.label == "median")
        assert median.x == [100, 200, 300]
        np.testing.assert_allclose(10 ** np.asarray(median.y), [0.2, 0.15, 0.04])
        assert "level 2 (0.80)" in curve.title
        events.emit("level_start", level=3, sparsity=0.9, max_steps=1000)   # a new level starts afresh
        await pilot.pause(0.5)
        assert curve.display is False
