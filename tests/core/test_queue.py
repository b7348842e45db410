"""The run queue with real processes: `mothtui sweep` and `train --queue` feed it, one detached supervisor
runs it. A queue of three smoke runs runs one after the other to `done`; a SIGKILLed supervisor loses
nothing (its engine goes on, the next supervisor adopts it); a SIGKILLed engine is recorded as failed
and the queue goes on; `queue pause` during a level and `queue resume` lose no completed level.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from core import queue as q
from core.events import read_events
from core.runstore import open_run
from engine_fixtures import write_dataset

ENV = dict(os.environ)
FAST = ["--preset", "smoke", "--set", "epochs_per_level=3"]
# Levels long enough that a signal sent after level 0 lands while the run is still going.
SLOW = ["--preset", "smoke", "--set", "epochs_per_level=30", "--set", "schedule=[0.3,0.5,0.7,0.8,0.9]",
        "--set", "early_stop_window=100000", "--set", "steps_per_call=50"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("queue") / "dataset", n=4000, seed=2)


@pytest.fixture
def stop_supervisors(runs_dir):
    """Whatever a test leaves running (a supervisor, its engines) is killed at its end."""
    yield
    state = q.read_queue(runs_dir)
    owner = q.supervisor(runs_dir)
    pids = [owner.pid] if owner.pid else []
    pids += [e.pid for e in state.entries if e.pid and e.state == "running"]
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _cli(*args, runs, check=True):
    proc = subprocess.run([sys.executable, "-m", "core", *args, "--runs", str(runs)], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, env=ENV)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _wait(predicate, what, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {q.read_queue(_wait.runs).to_dict()}")


def _entry(runs_dir, run_id):
    return q.read_queue(runs_dir).find(run_id)


def _state(runs_dir, run_id):
    entry = _entry(runs_dir, run_id)
    return entry.state if entry else None


def _level_done(runs_dir, run_id, level):
    return any(e.event == "level_end" and e.level == level for e in read_events(runs_dir / run_id))


@pytest.mark.slow
def test_sweep_of_three_runs_one_after_the_other(runs_dir, dataset, stop_supervisors):
    _wait.runs = runs_dir
    out = _cli("sweep", *FAST, "--set", f"dataset={dataset}", "--grid", "seed=1,2,3", "--id", "s1",
               runs=runs_dir).stdout
    assert out.strip().splitlines()[-1] == "s1"
    ids = ["s1-01", "s1-02", "s1-03"]
    listing = json.loads(_cli("queue", "--json", runs=runs_dir).stdout)
    assert [e["run"] for e in listing["entries"]] == ids and listing["supervisor"] is not None
    assert all(e["sweep"] == "s1" for e in listing["entries"])
    _wait(lambda: all(_state(runs_dir, i) in q.FINAL for i in ids), "the sweep to end")
    state = q.read_queue(runs_dir)
    assert [e.state for e in state.entries] == ["done"] * 3, state.to_dict()
    for before, after in zip(state.entries, state.entries[1:]):  # one at a time (the default here: no GPU)
        assert after.started >= before.ended
    _wait(lambda: not q.supervisor(runs_dir).alive, "the supervisor to end when nothing is left")

    listing = json.loads(_cli("runs", "--json", runs=runs_dir).stdout)
    assert sorted((r["id"], r["status"], r["sweep"]) for r in listing["runs"]) == [(i, "done", "s1") for i in ids]
    (sweep,) = listing["sweeps"]
    assert (sweep["name"], sweep["done"], sweep["total"]) == ("s1", 3, 3)
    text = _cli("runs", runs=runs_dir).stdout.splitlines()
    head = next(i for i, line in enumerate(text) if "sweep s1" in line)
    assert "3/3 done" in text[head] and all(text[head + k].startswith("  s1-0") for k in (1, 2, 3))
    assert [open_run(runs_dir, i).config.seed for i in ids] == [1, 2, 3]
    compared = json.loads(_cli("compare", "s1", "--json", runs=runs_dir).stdout)
    assert [r["run"] for r in compared["runs"]] == ids
    (view,) = compared["sweeps"]
    assert view["keys"] == ["seed"] and [row["value"] for row in view["by_key"]["seed"]] == [1, 2, 3]
    for row, run in zip(view["by_key"]["seed"], compared["runs"]):
        assert row["chosen_sparsity"]["median"] == run["chosen_median_sparsity"]
    text = _cli("compare", "s1", runs=runs_dir).stdout
    assert "chosen sparsity against seed" in text


@pytest.mark.slow
def test_killed_supervisor_and_killed_engine(runs_dir, dataset, stop_supervisors):
    _wait.runs = runs_dir
    _cli("sweep", *SLOW, "--set", f"dataset={dataset}", "--grid", "seed=1,2,3", "--id", "k", runs=runs_dir)
    _wait(lambda: _state(runs_dir, "k-01") == "running" and _level_done(runs_dir, "k-01", 0), "k-01's level 0")
    first = q.supervisor(runs_dir).pid
    engine = _entry(runs_dir, "k-01").pid
    os.kill(first, signal.SIGKILL)  # the supervisor dies; its engine (own session) trains on
    _wait(lambda: not q.supervisor(runs_dir).alive, "the supervisor to be seen dead")
    assert q.process_alive(engine, _entry(runs_dir, "k-01").pid_started)
    assert "no supervisor running" in _cli("queue", runs=runs_dir).stdout

    _cli("queue", "resume", runs=runs_dir)  # a new supervisor continues from the store
    second = _wait(lambda: q.supervisor(runs_dir).pid, "a new supervisor")
    assert second != first
    assert _entry(runs_dir, "k-01").pid == engine  # adopted, not started again
    _wait(lambda: _state(runs_dir, "k-01") == "done", "k-01 done under the new supervisor")
    assert _entry(runs_dir, "k-01").attempts == 1

    _wait(lambda: _state(runs_dir, "k-02") == "running" and _level_done(runs_dir, "k-02", 0), "k-02's level 0")
    os.killpg(_entry(runs_dir, "k-02").pid, signal.SIGKILL)  # the engine dies without a word
    _wait(lambda: _state(runs_dir, "k-02") == "failed", "k-02 recorded as failed")
    assert "interrupted" in _entry(runs_dir, "k-02").reason
    _wait(lambda: _state(runs_dir, "k-03") == "done", "the queue to go on with k-03")

    _cli("queue", "retry", "k-02", runs=runs_dir)  # a failed run goes back in, and resumes
    _wait(lambda: _state(runs_dir, "k-02") == "done", "k-02 resumed to done")
    starts = [e for e in read_events(runs_dir / "k-02") if e.event == "run_start"]
    assert len(starts) == 2 and starts[-1].resumed_from >= 1
    assert open_run(runs_dir, "k-02").status == "done"


@pytest.mark.slow
def test_pause_during_a_level_then_resume_loses_no_completed_step(runs_dir, dataset, stop_supervisors):
    _wait.runs = runs_dir
    # levels of some seconds each, so the pause (a process start away) lands inside level 1, not between levels
    long_levels = [*SLOW, "--set", "epochs_per_level=200", "--set", "schedule=[0.3]"]
    out = _cli("train", *long_levels, "--set", f"dataset={dataset}", "--id", "p", "--queue", runs=runs_dir).stdout
    assert out.strip().splitlines()[-1] == "p"
    _cli("train", *FAST, "--set", f"dataset={dataset}", "--id", "next", "--queue", runs=runs_dir)
    _wait(lambda: any(e.event == "progress" and e.level == 1 and e.step > 0 for e in read_events(runs_dir / "p")),
          "p to be inside level 1")
    _cli("queue", "pause", runs=runs_dir)
    _wait(lambda: _state(runs_dir, "p") == "paused", "p to be paused")
    paused = open_run(runs_dir, "p")
    kept = paused.levels_complete
    assert paused.status == "cancelled" and kept >= 1
    saved = [e for e in read_events(runs_dir / "p") if e.event == "checkpoint" and e.level == kept]
    assert saved and saved[-1].step > 0  # the cancel saved the level in progress (core.engine.loop)
    n_events = len(read_events(runs_dir / "p"))
    steps = np.asarray(paused.group["train/steps"][:kept])
    time.sleep(2 * q.TICK_S + 0.5)
    assert _state(runs_dir, "next") == "queued" and not (runs_dir / "next").exists()  # nothing new starts
    assert q.read_queue(runs_dir).paused

    _cli("queue", "resume", runs=runs_dir)
    _wait(lambda: _state(runs_dir, "next") == "done", "the queue to finish")
    assert _state(runs_dir, "p") == "done"
    run = open_run(runs_dir, "p")
    starts = [e for e in read_events(runs_dir / "p") if e.event == "run_start"]
    assert starts[-1].resumed_from == kept  # continued from every level complete at the pause
    later = read_events(runs_dir / "p")[n_events:]  # the level in progress went on from the saved step
    first = next(e for e in later if e.event == "level_start")
    assert (first.level, first.step) == (kept, saved[-1].step)
    np.testing.assert_array_equal(np.asarray(run.group["train/steps"][:kept]), steps)
    assert run.status == "done" and run.levels_complete == run.levels


def test_bad_sweeps_are_one_line_and_queue_nothing(runs_dir, dataset):
    cases = [
        (["sweep", "--preset", "smoke"], "--grid"),
        (["sweep", "--preset", "smoke", "--grid", "bogus=1,2"], "'bogus'"),
        (["sweep", "--preset", "smoke", "--grid", "nets=2,0"], "nets=0"),
        (["sweep", "--preset", "smoke", "--grid", "seed=1,1"], "twice"),
        (["sweep", "--preset", "smoke", "--grid", "seed=1", "--parallel", "0"], "--parallel"),
        (["queue", "cancel", "nothing"], "neither"),
        (["queue", "move", "nothing", "1"], "not waiting"),
    ]
    for args, needle in cases:
        proc = _cli(*args, runs=runs_dir, check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("mothtui: "), proc.stderr
        assert needle in lines[0], lines[0]
    assert sorted(p.name for p in runs_dir.iterdir()) in ([], [".queue"])
    assert q.read_queue(runs_dir).entries == []


def test_queue_order_cancel_and_move_without_running(runs_dir):
    """The queue's bookkeeping, paused so that nothing starts: move, cancel a sweep, list."""
    q.pause(runs_dir)
    entries = [q.Entry(f"r{i}", ["--preset", "smoke"], sweep="a" if i < 2 else "b") for i in range(4)]
    q.enqueue(runs_dir, entries)
    assert not q.supervisor(runs_dir).alive  # paused: no supervisor for nothing
    q.move(runs_dir, "r3", 1)
    assert [e.run for e in q.read_queue(runs_dir).entries] == ["r3", "r0", "r1", "r2"]
    assert [e.run for e in q.cancel(runs_dir, ["a"])] == ["r0", "r1"]
    state = q.read_queue(runs_dir)
    assert [e.state for e in state.entries] == ["queued", "cancelled", "cancelled", "queued"]
    with pytest.raises(Exception, match="already in the queue"):
        q.enqueue(runs_dir, [q.Entry("r2", [])])
    text = _cli("queue", runs=runs_dir).stdout
    assert "PAUSED" in text and "r3" in text


