"""Sweeps without training: grids and [sweep] tables expand to the right points, every point's `train`
arguments give the point's config back, and the SLURM array script is valid bash that names each point
once with a command the CLI accepts (run for real with a stand-in `mothtui` on PATH)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from core.cli import build_parser
from core.config import parse_override, resolve
from core.errors import ConfigError
from core.sweep import SweepSpec, plan_sweep, read_sweep, split_values, toml_value
from fixture_runs import make_fixture_run


def test_split_values_keeps_lists_and_strings_whole():
    assert split_values("1,2, 3") == ["1", "2", "3"]
    assert split_values("[64,64],[128,128,16]") == ["[64,64]", "[128,128,16]"]
    assert split_values('"a,b",c') == ['"a,b"', "c"]


def test_grid_and_points_cross_and_round_trip(tmp_path):
    config = tmp_path / "study.toml"
    config.write_text(textwrap.dedent("""
        nets = 4
        [sweep.grid]
        learning_rate = [0.001, 0.003]
        [[sweep.points]]
        hidden = [8, 8]
        schedule = [0.5]
        [[sweep.points]]
        hidden = [16, 16, 16]
        schedule = [0.5, 0.7]
    """))
    assert resolve("smoke", config).nets == 4  # the [sweep] table is not a config key
    spec = SweepSpec.build("smoke", config, ["batch=32"], ["seed=1,2"])
    points = spec.expand()
    assert len(points) == 2 * 2 * 2 and spec.keys == ["hidden", "schedule", "learning_rate", "seed"]
    assert points[0] == {"hidden": [8, 8], "schedule": [0.5], "learning_rate": 0.001, "seed": 1}
    for values in points:  # what `train` gets for a point resolves to that point
        args = build_parser().parse_args(["train", *spec.train_args(values)])
        cfg = resolve(args.preset, args.config, args.overrides)
        assert (cfg.hidden, cfg.schedule, cfg.learning_rate, cfg.seed, cfg.batch, cfg.nets) == (
            tuple(values["hidden"]), tuple(values["schedule"]), values["learning_rate"], values["seed"], 32, 4)
    for value in (True, 3, 0.1, 1e-7, "layer", [1, 2.5], float("inf")):  # toml_value writes what --set reads
        assert parse_override(f"seed={toml_value(value)}")[1] == value


def test_plan_refuses_bad_points_and_taken_names(runs_dir):
    with pytest.raises(ConfigError, match="sweep point nets=0"):
        plan_sweep(runs_dir, SweepSpec.build("smoke", None, [], ["nets=2,0"]), "x")
    make_fixture_run(runs_dir, "x-02")
    with pytest.raises(Exception, match="'x-02' already exists"):
        plan_sweep(runs_dir, SweepSpec.build("smoke", None, [], ["seed=1,2"]), "x")
    with pytest.raises(Exception, match="bad run id"):
        plan_sweep(runs_dir, SweepSpec.build("smoke", None, [], ["seed=1,2"]), "../up")


STUB = """#!{python}
# A stand-in `mothtui`: parse the arguments as the real CLI does, and record them.
import json, os, sys
sys.path.insert(0, {root!r})
from core.cli import build_parser
args = build_parser().parse_args(sys.argv[1:])
with open(os.environ["STUB_LOG"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "command": args.command}}) + "\\n")
"""


def _task(script, task, tmp_path):
    log = tmp_path / f"calls-{task}.jsonl"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": str(task),
           "STUB_LOG": str(log)}
    env.pop("MOTHTUI", None)
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=60)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def test_slurm_script_names_every_point_once_with_commands_the_cli_accepts(runs_dir, tmp_path):
    (tmp_path / "bin").mkdir()
    stub = tmp_path / "bin" / "mothtui"
    stub.write_text(STUB.format(python=sys.executable, root=os.getcwd()))
    stub.chmod(0o755)
    script = tmp_path / "sweep.sh"
    cmd = [sys.executable, "-m", "core", "sweep", "--preset", "smoke", "--set", "schedule=[0.5, 0.7]",
           "--grid", "hidden=[8,8],[16,16]", "--grid", "seed=1,2,3", "--id", "arr", "--slurm", str(script),
           "--runs", str(runs_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "arr"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "#SBATCH --array=0-5" in text
    record = read_sweep(runs_dir, "arr")
    assert record.where == f"slurm:{script}" and len(record.points) == 6
    assert not (runs_dir / ".queue").exists()  # nothing queued locally

    seen = []
    for task, point in enumerate(record.points):
        proc, calls = _task(script, task, tmp_path)
        assert proc.returncode == 0, proc.stderr
        (call,) = calls
        args = build_parser().parse_args(call["argv"])
        assert args.command == "train" and args.run_id == point.run and args.sweep == "arr"
        assert args.runs == runs_dir.resolve() and args.quiet
        cfg = resolve(args.preset, args.config, args.overrides)
        assert (list(cfg.hidden), cfg.seed) == (point.values["hidden"], point.values["seed"])
        seen.append(args.run_id)
    assert sorted(seen) == sorted(set(seen)) == sorted(record.run_ids)
    proc, calls = _task(script, 6, tmp_path)
    assert proc.returncode == 2 and not calls and "no point 6" in proc.stderr

    # Submitted again: a done run is skipped, an interrupted one resumed.
    make_fixture_run(runs_dir, "arr-01")
    make_fixture_run(runs_dir, "arr-02", status="running", levels_complete=2)
    proc, calls = _task(script, 0, tmp_path)
    assert proc.returncode == 0 and not calls and "arr-01 is done" in proc.stdout
    proc, calls = _task(script, 1, tmp_path)
    (call,) = calls
    args = build_parser().parse_args(call["argv"])
    assert args.command == "resume" and args.run_id == "arr-02"
    assert subprocess.run(cmd, capture_output=True, text=True).returncode != 0  # no overwrite of sweep or script


@pytest.mark.slow
def test_plan_of_a_sweep_sums_its_runs(runs_dir):
    """`plan --grid`: seeds share one plan; the total time is the sum over the runs (one at a time)."""
    proc = subprocess.run([sys.executable, "-m", "core", "plan", "--preset", "smoke", "--grid", "seed=1,2,3",
                           "--calibration", "0.5", "--json", "--runs", str(runs_dir)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    (config,) = plan["configs"]
    total = plan["total"]
    assert config["runs"] == 3 and total["runs"] == 3 and total["distinct_configs"] == 1 and total["fits"]
    assert total["time_here_s"] == pytest.approx(3 * config["time_here_s"])
    assert total["memory_peak"] == config["memory_peak"] > 0
    assert set(total["time_gpus_s"]) == set(config["time_gpus_s"]) and total["time_gpus_s"]


def test_sweep_status_counts_and_eta(runs_dir):
    """The runs list's sweep line: done/total from the runs, the ETA from the queue's timings."""
    from core import queue as q
    from core.runlist import list_runs
    from core.sweep import write_sweep
    from core.sweep_status import sweep_statuses

    record = plan_sweep(runs_dir, SweepSpec.build("smoke", None, [], ["seed=1,2,3,4"]), "e")
    write_sweep(runs_dir, record)
    make_fixture_run(runs_dir, "e-01")
    make_fixture_run(runs_dir, "e-02")
    t = "2026-12-01T10:{:02d}:00+00:00"
    with q.locked(runs_dir) as state:  # two done in 10 minutes each, one running for 4, one waiting
        state.paused = True
        state.entries = [q.Entry("e-01", [], "e", "done", started=t.format(0), ended=t.format(10)),
                         q.Entry("e-02", [], "e", "done", started=t.format(10), ended=t.format(20)),
                         q.Entry("e-03", [], "e", "running", started=t.format(20)),
                         q.Entry("e-04", [], "e", "queued")]
    now = __import__("datetime").datetime.fromisoformat(t.format(24)).timestamp()
    (status,) = sweep_statuses(runs_dir, list_runs(runs_dir), now=now)
    assert (status.total, status.done, status.queued) == (4, 2, 1)
    assert status.eta_s == pytest.approx(6 * 60 + 10 * 60)

    # the running run's engine says 3 more minutes (an event 1 minute old that said 4): that replaces
    # the mean's guess for it; the waiting one still takes the mean of the finished runs
    from core.events import EventWriter, make

    running = make_fixture_run(runs_dir, "e-03", status="running", levels_complete=1)
    EventWriter(running.path).write(make("progress", now - 60, level=1, step=10, max_steps=100, active=4,
                                         loss=[1e-3] * 4, samples_per_s=1.0, eta_s=240.0))
    (status,) = sweep_statuses(runs_dir, list_runs(runs_dir), now=now)
    assert status.eta_s == pytest.approx(3 * 60 + 10 * 60)

    # before any member has finished: a run takes what the running one is heading for (4 + 3 min)
    with q.locked(runs_dir) as state:
        for entry in state.entries[:2]:
            entry.state, entry.ended = "queued", None
    (status,) = sweep_statuses(runs_dir, list_runs(runs_dir), now=now)
    assert status.eta_s == pytest.approx(3 * 60 + 3 * 7 * 60)
