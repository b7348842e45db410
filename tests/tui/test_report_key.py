"""`f` on the run screen runs `mothtui report` on the run as a supervised job (a real process) and
says where the figures are when it ends."""

from __future__ import annotations

import time

import pytest

from core.report import FIGURES
from core.paths import report_dir
from mothtui.screens.run import RunScreen
from fixture_runs import make_fixture_run
from tui.helpers import make_app, settle

pytestmark = pytest.mark.asyncio


async def test_f_on_the_run_screen_writes_the_report(runs_dir):
    pytest.importorskip("matplotlib")
    make_fixture_run(runs_dir, "figs", nets=3, hidden=(8, 8), schedule=(0.5, 0.8))
    app = make_app(runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunScreen)
        await pilot.press("f")
        start = time.monotonic()
        while app.jobs.jobs.get("figs") is None and time.monotonic() - start < 10:
            await pilot.pause(0.1)
        job = app.jobs.jobs["figs"]
        assert job.kind == "report"
        while job.process.returncode is None and time.monotonic() - start < 180:
            await pilot.pause(0.2)
        assert job.process.returncode == 0, app.jobs.log_tail("figs", 10)
        await pilot.pause(0.3)
        out = report_dir(runs_dir, "figs")
        assert out == runs_dir / ".reports" / "figs"
        assert (out / "index.md").exists() and (out / "report.json").exists()
        for stem, _ in FIGURES[:-1]:              # never evaluated: no figure of other body sizes
            assert (out / f"{stem}.png").stat().st_size > 1000
        assert any(f"figures and index.md in {out}" in n.message for n in app._notifications)
