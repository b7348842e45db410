"""Helpers of the UI tests: the app on a store with a frozen clock, and waiting for it to settle."""

from __future__ import annotations

from pathlib import Path

FROZEN_NOW = 1_800_000_000.0


def make_app(runs_dir: Path):
    from mothtui.app import MothApp

    return MothApp(runs_dir, clock=lambda: FROZEN_NOW)


async def settle(pilot, seconds: float = 0.1) -> None:
    """Let the UI's workers finish and pending messages run (engine jobs keep running)."""
    from textual.worker import WorkerCancelled, WorkerFailed

    for _ in range(2):
        ui_workers = [w for w in pilot.app.workers if w.group != "jobs"]
        if ui_workers:  # (an empty list would mean "all workers" to wait_for_complete)
            try:
                await pilot.app.workers.wait_for_complete(ui_workers)
            except (WorkerCancelled, WorkerFailed):  # the app reports these itself
                pass
        await pilot.pause(seconds)


async def key_response_s(app, key: str, done, timeout: float = 10.0) -> float:
    """Seconds from sending `key` (as the terminal driver would) until `done()` is true.

    Pilot's `press` also waits for the whole process to be idle, which a busy worker thread
    delays; this measures what a user feels: how soon the key takes effect.
    """
    import asyncio
    import time

    from textual import events

    event = events.Key(key, {"question_mark": "?", "escape": None}.get(key, key if len(key) == 1 else None))
    event.set_sender(app)
    start = time.monotonic()
    app._driver.send_message(event)
    while not done():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"key {key!r} not answered within {timeout}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start
