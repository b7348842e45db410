"""Helpers of the UI tests: the app on a store with a frozen clock, and waiting for it to settle."""

from __future__ import annotations

import json
import sys
from pathlib import Path

FROZEN_NOW = 1_800_000_000.0
#: What the new-run form's plan line reads in the UI tests: a fixed `mothtui plan --json` answer.
FIXED_PLAN = {"memory": {"peak": 389_100, "limit": 17_900_000_000},
              "time": {"here": {"total_s": 9.4}, "gpus": {"H100": {"run_s": 0.021}, "H200": {"run_s": 0.015}}}}


def fixed_plan_command(runs_dir: Path, preset: str, overrides: list[str]) -> list[str]:
    """A stand-in for `mothtui plan --json` that prints FIXED_PLAN at once (snapshots stay the same)."""
    return [sys.executable, "-c", f"print({json.dumps(json.dumps(FIXED_PLAN))})"]


def snapshot_env(home: Path, monkeypatch) -> None:
    """Screens that name the run store (`~/runs`) and suggest a run id (local time) look the same
    on every machine: HOME is the test's directory, the time zone UTC."""
    import time

    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def make_app(runs_dir: Path, plan_command=fixed_plan_command):
    from mothtui.app import MothApp

    return MothApp(runs_dir, clock=lambda: FROZEN_NOW, plan_command=plan_command)


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
