"""The app shows a branch run's parent (`mothtui train --from RUN:LEVEL`): in the runs table and the run header."""

from __future__ import annotations

import pytest

from core.runstore import open_run
from fixture_runs import make_fixture_run
from mothtui.screens.run import RunScreen
from tui.helpers import make_app, settle

pytestmark = pytest.mark.asyncio


async def test_a_branch_shows_where_it_started_in_the_runs_table_and_its_header(runs_dir):
    make_fixture_run(runs_dir, "trunk", created="2026-11-20T08:00:00+00:00")
    make_fixture_run(runs_dir, "twig", created="2026-11-21T08:00:00+00:00")
    open_run(runs_dir, "twig", mode="r+").set_attrs(parent={"run": "trunk", "level": 2, "config_digest": "0" * 64,
                                                            "sparsity": 0.8, "moments": None})
    app = make_app(runs_dir)
    async with app.run_test(size=(160, 32)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#runs-table")
        row = {str(r.value): table.get_row(r) for r in table.rows}
        assert "from trunk:2" in str(row["twig"][-1]) and "from" not in str(row["trunk"][-1])
        await pilot.press("enter")  # the cursor starts on the newest run: the branch
        await settle(pilot)
        assert isinstance(app.screen, RunScreen) and app.screen.run_id == "twig"
        assert "from trunk:2" in str(app.screen.query_one("#run-header").render())
