"""Issue 19, the app's part: what a new user met in the first hour, each kept fixed by a Pilot test.

Runs table: horizontal scroll by keyboard that survives the once-a-second refresh, a starting run
shown as `starting` (newest first, never `unreadable`), column widths measured again, unknown
filter keys named, the store's path on screen; the new-run form's command line (one builder,
shell-quoted), run id and pruning choices; the command palette's app actions; the picker's state.
"""

from __future__ import annotations

import shlex
import sys

import pytest

from core.owner import OwnerRecord, write_record
from fixture_runs import make_fixture_run
from mothtui import cmdline
from mothtui.screens.new_run import NewRunScreen
from mothtui.screens.runs import RunsScreen
from tui.helpers import make_app, settle

pytestmark = pytest.mark.asyncio


def table_ids(screen) -> list[str]:
    return [row.value for row in screen.query_one("#runs-table").rows]


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def test_runs_table_scrolls_right_by_keyboard_and_stays_there(store):
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#runs-table")
        assert table.max_scroll_x > 0  # at 80 columns the last columns are off screen
        await pilot.press("end")
        await settle(pilot)
        assert table.scroll_x == table.max_scroll_x
        app.screen.refresh_runs()  # the once-a-second refresh must not throw the view back
        await pilot.pause(1.2)
        await settle(pilot)
        assert table.scroll_x == table.max_scroll_x > 0
        await pilot.press("home")
        await settle(pilot)
        assert table.scroll_x == 0


async def test_a_starting_run_reads_starting_and_is_newest(store, sleeper):
    """A directory claimed by a live engine, its store not written yet (core.owner): `starting`,
    at the top, never `unreadable`; once gone, its wide texts give their column width back."""
    claimed = store / "2026-12-02_070000_smoke"
    claimed.mkdir()
    write_record(claimed, OwnerRecord.of_process(sleeper.pid, "mothtui train"))
    # a moment later the engine has opened its group, attributes not yet written (core.runstore.Run.create)
    opening = store / "2026-12-02_070001_smoke"
    opening.mkdir()
    write_record(opening, OwnerRecord.of_process(sleeper.pid, "mothtui train"))
    (opening / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.pause(1.1)
        await settle(pilot)
        screen = app.screen
        assert table_ids(screen)[:2] == [opening.name, claimed.name]  # newest first, not last
        for name in (claimed.name, opening.name):
            row = {r.run_id: r for r in screen.rows}[name]
            assert row.summary.status == "starting" and not row.summary.damaged and "unreadable" not in row.chosen
        table = screen.query_one("#runs-table")
        assert "starting" in str(table.get_row(claimed.name)[1])
        wide_width = list(table.columns.values())[0].get_render_width(table)
        sleeper.kill()
        sleeper.wait()
        import shutil
        shutil.rmtree(claimed)
        shutil.rmtree(opening)
        screen.refresh_runs()
        await settle(pilot)
        assert claimed.name not in table_ids(screen)
        assert list(table.columns.values())[0].get_render_width(table) < wide_width  # measured again


async def test_unknown_filter_key_is_named(store):
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"epoch>100")
        await settle(pilot)
        note = text_of(app.screen, "#runs-note")
        assert "unknown key 'epoch'" in note and "epochs_per_level" in note
        assert table_ids(app.screen) == []
        await pilot.press("escape")
        await pilot.press("slash", *"nets>4")
        await settle(pilot)
        assert not app.screen.query_one("#runs-note").display
        assert table_ids(app.screen) == ["beta"]


async def test_the_store_path_is_on_screen(tmp_path, monkeypatch):
    empty = tmp_path / "elsewhere" / "runs"
    empty.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "elsewhere")
    app = make_app(type(empty)("runs"))  # a relative path, as `--runs runs` gives it
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert str(empty) in text_of(app.screen, "#runs-header")
        note = text_of(app.screen, "#runs-note")
        assert str(empty) in note and "no runs" in note