@pytest.mark.slow
def test_parallel_runs_each_get_their_own_device(runs_dir, dataset, stop_supervisors):
    """On a node with two GPUs (as CUDA_VISIBLE_DEVICES names them) the queue runs two at once, one per GPU,
    the second started only once the first has its store (one set-up at a time)."""
    _wait.runs = runs_dir
    env = {**ENV, "CUDA_VISIBLE_DEVICES": "0,1"}  # the supervisor inherits it; the engines here use the CPU
    subprocess.run([sys.executable, "-m", "core", "sweep", *SLOW, "--set", f"dataset={dataset}", "--grid",
                    "seed=1", "--id", "long", "--runs", str(runs_dir)], check=True, env=env, capture_output=True)
    subprocess.run([sys.executable, "-m", "core", "train", *FAST, "--set", f"dataset={dataset}", "--id", "short",
                    "--queue", "--runs", str(runs_dir)], check=True, env=env, capture_output=True)
    _wait(lambda: _state(runs_dir, "short") == "running", "the second run to start beside the first")
    assert _state(runs_dir, "long-01") == "running" and (runs_dir / "long-01" / "zarr.json").exists()
    assert {_entry(runs_dir, "long-01").device, _entry(runs_dir, "short").device} == {"0", "1"}
    _wait(lambda: _state(runs_dir, "long-01") in q.FINAL and _state(runs_dir, "short") in q.FINAL, "both to end")
    assert [_state(runs_dir, i) for i in ("long-01", "short")] == ["done", "done"]


def test_dry_run_writes_nothing_and_queued_default_ids_differ(runs_dir):
    out = _cli("sweep", "--preset", "smoke", "--grid", "seed=1,2", "--grid", "nets=2,4", "--id", "d", "--dry-run",
               "--json", runs=runs_dir).stdout
    record = json.loads(out)
    assert [p["run"] for p in record["points"]] == ["d-01", "d-02", "d-03", "d-04"]
    assert record["points"][1]["values"] == {"seed": 1, "nets": 4} and record["keys"] == ["seed", "nets"]
    assert list(runs_dir.iterdir()) == []
    q.pause(runs_dir)  # nothing starts: only the queue's bookkeeping
    ids = [_cli("train", "--preset", "smoke", "--queue", runs=runs_dir).stdout.strip().splitlines()[-1]
           for _ in range(2)]
    assert ids[0] != ids[1] and [e.run for e in q.read_queue(runs_dir).entries] == ids
