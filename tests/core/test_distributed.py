"""Distributed runs: two real processes on loopback write the same run as one process, and a run
whose processes were killed resumes to the same run.

The end-to-end tests start `python -m core train --distributed` twice (process 0 hosts the
jax.distributed coordinator on 127.0.0.1) and once without it, on the same dataset and config.
The single process sees 4 CPU devices and each distributed process 2, so the networks are spread
differently (the engine keeps at least two networks per device, which makes results independent
of that). A compilation cache shared by the subprocesses keeps the later starts cheap. The unit
tests check the markers, the level completion rule and the option handling without JAX's runtime.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

from core import distributed
from core.config import PRESETS, from_dict
from core.distributed import Cluster, advance, check_alignment, level_covered, mark_slice, settings
from core.engine.sharding import NetSlice
from core.errors import MothError, StoreError
from core.runstore import Run, open_run, summarize
from engine_fixtures import write_dataset

REPO = Path(__file__).resolve().parents[2]
NETS = 4
#: Eight levels, so a kill right after the first level is certainly mid-run.
SCHEDULE = "[0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9]"
LEVELS = 8
JOB_TIMEOUT_S = 300


# ---- helpers ------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Study:
    """A dataset, a run store and a JAX compilation cache shared by every process of this module."""

    def __init__(self, root: Path):
        self.root = root
        self.runs = root / "runs"
        self.dataset = write_dataset(root / "data", 4000, seed=0, invalid_every=97)
        self.cache = root / "jax-cache"
        self.logs = root / "logs"
        self.logs.mkdir()

    def env(self, devices: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MOTHTUI_", "JAX_", "XLA_"))}
        env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
                   JAX_COMPILATION_CACHE_DIR=str(self.cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", PYTHONPATH=str(REPO))
        return env

    def start(self, command: list[str], name: str, devices: int) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        runs = [] if command[0] == "simulate" else ["--runs", str(self.runs)]
        return subprocess.Popen([sys.executable, "-m", "core", *command, *runs],
                                cwd=self.root, env=self.env(devices), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)

    def train(self, run_id: str, devices: int, distributed_args: list[str] = ()) -> list[str]:
        return ["train", "--preset", "smoke", "--set", f"nets={NETS}", "--set", f"schedule={SCHEDULE}",
                "--set", f"dataset={self.dataset}", "--id", run_id, "--quiet", *distributed_args]

    def job(self, command, run_id: str) -> list[subprocess.Popen]:
        """Both processes of one distributed job; `command(process_args)` builds each command line."""
        port = _free_port()
        return [self.start(command(["--distributed", "--coordinator", f"127.0.0.1:{port}",
                                    "--num-processes", "2", "--process-id", str(i)]),
                           f"{run_id}-{int(time.time() * 1000)}-p{i}", devices=2)
                for i in range(2)]

    def log_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.logs.glob("*.log")))


def _wait(procs: list[subprocess.Popen], study: Study) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    codes = [p.returncode for p in procs]
    assert codes == [0] * len(procs), f"exit codes {codes}\n{study.log_text()}"


def _arrays(group: zarr.Group, prefix: str = ""):
    for name, node in group.members():
        if isinstance(node, zarr.Group):
            yield from _arrays(node, f"{prefix}{name}/")
        else:
            yield f"{prefix}{name}", node


def assert_same_run(path_a: Path, path_b: Path) -> None:
    """Every array (except wall-clock timings) and every loss equal, bit for bit."""
    with warnings.catch_warnings():  # the run directory also holds events and markers
        warnings.simplefilter("ignore")
        a, b = zarr.open_group(path_a, mode="r"), zarr.open_group(path_b, mode="r")
        names = dict(_arrays(a))
        assert set(names) == set(dict(_arrays(b)))
    assert {"layer_0/weight", "layer_2/bias_mask", "loss/val", "train/steps"} <= set(names)
    for name, array in names.items():
        if name == "train/seconds":
            continue
        x, y = array[:], b[name][:]
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f"{name} differs"
    run_a, run_b = Run.open(path_a), Run.open(path_b)
    for key in ("config", "scaler", "split", "levels_complete", "status"):
        assert run_a.attrs[key] == run_b.attrs[key], key
    for split in ("train", "val", "test"):
        assert np.array_equal(run_a.losses(split), run_b.losses(split))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The single-process reference and the first two-process run, started side by side."""
    study = Study(tmp_path_factory.mktemp("distributed"))
    single = study.start(study.train("single", 4), "single", devices=4)
    job = study.job(lambda extra: study.train("dist", 2, extra), "dist")
    _wait([single, *job], study)
    return study


