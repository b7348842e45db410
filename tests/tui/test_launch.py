"""End to end: launch a smoke run from the form, watch it finish while the UI keeps answering, pick, export.

The engine is the real one (`python -m core train --preset smoke`), started by the app as its
own process. It trains on a small dataset store written here with the engine tests' stand-in
physics (tests/core/engine_fixtures.py), so this test does not wait for the simulator.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

from core.export import read_manifest
from core.runstore import list_runs, open_run
from core.select import select_run
from mothtui.screens.dialogs import HelpScreen
from mothtui.screens.export import ExportDialog
from mothtui.screens.new_run import NewRunScreen
from mothtui.screens.picker import PickerScreen
from mothtui.screens.run import RunScreen
from mothtui.screens.runs import RunsScreen
from tui.helpers import key_response_s, make_app, settle

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

ENGINE_TIMEOUT_S = 180
#: Key presses must take effect this fast while the engine trains. The engine saturates both
#: cores of a 2-core machine, so the UI is starved of CPU but never blocked: the typical answer
#: is well under a second and the worst stays bounded.
KEY_RESPONSE_MEDIAN_S = 0.5
KEY_RESPONSE_MAX_S = 2.0


def write_dataset(path: Path) -> Path:
    spec = importlib.util.spec_from_file_location(
        "engine_fixtures", Path(__file__).resolve().parents[1] / "core" / "engine_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_dataset(path, n=4000, seed=0)


async def test_launch_watch_pick_export(runs_dir, tmp_path):
    dataset = write_dataset(tmp_path / "data.zarr")
    app = make_app(runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, NewRunScreen)
        form.query_one("#field-extra").value = f"dataset={dataset}"
        await pilot.pause()
        assert form.validate() == [f"dataset={dataset}"]
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        (run_id,) = app.jobs.jobs
        job = app.jobs.jobs[run_id]
        assert job.process.returncode is None

        # watch it: the list shows it, and keys are answered quickly all along
        deadline = time.monotonic() + ENGINE_TIMEOUT_S
        responses, seen_running = [], False
        while job.process.returncode is None and time.monotonic() < deadline:
            opened = await key_response_s(app, "question_mark", lambda: isinstance(app.screen, HelpScreen))
            closed = await key_response_s(app, "escape", lambda: isinstance(app.screen, RunsScreen))
            responses += [opened, closed]
            statuses = {r.run_id: r.summary.status for r in app.screen.rows}
            seen_running |= statuses.get(run_id) == "running" or run_id in app.jobs.running()
            await pilot.pause(0.3)
        assert job.process.returncode == 0, app.jobs.log_tail(run_id, 20)
        assert seen_running
        median, slowest = float(np.median(responses)), max(responses)
        print(f"key responses while the engine trained: median {median * 1000:.0f} ms, "
              f"worst {slowest * 1000:.0f} ms over {len(responses)} keys")
        assert median < KEY_RESPONSE_MEDIAN_S and slowest < KEY_RESPONSE_MAX_S
        await pilot.pause(1.2)  # one store poll
        await settle(pilot)
        (summary,) = list_runs(runs_dir)
        assert summary.run_id == run_id and summary.status == "done"
        assert {r.run_id: r.summary.status for r in app.screen.rows}[run_id] == "done"

        # open it: progress came from the event stream, losses from the store
        await pilot.press("enter")
        await settle(pilot)
        run_screen = app.screen
        assert isinstance(run_screen, RunScreen)
        run = open_run(runs_dir, run_id)
        assert run_screen.levels_complete == run.levels_complete == run.levels
        assert run_screen.progress.status == "done"

        # pick at the run's threshold, override network 0, export
        await pilot.press("p")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        base = select_run(run)
        assert [c.level for c in picker.selection.choices] == [c.level for c in base.choices]
        target = 0 if base.choices[0].level != 0 else 1
        await pilot.press("left" if target == 0 else "right")
        assert picker.overrides == {0: target} or picker.overrides == {0: 1}
        forced = picker.overrides[0]
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ExportDialog)
        out = tmp_path / "exported"
        app.screen.query_one("#export-dir").value = str(out)
        await pilot.press("enter")
        await settle(pilot)
    manifest = read_manifest(out)
    levels = {e["network"]: e["level"] for e in manifest["networks"]}
    assert levels[0] == forced
    assert all(levels[c.network] == c.level for c in base.chosen if c.network != 0)
    assert (out / manifest["networks"][0]["file"]).exists()


async def test_cancel_then_resume_from_the_ui(runs_dir, tmp_path):
    """`c` (confirmed) SIGTERMs the engine, the run shows cancelled, `r` starts `core resume` on it."""
    dataset = write_dataset(tmp_path / "data.zarr")
    app = make_app(runs_dir)
    long_level = [f"dataset={dataset}", "epochs_per_level=5000", "early_stop_window=1000000"]
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        app.screen.query_one("#field-extra").value = "; ".join(long_level)
        await pilot.press("ctrl+s")
        await settle(pilot)
        (run_id,) = app.jobs.jobs

        async def wait_status(status: str) -> None:
            deadline = time.monotonic() + ENGINE_TIMEOUT_S
            while time.monotonic() < deadline:
                rows = {r.run_id: r.summary.status for r in app.screen.rows}
                if rows.get(run_id) == status:
                    return
                await pilot.pause(0.3)
            raise AssertionError(f"{run_id} never became {status}: {rows}; {app.jobs.log_tail(run_id, 10)}")

        await wait_status("running")
        row = [r.run_id for r in app.screen.rows].index(run_id)
        app.screen.query_one("#runs-table").move_cursor(row=row)
        await pilot.press("c")
        await pilot.pause()
        await pilot.press("y")
        first = app.jobs.jobs[run_id].process
        assert await first.wait() != 0
        await wait_status("cancelled")
        await pilot.press("r")
        await settle(pilot)
        second = app.jobs.jobs[run_id]
        assert second.kind == "resume" and second.process is not first
        await wait_status("running")  # the resumed engine owns the run again
        assert app.jobs.cancel(run_id)
        assert await second.process.wait() != 0
        await wait_status("cancelled")
    run = open_run(runs_dir, run_id)
    assert run.status == "cancelled" and run.levels_complete == 0


async def test_a_failing_engine_is_reported_with_its_log(runs_dir, tmp_path):
    """A run the engine refuses (its dataset does not exist) ends in a dialog quoting the engine's error."""
    from mothtui.screens.dialogs import MessageDialog

    app = make_app(runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        app.screen.query_one("#field-extra").value = f"dataset={tmp_path / 'missing.zarr'}"
        await pilot.press("ctrl+s")
        await settle(pilot)
        (job,) = app.jobs.jobs.values()
        assert await job.process.wait() == 2
        deadline = time.monotonic() + 10
        while not isinstance(app.screen, MessageDialog) and time.monotonic() < deadline:
            await pilot.pause(0.1)
        dialog = app.screen
        assert isinstance(dialog, MessageDialog)
        await pilot.pause()  # let it compose
        body = str(dialog.query_one("#message-body").render())
        assert "missing.zarr" in body and str(job.log) in body
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        assert list_runs(runs_dir) == []  # nothing half-made is left behind
