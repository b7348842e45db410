"""`mothtui plan`: every preset plans and its numbers add up; a config that does not fit is refused by
`plan` and by `train` (before train writes anything); the predicted time of real runs is right within 1.5x.

The preset plans run in this process (`core.cli.main`, the suite's four CPU devices); the refusals and
the real runs are processes, as a user runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.cli import main
from core.config import PRESETS, resolve
from core.events import read_events
from core.plan import COMPILE_CHECK_FRACTION, GPU_PEAKS, parse_bytes
from engine_fixtures import write_dataset

ROOT = Path(__file__).resolve().parents[2]
#: How far the predicted time of a run's levels may be from the measured one, either way.
TIME_TOLERANCE = 1.5


def _cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mothtui: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("plan") / "data.zarr", n=4000, seed=0)


def _plan_json(capsys, *args: str) -> dict:
    """The plan's one JSON document on stdout; on stderr (a terminal), meanwhile, what it is doing:
    `plan k/n: …`, k = 1..n, each line rewritten in place, and cleared at the end."""
    from unittest import mock

    with mock.patch.object(sys.stderr, "isatty", return_value=True):
        assert main(["plan", *args, "--json", "--calibration", "1"]) == 0
    out, err = capsys.readouterr()
    assert err.endswith("\r\x1b[2K"), err  # nothing of the progress is left on the screen
    steps = [line for line in err.split("\r\x1b[2K") if line]
    n = len(steps)
    assert n >= 4 and [line.split(":")[0] for line in steps] == [f"plan {k}/{n}" for k in range(1, n + 1)], err
    assert "compiling the training chunk" in steps[0] and any("timing training" in line for line in steps), err
    return json.loads(out)


def _check_consistent(plan: dict) -> None:
    """Keys present, numbers positive, the parts adding up to the totals."""
    cfg, memory, cost, here = plan["config"], plan["memory"], plan["cost"], plan["time"]["here"]
    levels = plan["levels"]
    assert len(levels) == plan["levels_count"] == 1 + len(cfg["schedule"])
    for key in ("parameters", "optimizer_state", "masks", "device_data", "peak", "limit", "analytic_peak"):
        assert memory[key] > 0, key
    assert memory["eval_activations"] >= 0
    for part in ("parameters", "optimizer_state", "masks", "device_data", "eval_activations"):
        assert memory[part] <= memory["peak"], part
    assert memory["peak"] == max(memory["phases"].values()) and memory["fits"] and memory["peak"] <= memory["limit"]
    # train skips compiling when the analytic model says it fits with room: it must not undercount that much
    assert memory["peak"] <= memory["analytic_peak"] / COMPILE_CHECK_FRACTION
    step, block = cost["step"], cost["eval_block"]
    assert step["flops"] > 0 and step["bytes"] > 0 and block["flops"] > 0 and block["bytes"] > 0
    if cost["source"] == "compiled":  # XLA's count of a step is near the analytic 6 x batch x weights x nets
        assert 0.8 < step["flops"] / step["model_flops"] < 2.0
    budget = plan["budget"]
    for level in levels:
        cap = budget["level0_steps"] if level["level"] == 0 else budget["max_steps"]
        assert level["steps"] == cap and level["computed_steps"] >= cap
        assert level["computed_steps"] % budget["chunk"] == 0 and level["eval_blocks"] >= 3
        assert level["flops"] == pytest.approx(level["computed_steps"] * step["flops"]
                                               + level["eval_blocks"] * block["flops"])
        assert level["seconds_here"] > 0
    assert cost["run"]["flops"] == pytest.approx(sum(level["flops"] for level in levels))
    assert cost["run"]["bytes"] == pytest.approx(sum(level["bytes"] for level in levels))
    assert here["run_s"] == pytest.approx(sum(level["seconds_here"] for level in levels))
    assert here["total_s"] == pytest.approx(here["run_s"] + here["simulate_s"])
    assert here["compile_s"] > 0 and here["step_s"] > 0 and here["eval_block_s"] > 0
    assert 0 < here["timed_s"] <= 10 and here["timed_s"] <= here["calibration_s"]  # calls timed within budget
    assert here["nets_timed"] <= plan["nets"]
    assert plan["time"]["upper_bound"] is True
    assert set(plan["time"]["gpus"]) == set(GPU_PEAKS) == {"H100", "H200"}
    for key, gpu in plan["time"]["gpus"].items():
        assert gpu["peak_flops"] == GPU_PEAKS[key]["flops"][cfg["precision"]]
        assert gpu["run_s"] == pytest.approx(sum(gpu["levels_s"])) and gpu["run_s"] > 0
        gpu_step, eff = gpu["cost"]["step"], gpu["efficiency"]
        assert gpu["step_s"] == pytest.approx(max(gpu_step["flops"] / (gpu["peak_flops"] * eff["flops"]),
                                                  gpu_step["bytes"] / (gpu["bandwidth"] * eff["bandwidth"])))
        assert gpu_step["flops"] == pytest.approx(step.get("model_flops", gpu_step["flops"]), rel=0.2)
        assert gpu["run_s_at_peak"] < gpu["run_s"] and gpu["precision"] == cfg["precision"]
        assert gpu["train_s"] + gpu["eval_s"] == pytest.approx(gpu["run_s"])
    h100, h200 = plan["time"]["gpus"]["H100"], plan["time"]["gpus"]["H200"]
    assert h200["run_s"] <= h100["run_s"]  # same compute, more bandwidth
    _check_parts(plan)


def _check_parts(plan: dict) -> None:
    """Every level's FLOPs and bytes split into its training and each split's evaluation, adding up; the
    run's parts add up to the run; the training split evaluated on `eval_train_rows` rows when set."""
    cfg, levels, parts = plan["config"], plan["levels"], plan["parts"]
    evaluated_train = min(plan["split_rows"]["train"], cfg["eval_train_rows"] or plan["split_rows"]["train"])
    for level in levels:
        train, evals = level["parts"]["train"], level["parts"]["eval"]
        assert set(evals) == {"train", "val", "test"} and train["steps"] == level["computed_steps"]
        assert evals["train"]["rows"] == evaluated_train
        assert evals["val"]["rows"] == plan["split_rows"]["val"] and evals["test"]["rows"] == plan["split_rows"]["test"]
        assert sum(e["blocks"] for e in evals.values()) == level["eval_blocks"]
        for key in ("flops", "bytes"):
            assert train[key] + sum(e[key] for e in evals.values()) == pytest.approx(level[key])
    assert parts["level0"] == levels[0]["parts"]
    run = parts["run"]
    for key in ("flops", "bytes"):
        assert run["train"][key] + sum(e[key] for e in run["eval"].values()) == pytest.approx(plan["cost"]["run"][key])


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_plans(preset, tmp_path, capsys):
    """The real preset (its samples still to simulate), except the data: paper's 10 M strokes are planned
    as they are, not simulated."""
    started = time.perf_counter()
    plan = _plan_json(capsys, "--preset", preset, "--runs", str(tmp_path))
    elapsed = time.perf_counter() - started
    _check_consistent(plan)
    cfg = resolve(preset)
    assert plan["preset"] == preset and plan["nets"] == cfg.nets and plan["config"] == cfg.to_dict()
    assert plan["dataset"]["simulate"] and plan["dataset"]["samples"] == cfg.samples
    assert plan["time"]["here"]["simulate_s"] > 0 and "simulate" in plan["memory"]["phases"]
    assert sum(plan["split_rows"].values()) == cfg.samples
    if preset == "paper":  # 400 full-size networks plan in seconds
        assert plan["nets"] == 400 and plan["config"]["hidden"] == [400, 400, 400, 16]
        assert elapsed < 60, elapsed
        assert plan["time"]["gpus"]["H100"]["fits"] and plan["time"]["gpus"]["H200"]["fits"]


