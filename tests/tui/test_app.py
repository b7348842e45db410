"""Pilot tests: the real app on real run stores, driven by keys only."""

from __future__ import annotations

import json
import signal
import sys

import numpy as np
import pytest

from core.events import EventWriter
from core.export import load, read_manifest
from core.owner import OwnerRecord, write_record
from core.runstore import open_run
from core.select import select_run
from mothtui.screens.dialogs import ConfirmDialog, HelpScreen
from mothtui.screens.export import ExportDialog
from mothtui.screens.new_run import NewRunScreen
from mothtui.screens.picker import PickerScreen
from mothtui.screens.run import RunScreen
from mothtui.screens.runs import RunsScreen
from fixture_runs import make_fixture_run
from tui.helpers import key_response_s, make_app, settle

pytestmark = pytest.mark.asyncio


def table_ids(screen) -> list[str]:
    table = screen.query_one("#runs-table")
    return [row.value for row in table.rows]


async def test_runs_list_shows_every_run_and_damaged_one(store):
    app = make_app(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        assert table_ids(screen) == ["alpha", "beta", "broken"]  # newest first, damaged last
        rows = {r.run_id: r for r in screen.rows}
        assert rows["broken"].summary.status == "damaged"
        assert "zarr.json" in rows["broken"].chosen
        # median chosen sparsity at the run's threshold, computed by core.select
        expected = select_run(open_run(store, "alpha")).median_sparsity
        assert rows["alpha"].chosen == f"{expected:.2f} @1e-3"
        # opening a damaged run explains instead of crashing
        await pilot.press("j", "j")
        assert screen.selected_id() == "broken"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)


async def test_filter_sort_and_help(store):
    app = make_app(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "b", "e")
        await pilot.pause()
        assert table_ids(app.screen) == ["beta"]
        await pilot.press("escape")
        await pilot.pause()
        assert table_ids(app.screen) == ["alpha", "beta", "broken"]
        await pilot.press("s")  # created -> run id
        await pilot.pause()
        assert table_ids(app.screen) == ["alpha", "beta", "broken"]
        await pilot.press("s")  # -> status
        await pilot.pause()
        assert table_ids(app.screen) == ["beta", "broken", "alpha"]
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        for words in ("new", "resume", "cancel", "delete", "filter", "sort", "quit", "command palette"):
            assert words in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


async def test_open_run_pick_override_export(store, tmp_path):
    app = make_app(store)
    out = tmp_path / "export"
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        run_screen = app.screen
        assert isinstance(run_screen, RunScreen) and run_screen.run_id == "alpha"
        assert run_screen.levels_complete == 5
        for tab in ("2", "3", "4", "1"):
            await pilot.press(tab)
            await settle(pilot)
        layers = run_screen.query_one("#run-layers")
        assert layers.row_count == 5
        await pilot.press("p")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        # type a threshold
        await pilot.press("i")
        picker.query_one("#picker-threshold").value = ""
        await pilot.press(*"2e-4", "enter")
        await settle(pilot)
        assert picker.threshold == pytest.approx(2e-4)
        run = open_run(store, "alpha")
        expected = select_run(run, 2e-4, "val")
        assert [c.level for c in picker.selection.choices] == [c.level for c in expected.choices]
        # step it back up with + (1-2-5 ladder): 2e-4 -> 5e-4 -> 1e-3
        await pilot.press("plus", "plus")
        assert picker.threshold == pytest.approx(1e-3)
        base = select_run(run, 1e-3, "val")
        # override network 1 one level down
        await pilot.press("j")
        assert picker.highlighted() == 1
        await pilot.press("left")
        want = base.choices[1].level - 1
        assert picker.overrides == {1: want}
        assert picker.selection.choices[1].manual and picker.selection.choices[1].level == want
        # export through the dialog
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        dialog.query_one("#export-dir").value = str(out)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, PickerScreen)
    manifest = read_manifest(out)
    assert manifest["run"] == "alpha" and manifest["threshold"] == pytest.approx(1e-3)
    chosen = {e["network"]: e for e in manifest["networks"]}
    assert set(chosen) == {c.network for c in base.chosen}
    assert chosen[1]["level"] == want and chosen[1]["manual"] is True
    for net, entry in chosen.items():
        if net != 1:
            assert entry["level"] == base.choices[net].level
    # the exported file is the network of the run at that level, runnable with numpy
    with np.load(out / chosen[1]["file"]) as npz:
        weight = npz["layer_0_weight"]
        meta = json.loads(str(npz["meta"]))
    assert meta["level"] == want
    np.testing.assert_array_equal(weight, run.level(want).weights[0][1])
    assert load(out / chosen[1]["file"]).predict(np.zeros((3, 10))).shape == (3, 7)


