"""The new-run form's plan line: `mothtui plan --json` as a process, debounced, replaced and killed on
change, the refusal's line shown; once with the real command on the smoke preset."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import pytest

from mothtui.jobs import plan_command
from mothtui.screens.new_run import PLANNING, NewRunScreen, plan_line
from tui.helpers import FIXED_PLAN, make_app, settle

def _line(form) -> str:
    return str(form.query_one("#new-plan").render())


async def _open_form(app, pilot) -> NewRunScreen:
    await settle(pilot)
    await pilot.press("n")
    await pilot.pause()
    assert isinstance(app.screen, NewRunScreen)
    return app.screen


async def _wait_for(pilot, done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.1)


def test_plan_line_reads_the_json_and_the_refusal():
    assert plan_line(0, json.dumps(FIXED_PLAN), "") == \
        "plan: memory 389.1 kB of 17.9 GB · about 9s here · H100 <1s · H200 <1s"
    refused = "mothtui: the config does not fit the device: it needs 3.2 GB per device while evaluating"
    assert plan_line(2, "", refused + "\n") == "plan: ⚠ the config does not fit the device: it needs 3.2 GB " \
                                               "per device while evaluating"
    assert plan_line(0, "not json", "").startswith("plan: ⚠")
    assert plan_line(1, "", "").startswith("plan: ⚠")


@pytest.mark.asyncio
async def test_new_run_plan_is_replaced_and_killed_on_change(store, tmp_path):
    """A plan still running when the form changes is killed; a form that does not validate plans nothing;
    the refusal of a config that does not fit shows as its line."""
    pid_file = tmp_path / "slow.pid"
    calls: list[list[str]] = []

    def command(runs_dir, preset, overrides):
        calls.append(overrides)
        if len(calls) == 1:  # the first plan hangs: it must be killed by the next change
            return [sys.executable, "-c", f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
                                          "time.sleep(60)"]
        return [sys.executable, "-c", "import sys; print('mothtui: the config does not fit the device', "
                                      "file=sys.stderr); sys.exit(2)"]

    app = make_app(store, plan_command=command)
    async with app.run_test(size=(100, 32)) as pilot:
        form = await _open_form(app, pilot)
        assert _line(form) == PLANNING
        await _wait_for(pilot, lambda: pid_file.exists() and pid_file.read_text(), 20)
        pid = int(pid_file.read_text())
        form.query_one("#field-nets").value = "0"  # invalid: the plan is cancelled, the line hidden
        await pilot.pause()
        assert not form.query_one("#new-plan").display
        await _wait_for(pilot, lambda: not _alive(pid), 10)
        form.query_one("#field-nets").value = "3"
        await pilot.pause()
        assert _line(form) == PLANNING and calls[-1] == ["nets=3"]
        await _wait_for(pilot, lambda: _line(form) != PLANNING, 20)
        assert _line(form) == "plan: ⚠ the config does not fit the device"
        assert len(calls) == 2


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie not yet reaped counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.asyncio
async def test_new_run_plan_line_from_the_real_command(store, tmp_path):
    """The real `mothtui plan --json` of the smoke preset (on a small dataset store, so nothing is simulated)."""
    spec = importlib.util.spec_from_file_location(
        "engine_fixtures", Path(__file__).resolve().parents[1] / "core" / "engine_fixtures.py")
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    dataset = fixtures.write_dataset(tmp_path / "data.zarr", n=4000, seed=0)
    app = make_app(store, plan_command=plan_command)
    async with app.run_test(size=(100, 32)) as pilot:
        form = await _open_form(app, pilot)
        form.query_one("#field-extra").value = f"dataset={dataset}"
        await pilot.pause()
        assert _line(form) == PLANNING
        await _wait_for(pilot, lambda: _line(form) != PLANNING, 180)
        line = _line(form)
        assert line.startswith("plan: memory ") and " here · H100 " in line and " · H200 " in line, line
