"""The train / resume / runs commands as a user (or the UI) runs them: real processes, real signals.

A run killed with SIGKILL and resumed, and a run cancelled with SIGTERM and resumed, must both
equal an uninterrupted run bit for bit; bad input must give one line on stderr and touch nothing.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from core.events import read_events
from core.runstore import list_runs, open_run
from engine_fixtures import write_dataset
from fixture_runs import make_fixture_run

# Enough levels that a signal sent after level 0 lands while the run is still going.
TRAIN_SETTINGS = ["--preset", "smoke", "--set", "epochs_per_level=30", "--set", "schedule=[0.3,0.5,0.7,0.8,0.9]",
                  "--set", "early_stop_window=100000", "--set", "steps_per_call=50"]


ENV = dict(os.environ)  # with the session's compilation cache (conftest)


def _cli(*args, runs, check=False, timeout=120, env=None):
    proc = subprocess.run([sys.executable, "-m", "core", *args, "--runs", str(runs)], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, env={**ENV, **(env or {})})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _one_line_error(proc):
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mothtui: "), proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("cli") / "dataset", n=4000, seed=2)


def _start(runs, dataset, run_id, *extra):
    return subprocess.Popen([sys.executable, "-m", "core", "train", *TRAIN_SETTINGS, "--set",
                             f"dataset={dataset}", "--runs", str(runs), "--id", run_id, "--quiet", *extra],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env=ENV)


def _wait_for(run_dir, seen, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(seen(e) for e in read_events(run_dir)):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the event never came")


def _wait_for_level_end(run_dir, level, proc, timeout=300):
    _wait_for(run_dir, lambda e: e.event == "level_end" and e.level == level, proc, timeout)


def _same(a, b):
    for name in ("layer_0/weight", "layer_1/weight_mask", "layer_2/bias", "loss/val", "loss/test", "train/steps"):
        np.testing.assert_array_equal(np.asarray(a.group[name][:]), np.asarray(b.group[name][:]), err_msg=name)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, dataset):
    """The uninterrupted run every interrupted one must equal (trained once for the module)."""
    runs = tmp_path_factory.mktemp("straight") / "runs"
    proc = _start(runs, dataset, "straight")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == "straight"
    run = open_run(runs, "straight")
    assert run.status == "done" and run.attrs["preset"] == "smoke"
    return run


@pytest.mark.slow
def test_kill_or_cancel_then_resume_equals_uninterrupted(runs_dir, dataset, straight):

    # SIGKILL inside level 1, after it saved its progress: the run is left "running" with a dead pid,
    # shown as interrupted; resume continues the level from the saved step.
    proc = _start(runs_dir, dataset, "killed", "--set", "checkpoint_every_s=0.001")
    _wait_for(runs_dir / "killed", lambda e: e.event == "checkpoint" and e.level == 1, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    summary = {s.run_id: s for s in list_runs(runs_dir)}["killed"]
    assert summary.status == "interrupted" and summary.levels_complete >= 1

    # SIGTERM (the UI's cancel, to the process group): status cancelled, exit 130, id printed.
    proc = _start(runs_dir, dataset, "cancelled")
    _wait_for_level_end(runs_dir / "cancelled", 0, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out.strip().splitlines()[-1] == "cancelled"
    assert open_run(runs_dir, "cancelled").status == "cancelled"
    assert read_events(runs_dir / "cancelled")[-1].status == "cancelled"

    for run_id in ("killed", "cancelled"):  # resumed as on a machine with other caches: the recorded layout
        proc = _cli("resume", run_id, "--quiet", runs=runs_dir, timeout=300, env={"MOTHTUI_CPU_L2": "1K"})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().splitlines()[-1] == run_id
        resumed = open_run(runs_dir, run_id)
        assert resumed.status == "done"
        _same(resumed, straight)
        starts = [e for e in read_events(runs_dir / run_id) if e.event == "run_start"]
        assert starts[-1].resumed_from and starts[-1].layout == resumed.attrs["layout"] == straight.attrs["layout"]
        if run_id == "killed":  # the level in progress went on from where it was saved
            continued = [e for e in read_events(runs_dir / run_id) if e.event == "level_start" and e.step]
            assert continued and continued[0].level == starts[-1].resumed_from
            assert f"continuing level {continued[0].level} from step {continued[0].step:,}" in proc.stderr
    proc = _cli("resume", "straight", runs=straight.path.parent)
    assert "already done" in _one_line_error(proc)


def test_bad_input_is_one_line_and_creates_nothing(runs_dir, dataset):
    make_fixture_run(runs_dir, "existing")
    before = sorted(p.name for p in runs_dir.iterdir())
    cases = [
        (["train", "--preset", "smoke", "--set", "nets=0"], "'nets'"),
        (["train", "--preset", "smoke", "--set", "bogus=1"], "'bogus'"),
        (["train", "--preset", "nope"], "'nope'"),
        (["train", "--preset", "smoke", "--set", "dataset=/nonexistent/data"], "not found"),
        (["train", "--preset", "smoke", "--set", f"dataset={dataset}", "--id", "existing"], "already exists"),
        (["resume", "missing-run"], "no run"),
    ]
    for args, needle in cases:
        assert needle in _one_line_error(_cli(*args, runs=runs_dir))
    assert sorted(p.name for p in runs_dir.iterdir()) == before
    assert open_run(runs_dir, "existing").status == "done"


def test_corrupt_run_is_reported_and_left_alone(runs_dir):
    broken = runs_dir / "broken"
    broken.mkdir()
    (broken / "zarr.json").write_text("{not json")
    assert "broken" in _one_line_error(_cli("resume", "broken", runs=runs_dir))
    assert (broken / "zarr.json").read_text() == "{not json"
    listing = json.loads(_cli("runs", "--json", runs=runs_dir, check=True).stdout)
    (entry,) = listing["runs"]
    assert entry["id"] == "broken" and entry["status"] == "damaged"


def test_runs_lists_runs_with_status(runs_dir):
    make_fixture_run(runs_dir, "one", created="2026-01-01T00:00:00+00:00")
    make_fixture_run(runs_dir, "two", status="running", levels_complete=2, created="2026-01-02T00:00:00+00:00")
    listing = json.loads(_cli("runs", "--json", runs=runs_dir, check=True).stdout)
    assert [(r["id"], r["status"], r["levels_complete"]) for r in listing["runs"]] == [
        ("two", "interrupted", 2), ("one", "done", 5)]
    text = _cli("runs", runs=runs_dir, check=True).stdout
    assert "interrupted" in text and "one" in text


def _interrupted(runs_dir, dataset, run_id):
    """A run SIGKILLed after its first level: left `running` with a dead owner."""
    proc = _start(runs_dir, dataset, run_id)
    _wait_for_level_end(runs_dir / run_id, 0, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return open_run(runs_dir, run_id)


def _together(*commands, runs):
    """Start the commands at the same moment; their (returncode, stdout, stderr), in order."""
    procs = [subprocess.Popen([sys.executable, "-m", "core", *c, "--runs", str(runs)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for c in commands]
    outputs = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


@pytest.mark.slow
def test_one_owner_two_resumes_at_once_one_trains(runs_dir, dataset, straight):
    """Two users press `r` on one interrupted run at the same moment: exactly one trains it."""
    _interrupted(runs_dir, dataset, "twice")
    results = _together(["resume", "twice", "--quiet"], ["resume", "twice", "--quiet"], runs=runs_dir)
    assert sorted(code for code, _, _ in results) == [0, 2], results
    line = next(err for code, _, err in results if code == 2).strip()
    assert line.count("\n") == 0 and line.startswith("mothtui: run 'twice' is in use by ")
    assert "resume twice" in line and " on " in line and "since " in line, line
    run = open_run(runs_dir, "twice")
    assert run.status == "done" and not run.owner().alive and not (run.path / "owner.json").exists()
    _same(run, straight)


@pytest.mark.slow
def test_one_owner_two_trains_of_one_id_and_analyze_during_training(runs_dir, dataset):
    args = ["train", *TRAIN_SETTINGS, "--set", f"dataset={dataset}", "--set", "schedule=[0.5]", "--id", "same",
            "--quiet"]
    results = _together(args, args, runs=runs_dir)
    assert sorted(code for code, _, _ in results) == [0, 2], results
    loser = next(err for code, _, err in results if code == 2).strip()
    assert loser.count("\n") == 0 and loser.startswith(f"mothtui: run 'same' already exists in {runs_dir}"), loser
    assert open_run(runs_dir, "same").status == "done"

    # a short level 0, then levels that keep it training throughout
    proc = _start(runs_dir, dataset, "busy", "--set", "level0_epochs=30", "--set", "epochs_per_level=3000")
    try:
        _wait_for_level_end(runs_dir / "busy", 0, proc)
        before = sorted(p.name for p in (runs_dir / "busy").iterdir())
        line = _one_line_error(_cli("analyze", "busy", "--structure-only", runs=runs_dir))
        assert line.startswith("mothtui: run 'busy' is in use by ") and f"pid {proc.pid} on " in line, line
        line = _one_line_error(_cli("resume", "busy", runs=runs_dir))
        assert "is in use by" in line
        line = _one_line_error(_cli("delete", "busy", runs=runs_dir))
        assert "is in use by" in line
        assert "analysis" not in before and sorted(p.name for p in (runs_dir / "busy").iterdir()) == before
        listing = json.loads(_cli("runs", "--json", runs=runs_dir, check=True).stdout)
        owner = next(r for r in listing["runs"] if r["id"] == "busy")["owner"]
        assert owner["pid"] == proc.pid and owner["command"].startswith("mothtui train")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def small_disk(tmp_path):
    """A real, size-limited file system (tmpfs) for the run store; skipped where we may not mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): the disk-full test runs in CI, which is root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_fails_the_run_in_one_line_and_resume_continues(runs_dir, dataset, small_disk, straight):
    """On a real tmpfs: the disk fills up after level 1; the run fails cleanly; freed, resume finishes it."""
    disk_runs = small_disk / "runs"
    proc = _start(disk_runs, dataset, "full")
    _wait_for_level_end(disk_runs / "full", 1, proc)
    filler = small_disk / "filler"
    with open(filler, "wb") as f:  # take every byte left
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    line = err.strip()
    assert line.count("\n") == 0 and "No space left on device" in line, err
    complete = int(line.split(" levels are complete")[0].rsplit(" ", 1)[-1])
    assert complete >= 2 and f"will continue from level {complete}" in line and "Traceback" not in err
    assert {s.run_id: s.status for s in list_runs(disk_runs)}["full"] in ("failed", "interrupted")
    filler.unlink()
    proc = _cli("resume", "full", "--quiet", runs=disk_runs, timeout=300)
    assert proc.returncode == 0, proc.stderr
    _same(open_run(disk_runs, "full"), straight)