def test_plan_of_a_cached_or_given_dataset_simulates_nothing(dataset, tmp_path, capsys):
    plan = _plan_json(capsys, "--preset", "smoke", "--set", f"dataset={dataset}", "--runs", str(tmp_path))
    _check_consistent(plan)
    assert not plan["dataset"]["simulate"] and plan["time"]["here"]["simulate_s"] == 0
    assert "simulate" not in plan["memory"]["phases"]
    assert sum(plan["split_rows"].values()) == 4000  # the dataset's rows, not the preset's samples


def test_text_output_names_the_parts_and_the_peaks(dataset, tmp_path, capsys):
    assert main(["plan", "--preset", "smoke", "--set", f"dataset={dataset}", "--runs", str(tmp_path),
                 "--calibration", "0.5"]) == 0
    text = capsys.readouterr().out
    for words in ("parameters", "optimizer state", "masks", "data on the device", "evaluation activations",
                  "compiled peak", "per step", "per run", "one H100 SXM5", "one H200 SXM", "peaks used",
                  "67/495/989 TFLOP/s", "3.35 TB/s", "4.8 TB/s", "80 GB", "141 GB", "early stopping",
                  "evaluation per level:", "basis: float32", "60% and 80% of them assumed", "analytic model"):
        assert words in text, words