# ---- end to end ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_two_processes_write_the_same_run_as_one_process(study):
    single, dist = study.runs / "single", study.runs / "dist"
    assert_same_run(single, dist)
    run = Run.open(dist)
    assert run.status == "done" and run.levels_complete == LEVELS
    assert run.attrs["processes"] == 2 and run.attrs["chunk_nets"] == NETS // 2
    # every level carries one marker per slice, and only process 0 wrote events
    for level in range(LEVELS):
        slices = sorted(m["nets"] for m in distributed.written_slices(dist, level))
        assert slices == [[0, 2], [2, 4]]
    events = [json.loads(line) for line in (dist / "events.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "run_start" and events[-1] == {**events[-1], "event": "run_end", "status": "done"}
    assert all(len(e["loss"]["val"]) == 2 for e in events if e["event"] == "level_end")
    assert np.isfinite(run.group["train/seconds"][:]).all()


@pytest.mark.slow
def test_killed_distributed_run_resumes_to_the_same_run(study):
    run_dir = study.runs / "killed"
    job = study.job(lambda extra: study.train("killed", 2, extra), "killed")
    # Kill process 1 as soon as it has written its first level, then process 0: a crash mid-run.
    first_slice = run_dir / distributed.SLICES_DIR / "level_000" / "nets_2-4.json"
    deadline = time.monotonic() + JOB_TIMEOUT_S
    try:
        while not first_slice.exists():
            assert all(p.poll() is None for p in job), study.log_text()
            assert time.monotonic() < deadline, "the distributed run never wrote a level"
            time.sleep(0.01)
        job[1].send_signal(signal.SIGKILL)
        job[0].send_signal(signal.SIGKILL)
    finally:
        for p in job:
            if p.poll() is None:
                p.kill()
            p.wait()
    run = Run.open(run_dir)
    done_by: dict[tuple[int, int], int] = {}  # slice -> levels it had written when killed
    for level in range(LEVELS):
        for m in distributed.written_slices(run_dir, level):
            done_by[tuple(m["nets"])] = max(done_by.get(tuple(m["nets"]), 0), level + 1)
    assert 0 <= run.levels_complete < LEVELS, "the run finished before it could be killed"
    # levels_complete never runs ahead of the slowest slice
    assert run.levels_complete <= min(done_by.get((0, 2), 0), done_by.get((2, 4), 0))
    assert summarize(run_dir).status == "interrupted"

    job = study.job(lambda extra: ["resume", "killed", "--quiet", *extra], "resume")
    _wait(job, study)
    assert_same_run(study.runs / "single", run_dir)
    assert open_run(study.runs, "killed").status == "done"


@pytest.mark.slow
def test_a_bad_request_stops_every_process_with_one_line_and_damages_nothing(study):
    existing = study.runs / "dist"
    before = {p: p.read_bytes() for p in existing.rglob("*") if p.is_file()}
    job = study.job(lambda extra: study.train("dist", 2, extra), "again")
    for p in job:
        p.wait(timeout=JOB_TIMEOUT_S)
    assert [p.returncode for p in job] == [2, 2], study.log_text()
    for log in sorted(study.logs.glob("again-*.log")):
        lines = [line for line in log.read_text().splitlines() if line.startswith("mothtui:")]
        assert lines == [f"mothtui: run 'dist' already exists in {study.runs}"], log.read_text()
        assert "Traceback" not in log.read_text()
    assert {p: p.read_bytes() for p in existing.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_two_processes_simulate_the_same_dataset_as_one(study):
    """`simulate --distributed`: each process integrates its chunks of one shared dataset store."""
    from core.dataset import create_dataset, open_dataset

    out = study.root / "sim-dist.zarr"
    job = study.job(lambda extra: ["simulate", "--samples", "3000", "--chunk", "1024", "--seed", "5",
                                   "--out", str(out), *extra], "simulate")
    _wait(job, study)
    reference = create_dataset(study.root / "sim-single.zarr", samples=3000, seed=5, chunk=1024)
    a, b = open_dataset(out), open_dataset(reference)
    assert a.complete and a.attrs["invalid"] == b.attrs["invalid"]
    for name in ("initial", "controls", "final", "valid"):
        assert np.array_equal(a.group[name][:], b.group[name][:], equal_nan=name != "valid"), name


# ---- the pieces, without processes ----------------------------------------------------------------

def _run(tmp_path, nets=4, chunk_nets=2) -> Run:
    config = from_dict({**PRESETS["smoke"], "nets": nets})
    scaler = {"x_min": [0.0] * 10, "x_max": [1.0] * 10, "y_min": [0.0] * 7, "y_max": [1.0] * 7}
    return Run.create(tmp_path / "run", config, dataset="(none)", chunk_nets=chunk_nets,
                      split={"train": [0, 64], "val": [64, 80], "test": [80, 100]}, scaler=scaler)


def test_a_level_completes_only_when_its_markers_cover_every_network(tmp_path):
    run = _run(tmp_path)
    mark_slice(run.path, 0, NetSlice(2, 4), process=1, seconds=2.0)
    mark_slice(run.path, 1, NetSlice(2, 4), process=1, seconds=2.0)
    assert not level_covered(run.path, 0, 4) and advance(run) == 0
    mark_slice(run.path, 0, NetSlice(0, 2), process=0, seconds=3.0)
    assert level_covered(run.path, 0, 4)
    assert advance(run) == 1 and Run.open(run.path).levels_complete == 1
    assert run.group["train/seconds"][0] == 3.0  # the slowest slice's time
    # a marker of another slicing (a resume with another process count) counts by the networks it names
    mark_slice(run.path, 1, NetSlice(0, 1), process=0, seconds=1.0)
    assert advance(run) == 1
    mark_slice(run.path, 1, NetSlice(1, 2), process=1, seconds=1.0)
    assert advance(run) == 2


def test_a_process_count_that_would_split_a_chunk_is_refused(tmp_path):
    run = _run(tmp_path, nets=6, chunk_nets=3)
    check_alignment(run, Cluster(0, 2))
    check_alignment(run, Cluster(0, 1))
    with pytest.raises(StoreError, match="chunks of 3 networks"):
        check_alignment(run, Cluster(0, 3))


def test_slices_of_networks_and_rows():
    assert [Cluster(p, 3).net_slice(8) for p in range(3)] == [NetSlice(0, 3), NetSlice(3, 6), NetSlice(6, 8)]
    with pytest.raises(MothError, match="cannot be split"):
        Cluster(0, 5).net_slice(4)
    with pytest.raises(MothError, match="without networks"):
        Cluster(2, 3).net_slice(4)
    rows = [Cluster(p, 3).rows(10, block=3) for p in range(3)]
    assert rows == [(0, 6), (6, 10), (10, 10)]


def test_options_and_environment(monkeypatch):
    for name in (distributed.ENV_COORDINATOR, distributed.ENV_NUM_PROCESSES, distributed.ENV_PROCESS_ID):
        monkeypatch.delenv(name, raising=False)
    assert settings() == {}  # JAX reads the cluster scheduler's variables
    assert settings("10.0.0.1:1234", 4, 3) == {"coordinator_address": "10.0.0.1:1234",
                                                "num_processes": 4, "process_id": 3}
    monkeypatch.setenv(distributed.ENV_COORDINATOR, "node7:5000")
    monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, "2")
    monkeypatch.setenv(distributed.ENV_PROCESS_ID, "1")
    assert settings() == {"coordinator_address": "node7:5000", "num_processes": 2, "process_id": 1}
    assert settings(process_id=0)["process_id"] == 0  # an option beats the environment
    for bad, match in [(("node7", 2, 0), "HOST:PORT"), (("h:1", 2, 2), "process id"),
                       (("h:1", 0, 0), "at least 1")]:
        with pytest.raises(MothError, match=match):
            settings(*bad)
    monkeypatch.delenv(distributed.ENV_PROCESS_ID)
    with pytest.raises(MothError, match="go together"):
        settings()


def test_distributed_options_need_the_flag_and_bad_ones_are_one_line(tmp_path):
    from core.cli import build_parser

    args = build_parser().parse_args(["train", "--num-processes", "2"])
    with pytest.raises(MothError, match="needs --distributed"):
        distributed.from_args(args)
    proc = subprocess.run([sys.executable, "-m", "core", "train", "--distributed", "--coordinator", "nohost",
                           "--num-processes", "2", "--process-id", "0", "--runs", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "HOST:PORT" in proc.stderr and "Traceback" not in proc.stderr


def test_a_failed_peer_of_this_attempt_stops_the_others(tmp_path):
    run = _run(tmp_path)
    sync = distributed.LevelSync(Cluster(0, 2), attempt="now")
    distributed.report(run.path, 1, "earlier", "failed", "out of memory")  # a previous attempt: ignored
    sync.slice_written(run, 0, NetSlice(0, 2), seconds=1.0)
    distributed.report(run.path, 1, "now", "failed", "MothError: disk full")
    with pytest.raises(MothError, match="process 1 failed: MothError: disk full"):
        sync.slice_written(run, 1, NetSlice(0, 2), seconds=1.0)
    with pytest.raises(MothError, match="process 1 failed"):
        sync.wait_for_all(run)


@pytest.mark.slow
def test_every_process_decides_together_that_the_output_exists(study):
    """`simulate --distributed` onto an existing store: one decision by process 0, the same line everywhere."""
    out = study.root / "taken.zarr"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    job = study.job(lambda extra: ["simulate", "--samples", "3000", "--seed", "5", "--out", str(out), *extra],
                    "taken")
    for p in job:
        p.wait(timeout=JOB_TIMEOUT_S)
    assert [p.returncode for p in job] == [2, 2], study.log_text()
    for log in sorted(study.logs.glob("taken-*.log")):
        text = log.read_text()
        assert [line for line in text.splitlines() if line.startswith("mothtui:")] == \
            [f"mothtui: {out} already exists (use --force to replace it)"], text
        assert "Traceback" not in text
    assert (out / "keep.txt").read_text() == "mine" and sorted(p.name for p in out.iterdir()) == ["keep.txt"]


@pytest.mark.slow
def test_a_peer_cancelled_while_simulating_ends_every_process_with_one_line(study):
    """SIGTERM to process 1 during the shared dataset simulation of `train`: both stop, no run, no traceback."""
    job = study.job(lambda extra: ["train", "--preset", "smoke", "--set", f"nets={NETS}", "--set", "samples=400000",
                                   "--set", "data_seed=9", "--id", "cancelled-sim", *extra], "cancelsim")
    datasets = study.runs / ".datasets"

    def simulating() -> bool:  # a completed chunk is marked in the staging store (core.dataset)
        return any((staging / ".chunks_done").is_dir() and any((staging / ".chunks_done").iterdir())
                   for staging in datasets.glob(".sim_n400000_seed9*"))

    deadline = time.monotonic() + JOB_TIMEOUT_S
    try:
        while not simulating():
            assert all(p.poll() is None for p in job), study.log_text()
            assert time.monotonic() < deadline, "the simulation never reported progress"
            time.sleep(0.05)
        job[1].send_signal(signal.SIGTERM)
        for p in job:
            p.wait(timeout=JOB_TIMEOUT_S)
    finally:
        for p in job:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert job[1].returncode == 130 and job[0].returncode == 2, study.log_text()
    logs = sorted(study.logs.glob("cancelsim-*.log"))
    lines = [[line for line in log.read_text().splitlines() if line.startswith("mothtui:")] for log in logs]
    kept = " (its completed chunks are kept: the next start continues from them)"
    assert lines[0] == ["mothtui: process 1: cancelled while simulating the dataset; no run was created" + kept], lines
    assert lines[1] == ["mothtui: cancelled while simulating the dataset; no run was created" + kept], lines
    assert not any("Traceback" in log.read_text() for log in logs)
    assert not (study.runs / "cancelled-sim").exists()
    # no dataset; its staging store is kept (one) so the next start continues its completed chunks
    assert not [p for p in datasets.glob("sim_n400000_seed9*")]
    assert len(list(datasets.glob(".sim_n400000_seed9*"))) <= 1
