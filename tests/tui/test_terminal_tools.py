"""Pilot tests of what terminal-tool users expect: settings (theme, keys), run-end notifications,
the log screen, tags and the filter, disk use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.runlist import disk_usage
from core.owner import OwnerRecord, write_record
from core.runlog import LOG_FILE
from core.runstore import open_run
from core.settings import Settings, load_settings
from fixture_runs import make_fixture_run
from mothtui.app import MothApp
from mothtui.notify import desktop_sequence
from mothtui.runfilter import matches
from mothtui.screens.labels import LabelsDialog
from mothtui.screens.log import LogScreen
from mothtui.screens.runs import RunsScreen
from tui.helpers import FROZEN_NOW, settle

pytestmark = pytest.mark.asyncio


def app_with(runs_dir: Path, **settings) -> MothApp:
    path = Path(load_settings().path)
    return MothApp(runs_dir, clock=lambda: FROZEN_NOW, settings=Settings(path, **settings))


def table_ids(screen) -> list[str]:
    return [row.value for row in screen.query_one("#runs-table").rows]


async def wait_until(pilot, done, seconds: float = 8.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if done():
            return
        await pilot.pause(0.1)
    assert done()


# ---- settings ----------------------------------------------------------------------------------

async def test_theme_from_settings_and_the_chosen_one_saved(store):
    app = app_with(store, theme="ansi-light")
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        assert app.theme == "ansi-light" and app.current_theme.ansi
        app.theme = "nord"  # what the command palette's theme picker does
        await settle(pilot)
    assert load_settings().theme == "nord"


async def test_bad_theme_and_unknown_binding_are_reported_and_the_app_runs(store):
    app = app_with(store, theme="no-such-theme", keys={"runs.nothing": "x"})
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot, 0.3)
        messages = [n.message for n in app._notifications]
        assert any("'theme'" in m and "no-such-theme" in m for m in messages)
        assert any("'keys.runs.nothing'" in m for m in messages)
        assert app.theme == "textual-dark" and isinstance(app.screen, RunsScreen)


async def test_a_remapped_key_applies(store):
    app = app_with(store, keys={"runs.filter": "f"})
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        field = app.screen.query_one("#runs-filter")
        await pilot.press("slash")
        assert not field.display  # the default key no longer filters
        await pilot.press("f")
        assert field.display and app.focused is field
        assert [n.message for n in app._notifications] == []  # a known binding id: no complaint
        await pilot.press("escape", "question_mark")
        from mothtui.screens.dialogs import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        assert ("f", "filter", True) in app.screen.entries  # the help tells the key in effect


# ---- notifications --------------------------------------------------------------------------------

async def test_desktop_sequences():
    assert desktop_sequence("mothtui: run done", "a: done", "osc9") == "\x1b]9;mothtui: run done: a: done\x07"
    assert desktop_sequence("t;x", "b\x07ody", "osc777") == "\x1b]777;notify;t,x;b ody\x07"
    assert desktop_sequence("t", "b", "osc9", tmux=True) == "\x1bPtmux;\x1b\x1b]9;t: b\x07\x1b\\"
    assert desktop_sequence("t", "b", "off") == ""


async def test_a_run_started_elsewhere_that_ends_is_announced(runs_dir):
    """The engine is a process this app did not start (a shell's); its run turns done: toast, bell, OSC 9."""
    make_fixture_run(runs_dir, "quiet", status="done")
    engine = subprocess.Popen(["sleep", "60"])
    try:
        run = make_fixture_run(runs_dir, "shell-run", status="running", levels_complete=3)
        write_record(run.path, OwnerRecord.of_process(engine.pid, "mothtui train"))  # the stand-in owns the run
        app = app_with(runs_dir)
        written, bells = [], []
        app.notifier.write, app.notifier.ring = written.append, lambda: bells.append(1)
        async with app.run_test(size=(100, 32)) as pilot:
            await settle(pilot)
            await pilot.pause(2.5)  # the first look learns the state: nothing is announced
            assert written == [] and bells == []
            run.complete_level(3)
            run.set_status("done")
            (run.path / "owner.json").unlink()  # the engine let go of the run
            await wait_until(pilot, lambda: written)
            assert written == ["\x1b]9;mothtui: run done: shell-run: done, 4/5 levels\x07"]
            assert bells == [1]
            assert any(n.message == "shell-run: done, 4/5 levels" for n in app._notifications)
    finally:
        engine.kill()
        engine.wait()


async def test_notifications_off_by_the_setting(runs_dir):
    run = make_fixture_run(runs_dir, "r", status="running", levels_complete=1)
    engine = subprocess.Popen(["sleep", "60"])
    try:
        write_record(run.path, OwnerRecord.of_process(engine.pid, "mothtui train"))  # the stand-in owns the run
        app = app_with(runs_dir, notify=False)
        written = []
        app.notifier.write = written.append
        async with app.run_test(size=(100, 32)) as pilot:
            await settle(pilot)
            await pilot.pause(2.2)
            run.set_status("done")
            await pilot.pause(4.5)
            assert written == [] and not app._notifications
    finally:
        engine.kill()
        engine.wait()


# ---- the log screen --------------------------------------------------------------------------------

async def test_log_screen_follows_a_growing_file_and_searches(store):
    log = store / "alpha" / LOG_FILE
    log.write_text("".join(f"line {i}\n" for i in range(200)))
    app = app_with(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, LogScreen) and screen.text_log.line_count == 200
        with open(log, "a") as f:
            f.write("level 5 done\nhalf a li")
        await pilot.pause(0.6)
        assert screen.text_log.line_count == 201 and screen.text_log.lines[-1] == "level 5 done"
        assert screen.text_log.scroll_y == screen.text_log.max_scroll_y  # following: the end is in view
        with open(log, "a") as f:
            f.write("ne\n")
        await pilot.pause(0.6)
        assert screen.text_log.lines[-1] == "half a line"
        await pilot.press("slash", *"line 1", "enter")
        await settle(pilot)
        assert not screen.following and len(screen.hits) == 111  # line 1, 10-19, 100-199
        assert screen.text_log.lines[screen.hits[screen.hit_index]].startswith("line 1")
        await pilot.press("g", "n")
        assert screen.hit_index == 0 and screen.text_log.lines[screen.hits[0]] == "line 1"
        await pilot.press("n", "n")
        assert screen.hit_index == 2 and screen.text_log.lines[screen.hits[2]] == "line 11"
        await pilot.press("N")
        assert screen.hit_index == 1
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_log_screen_of_a_run_without_a_log_says_so(store):
    app = app_with(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        app.open_log("beta")
        await settle(pilot)
        header = str(app.screen.query_one("#log-header").render())
        assert "no log yet" in header


# ---- tags, notes, filter, disk -------------------------------------------------------------------

async def test_filter_terms():
    config = {"pruning": "global", "nets": 400, "scale": 1.3, "hidden": [400, 16]}
    run = dict(run_id="2026-11-24_smoke", status="done", tags=("paper",), note="the big one", config=config)
    for text in ("pruning=global nets>100 scale=1.3", "#paper", "big", "smoke done", "hidden=400,16",
                 "nets>=400 nets<=400 scale!=1", "status=done", "tag=paper", ""):
        assert matches(text, **run), text
    for text in ("pruning=layer", "nets>400", "#pap", "bogus=1", "scale<1", "tiny", "status=failed"):
        assert not matches(text, **run), text


async def test_tags_edited_in_the_app_and_filtered(store):
    open_run(store, "beta").set_labels(tags=["old"])
    app = app_with(store)
    async with app.run_test(size=(120, 32)) as pilot:
        await settle(pilot)
        await pilot.press("t")  # alpha
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, LabelsDialog)
        dialog.query_one("#labels-tags").value = "global s1.3"
        dialog.query_one("#labels-note").value = "the global-pruning run"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        run = open_run(store, "alpha")
        assert run.tags == ["global", "s1.3"] and run.note == "the global-pruning run"
        screen = app.screen
        await wait_until(pilot, lambda: "global s1.3" in str(screen.query_one("#runs-table").get_row("alpha")))
        for text, expected in (("#global", ["alpha"]), ("global-pruning", ["alpha"]), ("old", ["beta"]),
                               ("nets>5", ["beta"]), ("pruning=layer nets<5", ["alpha"])):
            await pilot.press("slash")
            screen.query_one("#runs-filter").value = text
            await settle(pilot)
            assert table_ids(screen) == expected, text
            await pilot.press("escape")


async def test_disk_column_and_total(store):
    app = app_with(store)
    async with app.run_test(size=(160, 32)) as pilot:
        await settle(pilot)
        screen = app.screen
        rows = {r.run_id: r for r in screen.rows}
        assert rows["alpha"].disk_bytes == disk_usage(store / "alpha")
        total = sum(disk_usage(store / name) for name in ("alpha", "beta", "broken"))
        from core.formatting import fmt_bytes

        assert fmt_bytes(total) in str(screen.query_one("#runs-header").render())


async def test_run_header_names_the_devices(store):
    from core.events import EventWriter
    from mothtui.screens.run import RunScreen

    EventWriter(store / "alpha").emit("run_start", run="alpha", nets=4, levels=5, pid=1, resumed_from=None,
                                      max_steps=10, devices=4, device_kind="cpu")
    app = app_with(store)
    async with app.run_test(size=(120, 32)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunScreen)
        assert "4 × cpu" in str(app.screen.query_one("#run-header").render())