def test_training_split_evaluated_on_a_subsample(dataset, tmp_path, capsys):
    """`eval_train_rows` cuts the training split's evaluation (blocks, FLOPs) and nothing else."""
    whole = _plan_json(capsys, "--preset", "smoke", "--set", f"dataset={dataset}", "--runs", str(tmp_path))
    cut = _plan_json(capsys, "--preset", "smoke", "--set", f"dataset={dataset}", "--set", "eval_train_rows=300",
                     "--set", "eval_batch=256", "--runs", str(tmp_path))
    _check_consistent(cut)
    level, before = cut["levels"][1]["parts"], whole["levels"][1]["parts"]
    assert level["eval"]["train"]["rows"] == 300 and level["eval"]["train"]["blocks"] == 2  # 256-row blocks
    assert before["eval"]["train"]["rows"] == whole["split_rows"]["train"] > 300
    assert cut["parts"]["run"]["train"]["flops"] == pytest.approx(whole["parts"]["run"]["train"]["flops"])
    assert level["eval"]["val"]["rows"] == before["eval"]["val"]["rows"]
    assert any("first 300 rows" in note for note in cut["notes"])


def test_device_memory_from_the_environment():
    assert parse_bytes("123") == 123 and parse_bytes("512M") == 512_000_000 and parse_bytes("16G") == 16e9
    assert parse_bytes("80GB") == 80e9 and parse_bytes("2GiB") == 2 ** 31 and parse_bytes("1.5k") == 1500


# ---- refusals ------------------------------------------------------------------------------------------

def test_a_config_that_does_not_fit_is_refused_in_one_line(dataset, tmp_path):
    small = {"MOTHTUI_DEVICE_MEMORY": "100K"}
    line = _one_line_error(_cli("plan", "--preset", "smoke", "--set", f"dataset={dataset}",
                                "--runs", str(tmp_path), "--json", env=small))
    assert "does not fit" in line and "100.0 kB" in line and "$MOTHTUI_DEVICE_MEMORY" in line
    assert "--set eval_batch=" in line or "--set nets=" in line


def test_train_refuses_the_same_config_before_writing_anything(dataset, tmp_path):
    runs = tmp_path / "runs"
    proc = _cli("train", "--preset", "smoke", "--set", f"dataset={dataset}", "--runs", str(runs), "--quiet",
                env={"MOTHTUI_DEVICE_MEMORY": "100K"})
    line = _one_line_error(proc)
    assert "does not fit" in line and proc.stdout == ""
    assert not runs.exists() or not any(runs.iterdir())  # no run directory, no cached dataset