async def test_split_toggle_and_undo_override(store):
    app = make_app(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        app.open_picker("beta")
        await settle(pilot)
        picker = app.screen
        assert picker.split == "val"
        await pilot.press("t")
        assert picker.split == "test"
        test_pick = select_run(open_run(store, "beta"), None, "test")
        assert [c.level for c in picker.selection.choices] == [c.level for c in test_pick.choices]
        await pilot.press("right")
        assert 0 in picker.overrides
        await pilot.press("u")
        assert picker.overrides == {}
        await pilot.press("space")  # leave network 0 out of the export
        assert 0 not in picker.export_nets()
        await pilot.press("a")
        assert 0 in picker.export_nets() or picker.selection.choices[0].level is None
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


def _histogram_shown(picker) -> dict[str, int]:
    """The picker's histogram panel as {label: count}, read from what it renders."""
    text = str(picker.query_one("#picker-histogram").render())
    lines = text.splitlines()
    assert lines[0] == "chosen sparsity"
    return {line.split()[0]: int(line.split()[-1]) for line in lines[1:]}


def _histogram_by_hand(store, run_id: str, threshold: float, overrides=None) -> dict[str, int]:
    """Chosen sparsity counts from the store's own arrays: the most-pruned passing level per network."""
    import zarr
    raw = zarr.open_group(store / run_id, mode="r")
    done = raw.attrs["levels_complete"]
    losses = np.asarray(raw["loss/val"][:done], dtype=np.float64)
    sparsity = np.asarray(raw["sparsity"][:done])
    counts: dict[str, int] = {}
    for net in range(losses.shape[1]):
        passing = [lv for lv in range(done) if losses[lv, net] <= threshold]
        level = (overrides or {}).get(net, passing[-1] if passing else None)
        label = "none" if level is None else f"{sparsity[level]:.3f}"
        counts[label] = counts.get(label, 0) + 1
    return counts


async def test_picker_shows_the_chosen_sparsity_histogram(store):
    app = make_app(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        app.open_picker("alpha")
        await settle(pilot)
        picker = app.screen
        assert _histogram_shown(picker) == _histogram_by_hand(store, "alpha", 1e-3)
        # it follows the threshold and the overrides
        await pilot.press("minus")
        await settle(pilot)
        assert picker.threshold == pytest.approx(5e-4)
        assert _histogram_shown(picker) == _histogram_by_hand(store, "alpha", 5e-4)
        await pilot.press("left")
        await settle(pilot)
        assert _histogram_shown(picker) == _histogram_by_hand(store, "alpha", 5e-4, picker.overrides)
        assert sum(_histogram_shown(picker).values()) == 4


async def test_delete_asks_first(store):
    app = make_app(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("j")  # beta
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause()
        assert (store / "beta").exists()
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert not (store / "beta").exists() and (store / ".trash" / "beta" / "zarr.json").exists()
        assert table_ids(app.screen) == ["alpha", "broken"]
        await pilot.press("u")  # undo: back from the trash
        await settle(pilot)
        assert (store / "beta" / "zarr.json").exists() and not (store / ".trash" / "beta").exists()
        assert "beta" in table_ids(app.screen)


async def test_new_run_form_validates_inline(store):
    app = make_app(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, NewRunScreen)
        form.query_one("#field-nets").value = "0"
        await pilot.pause()
        error = str(form.query_one("#error-nets").render())
        assert "nets" in error and "at least 1" in error
        assert form.query_one("#launch").disabled
        await pilot.press("ctrl+s")  # refused: nothing launched
        await pilot.pause()
        assert isinstance(app.screen, NewRunScreen) and not app.jobs.jobs
        form.query_one("#field-nets").value = "3"
        form.query_one("#field-extra").value = "pruning=global"
        await pilot.pause()
        assert not form.query_one("#launch").disabled
        assert form.validate() == ["nets=3", "pruning=global"]
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


async def test_running_run_is_live_and_cancel_sends_sigterm(runs_dir, sleeper):
    """A run being written by another process: status, progress from events, then cancel."""
    run = make_fixture_run(runs_dir, "live", nets=3, status="running", levels_complete=2,
                           created="2026-11-24T09:12:00+00:00")
    write_record(run.path, OwnerRecord.of_process(sleeper.pid, "mothtui train"))  # the sleeper owns the run
    events = EventWriter(run.path)
    events.emit("run_start", run="live", nets=3, levels=5, pid=sleeper.pid, resumed_from=None)
    events.emit("level_start", level=2, sparsity=0.8, max_steps=1000)
    app = make_app(runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.rows[0].summary.status == "running"
        events.emit("progress", level=2, step=300, max_steps=1000, active=3, loss=[1e-3, 2e-3, None],
                    samples_per_s=61000.0, eta_s=600.0)
        await pilot.pause(1.3)  # one store poll
        await settle(pilot)
        line = str(screen.query_one("#runs-progress").render())
        assert "level 2/5" in line and "step 300" in line and "61k samples/s" in line
        await pilot.press("enter")
        await settle(pilot)
        run_screen = app.screen
        assert isinstance(run_screen, RunScreen)
        assert run_screen.progress.step == 300
        events.emit("progress", level=2, step=600, max_steps=1000, active=2, loss=[1e-3, 2e-3, None],
                    samples_per_s=60000.0, eta_s=300.0)
        await pilot.pause(0.4)
        assert run_screen.progress.step == 600  # tailed at 4 Hz
        assert "step 600" in str(run_screen.query_one("#run-progress").render())
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await pilot.pause()
        assert sleeper.wait(timeout=5) == -signal.SIGTERM


@pytest.mark.alone  # a response-time check: other workers' tests beside the busy child starve the UI on 2 cores
async def test_ui_answers_keys_while_an_engine_job_runs(store):
    """A job started by the app (a busy child process) does not stall the event loop."""
    app = make_app(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        busy = [sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<20: pass"]
        app.run_worker(app._supervise(app.jobs.start("busy-job", busy, "train")), group="jobs",
                       exit_on_error=False)
        await pilot.pause(0.3)
        job = app.jobs.jobs["busy-job"]
        assert job.process.returncode is None
        responses = []
        for _ in range(5):
            responses.append(await key_response_s(app, "question_mark", lambda: isinstance(app.screen, HelpScreen)))
            responses.append(await key_response_s(app, "escape", lambda: isinstance(app.screen, RunsScreen)))
        # the busy child takes a core; on a shared 2-core machine the UI is starved, never blocked
        assert np.median(responses) < 0.5 and max(responses) < 2.0, responses
        await pilot.pause(1.2)  # the runs list polls once a second
        await settle(pilot)
        assert "busy-job" in table_ids(app.screen)  # shown as starting before its run exists
        assert app.jobs.cancel("busy-job")
        assert await job.process.wait() == -signal.SIGTERM
