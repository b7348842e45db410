"""A deterministic run store for the UI tests: two finished-ish runs and one damaged directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixture_runs import make_fixture_run


def build_store(runs_dir: Path) -> Path:
    """`alpha` (done, 4 nets), `beta` (cancelled after 3 of 5 levels), `broken` (corrupt zarr.json)."""
    make_fixture_run(runs_dir, "alpha", nets=4, seed=0, created="2026-11-23T21:40:00+00:00")
    make_fixture_run(runs_dir, "beta", nets=6, seed=1, status="cancelled", levels_complete=3,
                     created="2026-11-22T10:00:00+00:00")
    broken = runs_dir / "broken"
    broken.mkdir()
    (broken / "zarr.json").write_text("{half-written")
    return runs_dir


@pytest.fixture
def store(runs_dir):
    return build_store(runs_dir)


@pytest.fixture
def sleeper():
    """A live process standing in for an engine (an owner record's pid); killed afterwards."""
    import os
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            stdin=subprocess.DEVNULL, start_new_session=True)
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