def test_ensemble_larger_than_the_machine_is_refused_without_a_limit_set(dataset, tmp_path):
    """100,000 full-size networks need hundreds of GB; nothing is allocated to find that out."""
    import psutil

    if psutil.virtual_memory().total > 2e12:
        pytest.skip("a machine with more than 2 TB of RAM might hold it")
    started = time.perf_counter()
    line = _one_line_error(_cli("plan", "--preset", "paper", "--set", "nets=100000", "--set", f"dataset={dataset}",
                                "--runs", str(tmp_path)))
    assert "does not fit" in line and "--set nets=" in line
    assert time.perf_counter() - started < 60


# ---- predicted vs measured ---------------------------------------------------------------------------

#: Real runs where no network can stop early (windows longer than the budget), so the budget is used.
RUNS = {
    "smoke": (4000, ["--preset", "smoke"]),
    "quick": (5_000, ["--preset", "quick", "--set", "schedule=[0.5,0.8]"]),  # 100 steps a level, three levels
    # 128 full-size networks, little data: a step is timed on a share of the ensemble and scaled up, as
    # for the paper's 400 (core.engine.measure.timing_nets: at most 3e10 model FLOPs a step on a CPU;
    # 128 networks' step is 3.2e10)
    "128 nets": (600, ["--preset", "paper", "--set", "nets=128", "--set", "max_steps=2", "--set", "schedule=[0.5]",
                       "--set", "eval_batch=128"]),
}


#: Attempts at a run within the tolerance: the machine's other load can change between the plan and the run.
ATTEMPTS = 2


@pytest.mark.slow
@pytest.mark.alone
@pytest.mark.parametrize("name", list(RUNS))
def test_predicted_time_matches_a_real_run(name, tmp_path):
    rows, args = RUNS[name]
    data = write_dataset(tmp_path / "data.zarr", n=rows, seed=0)
    ratios = []
    for attempt in range(ATTEMPTS):
        runs = tmp_path / f"runs{attempt}"
        common = [*args, "--set", f"dataset={data}", "--set", "early_stop_window=100000", "--runs", str(runs)]
        load = os.getloadavg()[0]
        planned = _cli("plan", *common, "--json")
        assert planned.returncode == 0, planned.stderr
        plan = json.loads(planned.stdout)
        trained = _cli("train", *common, "--quiet")
        assert trained.returncode == 0, trained.stderr
        run_id = trained.stdout.strip().splitlines()[-1]
        ends = [e for e in read_events(runs / run_id) if e.event == "level_end"]
        assert [e.level for e in ends] == [level["level"] for level in plan["levels"]]
        assert all(min(e.steps) == level["steps"] for e, level in zip(ends, plan["levels"]))  # whole budgets ran
        measured = sum(e.seconds for e in ends)
        predicted = plan["time"]["here"]["run_s"]  # the levels, as the run's seconds count them (no simulation)
        ratios.append(predicted / measured)
        print(f"{name}: predicted {predicted:.2f} s, measured {measured:.2f} s, ratio {ratios[-1]:.2f} "
              f"(load {load:.1f} before, {os.getloadavg()[0]:.1f} after)")
        if 1 / TIME_TOLERANCE <= ratios[-1] <= TIME_TOLERANCE:
            return
    pytest.fail(f"{name}: predicted / measured {', '.join(f'{r:.2f}' for r in ratios)}, beyond {TIME_TOLERANCE}x")


@pytest.mark.parametrize("seconds", ["-3", "0", "20"])
def test_a_calibration_out_of_range_is_one_line(seconds, tmp_path):
    line = _one_line_error(_cli("plan", "--preset", "smoke", "--calibration", seconds, "--runs", str(tmp_path)))
    assert "--calibration" in line
