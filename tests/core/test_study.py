"""Comparing runs and evaluating them on other body sizes, on real smoke runs: `compare --json` and
`evaluate` equal an independent recomputation from the raw stores; bad input is one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from core.analysis.extrapolate import held_out_name

from core.cli import main
from core.runstore import open_run
from fixture_runs import make_fixture_run

SMOKE = ["samples=3000", "nets=3", "hidden=[16,16]", "schedule=[0.5,0.8]", "threshold=0.2"]


def _train(runs: Path, run_id: str, *settings: str) -> None:
    args = [a for s in (*SMOKE, *settings) for a in ("--set", s)]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-m", "core", "train", "--preset", "smoke", *args,
                           "--runs", str(runs), "--id", run_id, "--quiet"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Two real smoke runs on one simulated dataset: layer-wise and global pruning."""
    runs = tmp_path_factory.mktemp("study") / "runs"
    _train(runs, "layer")
    _train(runs, "global", "pruning=global", "seed=1")
    return runs


def _one_line_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and needle in err, err


@pytest.mark.slow
def test_compare_json_equals_a_recomputation_from_the_stores(study, capsys):
    assert main(["compare", "layer", "global", "--runs", str(study), "--threshold", "0.2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in doc["runs"]] == ["layer", "global"] and doc["threshold"] == 0.2
    assert doc["diff"]["pruning"] == ["layer", "global"] and doc["diff"]["seed"] == [0, 1]
    assert "hidden" not in doc["diff"] and "nets" not in doc["diff"]   # only what differs
    for side in doc["runs"]:
        raw = zarr.open_group(study / side["run"], mode="r")
        levels = raw.attrs["levels_complete"]
        val = np.asarray(raw["loss/val"][:levels], np.float64)
        for q, name in ((10, "p10"), (50, "median"), (90, "p90")):
            np.testing.assert_allclose(side["loss"][name], np.percentile(val, q, axis=1), rtol=1e-12)
        sparsity = np.asarray(raw["sparsity"][:levels])
        chosen = {}
        for net in range(val.shape[1]):                     # the rule, by hand
            passing = [lvl for lvl in range(levels) if val[lvl, net] <= 0.2]
            if passing:
                chosen[net] = passing[-1]
        counts: dict[float, int] = {}
        for lvl in chosen.values():
            counts[round(float(sparsity[lvl]), 6)] = counts.get(round(float(sparsity[lvl]), 6), 0) + 1
        assert {h["sparsity"]: h["networks"] for h in side["histogram"]} == counts
        assert side["none"] == val.shape[1] - len(chosen)
        if chosen:
            kept = [[np.asarray(raw[f"layer_{k}/weight_mask"][lvl, net]).mean() for k in range(3)]
                    for net, lvl in chosen.items()]
            np.testing.assert_allclose(side["remaining_per_layer"], np.median(kept, axis=0), rtol=1e-12)
            first = [np.asarray(raw["layer_0/weight_mask"][lvl, net]).mean(axis=1) for net, lvl in chosen.items()]
            np.testing.assert_allclose(list(side["input_connections"].values()), np.median(first, axis=0))


@pytest.mark.slow
def test_evaluate_equals_an_independent_forward_pass(study, capsys):
    from core.dataset import features

    assert main(["evaluate", "layer", "--runs", str(study), "--scale", "0.5,2", "--samples", "400",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["scales"] == [0.5, 2.0] and doc["levels"] == 3
    run = open_run(study, "layer")
    stored = zarr.open_group(study / "layer" / "extrapolation", mode="r")
    assert stored.attrs["complete"] is True
    scaler = {k: np.asarray(v) for k, v in run.attrs["scaler"].items()}
    loss = np.asarray(stored["loss"][...])
    for i, scale in enumerate((0.5, 2.0)):
        data = zarr.open_group(study / ".datasets" / held_out_name(400, 1, scale), mode="r")
        assert data.attrs["scale"] == scale and data.attrs["seed"] == 1      # not the training rows (seed 0)
        valid = np.asarray(data["valid"][:])
        x, y = features(*(np.asarray(data[a][:], np.float64)[valid] for a in ("initial", "controls", "final")))
        keep = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
        x, y = x[keep], y[keep]
        assert doc["rows"][i] == len(x) and doc["valid_fraction"][i] == pytest.approx(len(x) / 400)
        x_s = (x - scaler["x_min"]) / (scaler["x_max"] - scaler["x_min"]) - 0.5
        y_s = (y - scaler["y_min"]) / (scaler["y_max"] - scaler["y_min"]) - 0.5
        raw = zarr.open_group(study / "layer", mode="r")
        for level in range(3):
            for net in range(3):
                h = x_s
                for k in range(3):
                    h = h @ np.asarray(raw[f"layer_{k}/weight"][level, net], np.float64) \
                        + np.asarray(raw[f"layer_{k}/bias"][level, net], np.float64)
                    h = np.tanh(h) if k < 2 else h
                np.testing.assert_allclose(loss[i, level, net], np.mean((h - y_s) ** 2), rtol=1e-4)
        np.testing.assert_allclose(doc["loss_median"][i], np.median(loss[i], axis=1))
    test0 = float(np.median(run.losses("test")[0]))
    assert doc["ratio_to_level0"][0] == pytest.approx(doc["loss_median"][0][0] / test0)
    # the comparison carries the stored extrapolation
    assert main(["compare", "layer", "--runs", str(study), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"][0]["extrapolation"]["scales"] == [0.5, 2.0]


@pytest.mark.slow
def test_evaluate_refuses_a_run_held_by_another_process(study, capsys):
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from core.owner import claim; "
                               f"c = claim({str(study / 'global')!r}, 'mothtui train'); print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["evaluate", "global", "--runs", str(study), "--scale", "2", "--samples", "50"]) != 0
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "Traceback" not in err
        assert not (study / "global" / "extrapolation").exists()
    finally:
        holder.kill()
        holder.wait()


def test_bad_input_is_one_line_and_exit_2(runs_dir, capsys):
    make_fixture_run(runs_dir, "a", nets=2)
    other = make_fixture_run(runs_dir, "b", nets=2, seed=1)
    _one_line_exit_2(capsys, ["compare", "a", "nope", "--runs", str(runs_dir)], "no run 'nope'")
    _one_line_exit_2(capsys, ["compare", "a", "a", "--runs", str(runs_dir)], "named twice")
    _one_line_exit_2(capsys, ["compare", "a", "--runs", str(runs_dir), "--threshold", "0"], "bad threshold")
    _one_line_exit_2(capsys, ["evaluate", "nope", "--runs", str(runs_dir), "--scale", "2"], "no run 'nope'")
    for bad in ("0", "abc", "0.5,,2", "20", "nan", "2,2"):
        _one_line_exit_2(capsys, ["evaluate", "a", "--runs", str(runs_dir), "--scale", bad], "bad --scale")
    _one_line_exit_2(capsys, ["evaluate", "a", "--runs", str(runs_dir), "--scale", "2", "--samples", "0"],
                     "--samples")
    other.set_attrs(input_names=["a"] * 10)  # another problem's network: neither comparable nor evaluable
    _one_line_exit_2(capsys, ["compare", "a", "b", "--runs", str(runs_dir)], "not comparable")
    _one_line_exit_2(capsys, ["evaluate", "b", "--runs", str(runs_dir), "--scale", "2"], "cannot be evaluated")
    assert not (runs_dir / "a" / "extrapolation").exists() and not (runs_dir / ".datasets").exists()


def test_compare_text_on_fixture_runs(runs_dir, capsys):
    make_fixture_run(runs_dir, "a", nets=4)
    make_fixture_run(runs_dir, "b", nets=6, seed=1, levels_complete=3)
    assert main(["compare", "a", "b", "--runs", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert "config: only what differs" in out and "nets" in out and "chosen sparsity" in out
    assert "first-layer connections kept" in out


def test_the_runs_lists_setup_column_names_only_what_differs(runs_dir):
    from core.runlist import list_runs, setup_labels

    make_fixture_run(runs_dir, "a", nets=2)
    make_fixture_run(runs_dir, "b", nets=3, seed=1)
    assert setup_labels(list_runs(runs_dir)) == {"a": "", "b": ""}   # nets has its own column
    c = make_fixture_run(runs_dir, "c", nets=2)
    c.set_attrs(config={**c.attrs["config"], "pruning": "global", "scale": 2.0, "hidden": [16, 16]})
    (runs_dir / "broken").mkdir()
    (runs_dir / "broken" / "zarr.json").write_text("{")
    labels = setup_labels(list_runs(runs_dir))
    assert labels == {"a": "8-8 layer s=1", "b": "8-8 layer s=1", "c": "16-16 global s=2"}


def test_compare_text_keeps_cells_apart_when_values_are_long(runs_dir, capsys):
    """Two long schedules ran into one cell (`0.5-0.7-…-0.970.5-0.8`): every cell now ends in two spaces."""
    long = tuple(round(0.5 + 0.0245 * k, 4) for k in range(20))
    make_fixture_run(runs_dir, "a", schedule=long)
    make_fixture_run(runs_dir, "b", schedule=(0.5, 0.8))
    assert main(["compare", "a", "b", "--runs", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith("schedule"))
    first, second = row.split()[1:]
    assert first.endswith("…") and first.startswith("0.5-0.5245-") and second == "0.5-0.8", row
    assert len(row.rstrip()) <= 2 + 18 + 40 + 40


def test_the_setup_column_tells_same_length_schedules_and_epochs_apart(runs_dir):
    """Two schedules of 4 levels that differ read `sched4a`/`sched4b`, not `sched4` twice; epochs show."""
    from core.runlist import list_runs, setup_labels

    make_fixture_run(runs_dir, "a", schedule=(0.5, 0.8, 0.9, 0.95))
    make_fixture_run(runs_dir, "b", schedule=(0.5, 0.7, 0.9, 0.95), seed=1)
    c = make_fixture_run(runs_dir, "c", schedule=(0.5, 0.8, 0.9, 0.95), seed=2)
    c.set_attrs(config={**c.attrs["config"], "epochs_per_level": 7})
    labels = setup_labels(list_runs(runs_dir))
    assert labels["a"] != labels["b"] and labels["a"] != labels["c"]
    assert {labels["a"].split()[0], labels["b"].split()[0]} == {"sched4a", "sched4b"}
    assert labels["c"].split()[0] == labels["a"].split()[0] and "ep=7" in labels["c"]
