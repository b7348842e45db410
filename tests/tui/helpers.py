"""Helpers of the UI tests: the app on a store with a frozen clock, and waiting for it to settle."""

from __future__ import annotations

from pathlib import Path

FROZEN_NOW = 1_800_000_000.0


def make_app(runs_dir: Path):
    from mothtui.app import MothApp

    return MothApp(runs_dir, clock=lambda: FROZEN_NOW)


async def settle(pilot, seconds: float = 0.1) -> None:
    """Let the UI's workers finish and pending messages run (engine jobs keep running)."""
    for _ in range(2):
        await pilot.app.workers.wait_for_complete([w for w in pilot.app.workers if w.group != "jobs"])
        await pilot.pause(seconds)