def test_a_run_abandoned_before_its_store_is_taken_over_by_train_and_explained_by_resume(runs_dir, dataset):
    """Killed between claiming its directory and writing its store: only owner.json is left, its owner dead."""
    claimer = subprocess.Popen([sys.executable, "-c", "import sys, time; from core.owner import claim_new; "
                                "claim_new(sys.argv[1], 'mothtui train --id gone'); print('held', flush=True); "
                                "time.sleep(120)", str(runs_dir / "gone")], stdout=subprocess.PIPE, text=True, env=ENV)
    assert claimer.stdout.readline().strip() == "held"
    claimer.kill()
    claimer.wait()
    assert sorted(p.name for p in (runs_dir / "gone").iterdir()) == ["owner.json"]
    line = _one_line_error(_cli("resume", "gone", runs=runs_dir))
    assert line == ("mothtui: run 'gone' was abandoned before its store was written; "
                    "start it again with `mothtui train --id gone`"), line
    proc = _cli("train", "--preset", "smoke", "--set", f"dataset={dataset}", "--set", "schedule=[0.5]",
                "--set", "epochs_per_level=2", "--id", "gone", "--quiet", runs=runs_dir, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "gone"
    run = open_run(runs_dir, "gone")
    assert run.status == "done" and run.levels_complete == run.levels and not (run.path / "owner.json").exists()


def _chunks_done(staging):
    try:
        return len([p for p in (staging / ".chunks_done").iterdir() if not p.name.startswith(".")])
    except OSError:
        return 0


@pytest.mark.slow
def test_a_train_killed_while_simulating_leaves_one_staging_store_and_the_next_start_continues_it(runs_dir, tmp_path):
    """SIGKILLed twice while simulating its dataset (small chunks make it slow enough): one staging store at
    most is left, each start continues it from its completed chunks, and the dataset equals one simulated
    in one go, bit for bit."""
    env = {**ENV, "MOTHTUI_SIM_CHUNK": "200"}
    train = [sys.executable, "-m", "core", "train", "--preset", "smoke", "--set", "samples=8000",
             "--set", "schedule=[0.5]", "--set", "epochs_per_level=1", "--runs", str(runs_dir)]
    datasets = runs_dir / ".datasets"
    seen = 0
    for _ in range(2):
        proc = subprocess.Popen([*train, "--quiet"], env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while time.time() < deadline:  # a few more chunks than the last start left
            staging = list(datasets.glob(".sim_*.writing-*")) if datasets.is_dir() else []
            if staging and _chunks_done(staging[0]) >= seen + 3:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        staging = list(datasets.glob(".sim_*.writing-*"))
        assert len(staging) == 1, staging
        assert _chunks_done(staging[0]) >= seen + 3
        seen = _chunks_done(staging[0])
    proc = subprocess.run(train, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    continued = [line for line in proc.stderr.splitlines() if "continuing from" in line]
    assert len(continued) == 1 and continued[0].startswith(f"simulating dataset: continuing from {seen * 200:,}/8,000"), \
        proc.stderr
    assert not list(datasets.glob(".sim_*")), list(datasets.iterdir())
    (made,) = [p for p in datasets.iterdir() if p.name.startswith("sim_")]
    assert sorted(p.name for p in made.iterdir() if p.name.startswith(".")) == []  # no markers, no owner record
    assert not (made / "owner.json").exists()
    straight = tmp_path / "straight"
    subprocess.run([sys.executable, "-m", "core", "simulate", "--samples", "8000", "--seed", "0", "--chunk", "200",
                    "--out", str(straight)], env=env, check=True, capture_output=True, timeout=300)
    from core.dataset import open_dataset
    a, b = open_dataset(made), open_dataset(straight)
    for name in ("initial", "controls", "final", "valid"):
        np.testing.assert_array_equal(np.asarray(a.arrays[name][:]), np.asarray(b.arrays[name][:]), err_msg=name)
    assert a.attrs["invalid"] == b.attrs["invalid"]