async def test_new_run_form_shows_the_command_it_runs(store, monkeypatch):
    """The `will run:` line pastes into a shell; the launch starts exactly that command (with the
    run id typed in the form); pruning is a choice of the valid modes."""
    started = []

    async def fake_launch(run_id, command, kind):
        started.append((run_id, command, kind))
        raise RuntimeError("not started in this test")

    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, NewRunScreen)
        from textual.widgets import Select

        pruning = form.query_one("#field-pruning")
        assert isinstance(pruning, Select)
        pruning.value = "global"
        form.query_one("#field-schedule").value = "0.5, 0.7, 0.9"
        form.query_one("#field-id").value = "my-first"
        await pilot.pause()
        shown = text_of(form, "#new-command").removeprefix("will run: ")
        args = shlex.split(shown)
        assert args[:2] == ["mothtui", "train"] and "schedule=[0.5, 0.7, 0.9]" in args
        assert "pruning=global" in args and args[args.index("--id") + 1] == "my-first"
        monkeypatch.setattr(app.jobs, "launch", fake_launch)
        await pilot.press("ctrl+s")
        await settle(pilot)
        (run_id, command, kind), = started
        assert run_id == "my-first" and kind == "train" and command.shell() == shown


async def test_new_run_form_marks_the_set_field_and_says_why(store):
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        form.query_one("#field-extra").value = "nets=abc"
        await pilot.pause()
        assert "nets" in text_of(form, "#error-extra") and not form.query_one("#error-nets").display
        form.query_one("#field-nets").focus()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, NewRunScreen) and not app.jobs.jobs
        (toast,) = list(app._notifications)
        assert "cannot read 'abc'" in toast.message  # the message says what is wrong, not "fix the marked field"
        assert app.focused is form.query_one("#field-extra")
        error = form.query_one("#error-extra")
        scroll = form.query_one("#new-form")
        assert scroll.scroll_offset.y <= error.virtual_region.y < scroll.scroll_offset.y + scroll.size.height
        form.query_one("#field-extra").value = ""
        form.query_one("#field-id").value = "alpha"  # taken
        await pilot.pause()
        assert "taken" in text_of(form, "#error-id")


async def test_command_palette_has_the_apps_actions(store):
    """ctrl+p, `export`, enter: the export of the selected run opens (it found nothing before)."""
    from mothtui.screens.export import ExportDialog
    from mothtui.screens.run import RunScreen

    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Export alpha" in titles and "Filter" in titles and "New run" in titles
        assert len(titles) == len(set(titles))
        await pilot.press("ctrl+p", *"export")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot, 0.3)
        assert isinstance(app.screen, ExportDialog) and app.screen.run_id == "alpha"
        await pilot.press("escape", "escape")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunScreen)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Pick", "Export", "Analyze", "Tab 4: analysis"} <= set(titles)


async def test_help_lists_each_key_once(store):
    from mothtui.screens.dialogs import help_entries

    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for screen_keys in (None, "enter"):
            if screen_keys:
                await pilot.press(screen_keys)
                await settle(pilot)
            keys = [k for entry in help_entries(app.screen) for k in entry[0].split("/")]
            assert keys.count("ctrl+p") == 1 and keys.count("tab") == 1, keys


