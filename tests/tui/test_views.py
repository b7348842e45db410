"""Thin screens: each gets its data as a view object in a Textual message, computed by `core`.

The app runs with a message hook that records every message; the screens must receive their
view through their own message type, the view must be what `core` computes from the store, and
what the screen shows must come from the message (a view posted by hand is what it then shows).
"""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis import structure
from core.runstore import open_run
from core.select import select_run
from mothtui.model import load_run_view
from mothtui.screens.picker import PickerScreen
from mothtui.screens.run import RunScreen
from mothtui.screens.runs import RunsScreen
from tui.helpers import make_app, settle

pytestmark = pytest.mark.asyncio


def recorder():
    seen: list = []
    return seen, seen.append


def of_type(seen: list, kind: type) -> list:
    """Messages of `kind`, each once (the hook sees a bubbling message at every node it reaches)."""
    unique = {id(m): m for m in seen if isinstance(m, kind)}
    return list(unique.values())


async def test_run_screen_gets_its_view_through_a_message(store):
    seen, hook = recorder()
    app = make_app(store)
    async with app.run_test(size=(100, 32), message_hook=hook) as pilot:
        await settle(pilot)
        rows = of_type(seen, RunsScreen.RowsLoaded)
        assert rows and [r.run_id for r in rows[-1].view.rows] == ["alpha", "beta", "broken"]
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        loaded = of_type(seen, RunScreen.Loaded)
        assert len(loaded) == 1
        view = loaded[0].view
        # the view is core's answer: core.select for who passes, core.analysis.structure for the layers
        run = open_run(store, "alpha")
        assert view.selection == select_run(run)
        assert len(view.layers.rows) == run.levels_complete == 5
        for level, target, remaining, overall in view.layers.rows:
            masks = run.level(level, slice(0, view.layers.sampled)).weight_masks
            np.testing.assert_allclose(remaining, structure.remaining_fractions(masks).mean(axis=0))
            assert overall == pytest.approx(float(structure.remaining_overall(masks).mean()))
            assert target == pytest.approx(run.sparsity[level])
        progress = str(screen.query_one("#run-progress").render())
        assert "chosen levels (val loss ≤ 1e-3):" in progress and f"{view.selection.passing}/4 nets" in progress
        # the weights of the last level came the same way
        weights = of_type(seen, RunScreen.WeightsLoaded)
        assert weights and weights[-1].view.level == 4
        # what the screen shows is what the message carries: another run's view, posted by hand
        assert screen.query_one("#run-layers").row_count == 5
        screen.post_message(RunScreen.Loaded(load_run_view(store, "beta")))
        await settle(pilot)
        assert screen.query_one("#run-layers").row_count == 3 and screen.levels_complete == 3
        await pilot.press("p")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        (message,) = of_type(seen, PickerScreen.Loaded)
        assert message.view.levels_complete == 5 and set(message.view.losses) == {"train", "val", "test"}
        assert picker.selection == select_run(run, None, "val")
