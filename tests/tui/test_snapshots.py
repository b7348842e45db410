"""SVG snapshots of every screen at 80x24 on deterministic fixture runs (pytest-textual-snapshot).

The store is opened by a relative path from a fixed working directory so the header does not
carry the temporary directory's name; the app's clock is frozen; plots draw from fixed data.
Update after an intended change with `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from mothtui.widgets.plots import REDRAW_INTERVAL_S

from tui.conftest import build_store
from tui.helpers import make_app, settle, snapshot_env

SIZE = (80, 24)


@pytest.fixture
def app(tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    build_store(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    snapshot_env(tmp_path, monkeypatch)
    return make_app(Path("runs"))


async def still(pilot) -> None:
    """No blinking cursors, and one throttled plot redraw period so every plot shows its last data."""
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause(REDRAW_INTERVAL_S + 0.1)
    await settle(pilot)


def steps(*keys: str, wait: float = 0.1):
    """A run_before that presses keys, letting workers settle after each, then holds still."""
    async def run_before(pilot) -> None:
        await settle(pilot, wait)
        for key in keys:
            await pilot.press(key)
            await settle(pilot, wait)
        await still(pilot)
    return run_before


def test_runs_screen(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, run_before=steps())


def test_help_screen(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, run_before=steps("question_mark"))


def test_run_screen_progress(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, run_before=steps("enter"))


def test_run_screen_layers(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, run_before=steps("enter", "2"))


def test_picker_with_override(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, run_before=steps("enter", "p", "j", "left"))


def test_new_run_form_with_error(snap_compare, app):
    async def run_before(pilot) -> None:
        await steps("n")(pilot)
        pilot.app.screen.query_one("#field-nets").value = "0"
        await still(pilot)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_new_run_form_with_plan(snap_compare, app):
    """The plan line under the command, from the fixed `mothtui plan --json` of tui/helpers.py."""
    assert snap_compare(app, terminal_size=SIZE, run_before=steps("n"))


def test_log_screen_with_search(snap_compare, app):
    lines = [f"level {i:>2} · {i * 3}% pruned · val median 4.2e-0{i % 3 + 2}" for i in range(30)]
    Path("runs/alpha/engine.log").write_text("--- 2026-11-24T10:15:00+00:00 pid 4242: train --preset smoke\n"
                                             + "\n".join(lines) + "\nrun done: 30 levels complete\n")

    async def run_before(pilot) -> None:
        await steps("l")(pilot)
        await pilot.press("slash", *"median 4.2e-03", "enter")
        await still(pilot)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_runs_screen_scrolled_right(snap_compare, app):
    """End: the columns past `chosen sparsity` (duration, created, disk, tags) in view at 80 columns."""
    assert snap_compare(app, terminal_size=SIZE, run_before=steps("end"))


def test_runs_filter_with_an_unknown_key(snap_compare, app):
    async def run_before(pilot) -> None:
        await steps("slash")(pilot)
        pilot.app.screen.query_one("#runs-filter").value = "epoch>100"
        await still(pilot)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_new_run_form_refuses_a_bad_set_field(snap_compare, app):
    """`nets=abc` in --set: the --set field is marked, ctrl+s says why and scrolls to it."""
    async def run_before(pilot) -> None:
        await steps("n")(pilot)
        pilot.app.screen.query_one("#field-extra").value = "nets=abc; schedule=[0.5, 0.7, 0.9]"
        await pilot.press("ctrl+s")
        await still(pilot)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_new_run_form_command_line(snap_compare, app):
    """The `will run:` line, shell-quoted (the schedule's spaces), with the run id it will use."""
    async def run_before(pilot) -> None:
        await steps("n")(pilot)
        pilot.app.screen.query_one("#field-schedule").value = "0.5, 0.7, 0.9"
        pilot.app.screen.query_one("#field-pruning").value = "global"
        await still(pilot)
    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
