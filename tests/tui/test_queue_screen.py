"""The queue screen (`Q`): the real app on a real queue, driven by keys; `r` starts a real supervisor."""

from __future__ import annotations

import asyncio
import time

import pytest

from core import queue as q
from mothtui.screens.queue import QueueScreen
from tui.helpers import make_app, settle

pytestmark = pytest.mark.asyncio


def _rows(screen) -> list[tuple[str, str]]:
    table = screen.query_one("#queue-table")
    return [(table.get_row(key)[1], table.get_row(key)[3]) for key in table.rows]


async def _until(pilot, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await settle(pilot)
        if predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out: {q.read_queue(pilot.app.runs_dir).to_dict()}")


async def test_queue_screen_keys_act_on_the_queue(runs_dir):
    q.pause(runs_dir)  # paused: nothing starts until `r`
    bad = ["--preset", "no-such-preset"]  # each fails at once when its turn comes (no training here)
    q.enqueue(runs_dir, [q.Entry(f"run{i}", bad, sweep="sw") for i in range(3)])
    app = make_app(runs_dir)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.press("Q")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await _until(pilot, lambda: _rows(screen) == [("run0", "queued"), ("run1", "queued"), ("run2", "queued")])
        assert "PAUSED" in str(screen.query_one("#queue-head").render())

        await pilot.press("j", "j", "K")  # run2 up one place
        await _until(pilot, lambda: [r for r, _ in _rows(screen)] == ["run0", "run2", "run1"])
        assert [e.run for e in q.read_queue(runs_dir).entries] == ["run0", "run2", "run1"]

        screen.query_one("#queue-table").move_cursor(row=0)
        await pilot.press("x")  # cancel run0
        await _until(pilot, lambda: q.read_queue(runs_dir).find("run0").state == "cancelled")

        await pilot.press("r")  # resume: a real supervisor runs the rest; each fails and the queue goes on
        await _until(pilot, lambda: all(e.state in q.FINAL for e in q.read_queue(runs_dir).entries))
        state = q.read_queue(runs_dir)
        assert [e.state for e in state.entries] == ["cancelled", "failed", "failed"] and not state.paused
        assert "no-such-preset" in state.find("run1").reason
        await _until(pilot, lambda: ("run1", "failed") in _rows(screen))

        await pilot.press("escape")
        assert not isinstance(app.screen, QueueScreen)


async def test_palette_compares_a_whole_sweep(runs_dir):
    """`Compare sweep NAME` in the command palette opens the comparison of the sweep's runs with a level."""
    from core.sweep import SweepSpec, plan_sweep, write_sweep
    from fixture_runs import make_fixture_run
    from mothtui.screens.compare import CompareScreen

    write_sweep(runs_dir, plan_sweep(runs_dir, SweepSpec.build("smoke", None, [], ["seed=1,2,3"]), "sw"))
    make_fixture_run(runs_dir, "sw-01", seed=1)
    make_fixture_run(runs_dir, "sw-02", seed=2)  # sw-03 not started yet: left out
    app = make_app(runs_dir)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert "Compare sweep sw" in commands  # what the palette lists and runs (the palette itself is Textual's)
        commands["Compare sweep sw"].callback()
        await settle(pilot, 0.5)
        assert isinstance(app.screen, CompareScreen)
        assert app.screen.names == ["sw"]
        assert [r.run_id for r in app.screen.comparison.runs] == ["sw-01", "sw-02"]


async def test_runs_list_groups_a_sweep_and_compares_it_against_its_key(runs_dir):
    """A sweep's runs sit under one line (done/total, the swept key) that enter folds and unfolds;
    C on that line opens the comparison on the sweep tab: chosen sparsity per value of the key."""
    from core.sweep import SweepSpec, plan_sweep, write_sweep
    from fixture_runs import make_fixture_run
    from mothtui.screens.compare import CompareScreen
    from mothtui.screens.runs import RunsScreen

    write_sweep(runs_dir, plan_sweep(runs_dir, SweepSpec.build("smoke", None, [], ["seed=1,2,3"]), "sw"))
    for i in (1, 2):
        make_fixture_run(runs_dir, f"sw-0{i}", seed=i, created=f"2026-12-01T10:0{i}:00+00:00").set_attrs(sweep="sw")
    make_fixture_run(runs_dir, "alone", created="2026-12-01T09:00:00+00:00")
    app = make_app(runs_dir)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)

        def rows():
            table = screen.query_one("#runs-table")
            return [str(table.get_row(k)[0]).strip() + " | " + str(table.get_row(k)[1]) for k in table.rows]

        await _until(pilot, lambda: any("sweep sw" in r for r in rows()))
        assert rows() == ["▾ sweep sw | 2/3 done", "sw-02 | ✓ done", "sw-01 | ✓ done", "alone | ✓ done"], rows()
        assert screen.query_one("#runs-table").get_row(".sweep/sw")[3] == "seed"  # the swept key as its setup
        screen.query_one("#runs-table").move_cursor(row=0)
        await pilot.press("enter")  # fold: the sweep's line alone
        await settle(pilot)
        assert rows() == ["▸ sweep sw | 2/3 done", "alone | ✓ done"]
        assert screen.selected_id() is None and screen.selected_sweep() == "sw"
        await pilot.press("C")
        await _until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.comparison is not None)
        compare = app.screen
        assert compare.query_one("#compare-tabs").active == "sweep"
        table = compare.query_one("#compare-sweep-table")
        values = [(table.get_row(k)[1], table.get_row(k)[2], table.get_row(k)[5]) for k in table.rows]
        assert values == [("seed", "1", "4/4"), ("seed", "2", "4/4")], values