async def test_picker_keeps_its_state_and_its_field_honest(store, tmp_path):
    """esc then p finds the threshold and the overrides as left; `abc` as the threshold puts the
    threshold in use back in the field; a level chosen by hand above the threshold is marked;
    a second export is offered a fresh directory, and errors name the directory, not `--out`."""
    from mothtui.screens.export import ExportDialog
    from mothtui.screens.picker import PickerScreen

    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        await pilot.press("plus", "j", "right")  # 2e-3, network 1 one level up
        await settle(pilot)
        threshold, overrides = picker.threshold, dict(picker.overrides)
        assert threshold == pytest.approx(2e-3) and overrides
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        picker = app.screen
        assert picker.threshold == threshold and picker.overrides == overrides
        assert picker.query_one("#picker-threshold").value == "2e-3"

        await pilot.press("i", "ctrl+a", *"abc", "enter")  # not a threshold
        await settle(pilot)
        assert picker.query_one("#picker-threshold").value == "2e-3" and picker.threshold == threshold
        await pilot.press("escape")

        # by hand above the threshold: marked in the table and the summary
        net = next(c.network for c in picker.selection.choices if c.level is not None and c.level + 1 < 5
                   and picker.losses["val"][c.level + 1, c.network] > picker.threshold)
        picker.query_one("#picker-table").move_cursor(row=net)
        await pilot.pause()
        while not picker.above_threshold(picker.selection.choices[net]):
            await pilot.press("right")
        row = picker.query_one("#picker-table").get_row(str(net))
        assert "⚠ above" in row[-1] and "above threshold" in text_of(picker, "#picker-summary")

        # export twice: the second dialog offers a new directory; a refused one is worded for the app
        await pilot.press("x")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        first = dialog.query_one("#export-dir").value
        await pilot.press("enter")
        await settle(pilot, 0.3)
        await pilot.press("x")
        await settle(pilot)
        second = app.screen.query_one("#export-dir").value
        assert second != first and second.startswith(first)
        app.screen.query_one("#export-dir").value = first
        await pilot.press("enter")
        await settle(pilot, 0.3)
        result = text_of(app.screen, "#export-result")
        assert "not empty" in result and "--out" not in result


async def test_log_view_shows_the_job_log_too(store):
    """`l` opens the log written last; `o` switches between the engine log and the job log, where
    analyze and evaluate write."""
    from mothtui.screens.log import LogScreen

    (store / "alpha" / "engine.log").write_text("engine: level 0 done\n")
    jobs = store / ".logs"
    jobs.mkdir()
    (jobs / "alpha.log").write_text("analyze: level 3/5\n")
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, LogScreen)
        lines = lambda: list(screen.text_log.lines)  # noqa: E731
        assert lines() == ["analyze: level 3/5"] and "job log" in text_of(screen, "#log-header")
        await pilot.press("o")
        await settle(pilot)
        assert lines() == ["engine: level 0 done"] and "engine log" in text_of(screen, "#log-header")


async def test_a_step_shows_its_progress_on_the_tab_it_was_started_from(store, monkeypatch):
    """`s` on tab 5: the progress line is above the tabs and tab 5 says it is evaluating."""
    from types import SimpleNamespace

    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        await pilot.press("5")
        monkeypatch.setattr(app.jobs, "job", lambda run_id: SimpleNamespace(kind="evaluate"))
        monkeypatch.setattr(app.jobs, "log_tail", lambda run_id, n=3: "evaluating level 2/5")
        screen.poll_store()
        await settle(pilot)
        step = screen.query_one("#run-step")
        assert step.display and step.region.height > 0  # on screen with tab 5 shown
        assert "evaluating level 2/5" in text_of(screen, "#run-step")
        assert "evaluating" in screen.query_one("#run-scales").empty


async def test_80x24_footers_keep_help(store):
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        for keys in ((), ("p",)):
            await pilot.press(*keys)
            await settle(pilot)
            footer = app.screen.query_one("Footer")
            shown = [b.binding.action for b in app.screen.active_bindings.values() if b.binding.show]
            assert "app.help" in shown[:2] and "quit" not in shown  # first: never the key cut off
            assert any(w.region.right <= 80 and "help" in str(getattr(w, "description", ""))
                       for w in footer.query("FooterKey"))



async def test_80x24_analysis_tab_scrolls_with_j(store):
    """The per-level table sits under the plots: at 80x24 its last levels are below the fold; j scrolls."""
    from tui.test_study_snapshots import add_results

    add_results(store)
    app = make_app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot, 0.3)
        scroll = app.screen.query_one("#run-analysis-scroll")
        assert scroll.max_scroll_y > 0 and scroll.scroll_y == 0
        await pilot.press(*"jjjjjjjjjj")
        await settle(pilot)
        assert scroll.scroll_y == scroll.max_scroll_y
