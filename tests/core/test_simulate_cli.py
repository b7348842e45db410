"""`mothtui simulate` as a user runs it: a subprocess, its stdout, stderr and exit code."""

import subprocess
import sys

import numpy as np
import pytest

from core.dataset import open_dataset


def _mothtui(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def _snapshot(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "strokes"
    result = _mothtui("simulate", "--samples", 300, "--seed", 9, "--scale", 1.1, "--chunk", 128, "--out", out)
    return out, result


def test_simulate_writes_the_store_and_prints_its_path_last(made):
    out, result = made
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(out)
    assert "invalid" in result.stderr and "Traceback" not in result.stderr
    ds = open_dataset(out)
    assert ds.n == 300 and ds.attrs["seed"] == 9 and ds.attrs["scale"] == 1.1
    assert np.isfinite(ds.final[:][ds.valid[:]]).all()


@pytest.mark.parametrize("args, message", [
    (["--samples", 0], "--samples must be positive"),
    (["--samples", -3], "--samples must be positive"),
    (["--samples", 10, "--scale", 0], "scale must be between"),
    (["--samples", 10, "--scale", "nan"], "scale must be between"),
    (["--samples", 10, "--seed", -1], "--seed must be non-negative"),
    (["--samples", 10, "--chunk", 0], "--chunk must be positive"),
])
def test_bad_input_is_one_line_and_nonzero(tmp_path, args, message):
    result = _mothtui("simulate", *args, "--out", tmp_path / "x")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "x").exists()


def test_existing_store_without_force_is_refused_and_untouched(made):
    out, _ = made
    before = _snapshot(out)
    result = _mothtui("simulate", "--samples", 10, "--out", out)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"mothtui: {out} already exists (use --force to replace it)"]
    assert _snapshot(out) == before


def test_unwritable_path_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _mothtui("simulate", "--samples", 10, "--out", blocker / "ds")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write" in lines[0], result.stderr


def test_trains_simulation_progress_is_a_bar_with_rate_and_eta_on_a_terminal_and_lines_in_a_log():
    """`simulating dataset: 131,072/200,000` was a bare counter: now drawn like the training display."""
    import io
    import time

    from rich.console import Console

    from core.commands.display import SimulationProgress

    stream = io.StringIO()
    with SimulationProgress(console=Console(file=stream, width=200, force_terminal=True, color_system=None)) as show:
        for done in (0, 2000, 4000, 6000):  # a fresh start: core.dataset says 0 first
            time.sleep(0.05)
            show(done, 8000)
        shown = io.StringIO()
        Console(file=shown, width=200, color_system=None).print(show.bar.get_renderable())
    bar = shown.getvalue()
    assert "continuing" not in stream.getvalue()
    assert bar.startswith("simulating dataset") and "6000/8000" in bar and "75%" in bar, bar
    assert "samples/s" in bar and "ETA" in bar and "– samples/s" not in bar, bar

    log = io.StringIO()
    with SimulationProgress(console=Console(file=log, width=200), every_s=0) as show:
        for done in (4000, 6000, 8000):  # continued from 4,000 rows of an interrupted start
            time.sleep(0.02)
            show(done, 8000)
    lines = log.getvalue().splitlines()
    assert lines[0] == ("simulating dataset: continuing from 4,000/8,000 strokes "
                        "(the completed chunks of an interrupted start)")
    assert lines[1].startswith("simulating dataset: 6,000/8,000 (75%) · ") and "samples/s · ETA " in lines[1]
    assert lines[2].startswith("simulating dataset: 8,000/8,000 (100%) · ") and lines[2].endswith("ETA 0s")
