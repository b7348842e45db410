"""The whole level loop on a tiny ensemble, checked through the stored run.

One uninterrupted run (4 networks sharded over the 4 forced CPU devices) is the reference; a run
cancelled after level 1 and resumed, and a run on a single device, must equal it bit for bit.
"""

import argparse
import threading

import jax
import numpy as np
import pytest

from core.config import PRESETS, from_dict
from core.data import features, prepare
from core.engine.loop import Engine, run_levels
from core.errors import Cancelled
from core.export import forward
from core.runstore import Run, open_run
from core.schema import SPLITS
from engine_fixtures import write_dataset

NETS = 4


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine_run")
    dataset = write_dataset(root / "dataset", n=3000, seed=1, invalid_every=37)
    config = from_dict({**PRESETS["smoke"], "dataset": str(dataset), "nets": NETS, "hidden": [16, 12],
                        "batch": 32, "schedule": [0.4, 0.7, 0.9], "epochs_per_level": 1.0,
                        "early_stop_window": 10, "early_stop_every": 5, "steps_per_call": 16,
                        "learning_rate": 3e-3, "eval_batch": 512})
    data = prepare(dataset, config.splits)
    return root, config, data


def _new_run(root, name, config, data, devices=None, sinks=(), stop=None, layout=None):
    engine = Engine(config, data, devices=devices, layout=layout)
    run = Run.create(root / "runs" / name, config, dataset=data.dataset, split=data.row_ranges,
                     scaler=data.scaler.to_dict())
    run_levels(run, engine, sinks=list(sinks), stop=stop)
    return Run.open(run.path)


@pytest.fixture(scope="module")
def reference(setup):
    root, config, data = setup
    return _new_run(root, "reference", config, data)


def _arrays(run: Run) -> dict[str, np.ndarray]:
    out = {}
    for k in range(run.n_layers):
        for name in ("weight", "weight_mask", "bias", "bias_mask"):
            out[f"layer_{k}/{name}"] = np.asarray(run.group[f"layer_{k}/{name}"][:])
    for name in (*(f"loss/{s}" for s in SPLITS), "train/steps", "train/stopped_early", "train/diverged"):
        out[name] = np.asarray(run.group[name][:])
    return out


def _assert_identical(a: Run, b: Run) -> None:
    arrays_a, arrays_b = _arrays(a), _arrays(b)
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)


def test_run_completes_and_learns(reference, setup):
    _, config, _ = setup
    assert reference.status == "done" and reference.levels_complete == config.levels
    val = reference.losses("val")
    assert np.all(np.isfinite(val))
    assert np.all(val[0] < 0.05)  # learned something (the data's scaled variance is ~0.08)
    assert not reference.owner().alive  # nobody holds the run once it has ended


def test_per_layer_pruned_fraction_is_the_target_and_pruned_weights_stay_zero(reference):
    sparsity = reference.sparsity
    previous = None
    for level in range(reference.levels_complete):
        arrays = reference.level(level)
        for k, (w, m) in enumerate(zip(arrays.weights, arrays.weight_masks)):
            size = m[0].size
            pruned = (~m).reshape(NETS, -1).sum(axis=1)
            assert np.all(np.abs(pruned / size - sparsity[level]) <= 0.5 / size), (level, k, pruned)
            assert np.all(w[~m] == 0.0)
            assert np.all(w[m] != 0.0)  # a kept weight that is exactly zero would be suspicious
            if previous is not None:
                assert not np.any(m & ~previous[k]), f"a pruned weight came back at level {level}"
        assert all(bm.all() for bm in arrays.bias_masks)  # prune_biases is off
        previous = arrays.weight_masks


def test_stored_losses_equal_a_numpy_recomputation_from_stored_weights(reference):
    group = reference.group
    import zarr

    ds = zarr.open_group(reference.attrs["dataset"], mode="r")
    scaler = reference.scaler
    valid = np.asarray(ds["valid"][:])
    for split, (start, stop) in reference.row_ranges.items():
        keep = valid[start:stop]
        x, y = features(ds["initial"][start:stop], ds["controls"][start:stop], ds["final"][start:stop])
        x, y = x[keep], y[keep]
        y_s = (y - scaler["y_min"]) / (scaler["y_max"] - scaler["y_min"]) - 0.5
        stored = reference.losses(split)
        for level in range(reference.levels_complete):
            arrays = reference.level(level)
            for n in range(NETS):
                out = forward(x, [w[n] for w in arrays.weights], [b[n] for b in arrays.biases],
                              scaler["x_min"], scaler["x_max"], scaler["y_min"], scaler["y_max"])
                out_s = (out - scaler["y_min"]) / (scaler["y_max"] - scaler["y_min"]) - 0.5
                expected = np.mean((out_s - y_s) ** 2)
                assert stored[level, n] == pytest.approx(expected, rel=1e-4), (split, level, n)
    assert group.attrs["split"]["test"][1] == valid.size


def test_numpy_forward_is_the_jax_forward_on_the_stored_run(reference, tmp_path):
    """export's plain-numpy forward (float64) is the twin of the engine's JAX forward (float32),
    which the analysis runs too: on every stored level, the exported files predict what the
    engine computes from the run's arrays, to float32 rounding."""
    import jax.numpy as jnp

    from core.analysis.performance import ensemble_forward
    from core.data import Scaler
    from core.dataset import open_dataset
    from core.engine.model import Layer
    from core.engine.model import forward as jax_forward
    from core.export import export_run, load

    scaler = Scaler.from_dict(reference.attrs["scaler"])
    start, stop = reference.row_ranges["test"]
    x = open_dataset(reference.attrs["dataset"]).usable_rows(start, stop, limit=200).x
    x_s = scaler.scale_x(x).astype(np.float32)
    previous = None
    for level in range(reference.levels_complete):
        arrays = reference.level(level)
        params = [Layer(jnp.asarray(w), jnp.asarray(b)) for w, b in zip(arrays.weights, arrays.biases)]
        by_jax = np.asarray(jax_forward(params, jnp.asarray(x_s)), np.float64)          # (N, n, 7) scaled
        by_analysis = ensemble_forward(x_s, arrays.weights, arrays.biases)
        np.testing.assert_allclose(by_analysis, by_jax, rtol=0, atol=1e-6)
        out = tmp_path / f"level_{level}"
        export_run(reference, out, level=level)
        for n in range(NETS):
            by_numpy = scaler.scale_y(load(out, n).predict(x))
            np.testing.assert_allclose(by_numpy, by_jax[n], rtol=0, atol=2e-6, err_msg=f"level {level} net {n}")
        if previous is not None:  # the comparison can tell two levels' networks apart
            assert np.abs(by_jax - previous).max() > 1e-3
        previous = by_jax


def test_cancel_and_resume_equals_an_uninterrupted_run(setup, reference):
    root, config, data = setup
    stop = threading.Event()

    def cancel_after_level_1(record):
        if record.event == "level_end" and record.level == 1:
            stop.set()

    with pytest.raises(Cancelled):
        _new_run(root, "interrupted", config, data, sinks=[cancel_after_level_1], stop=stop)
    run = open_run(root / "runs", "interrupted")
    assert run.status == "cancelled" and run.levels_complete == 2

    from core.commands import resume

    args = argparse.Namespace(run_id="interrupted", runs=root / "runs", quiet=True)
    assert resume.run(args) == 0
    resumed = open_run(root / "runs", "interrupted")
    assert resumed.status == "done"
    _assert_identical(resumed, reference)


def test_sharded_equals_single_device(setup, reference):
    root, config, data = setup
    assert len(jax.devices()) == 4  # conftest forces 4 CPU devices
    assert Engine(config, data).place.devices == 2  # the reference: 4 networks, 2 per device
    single = _new_run(root, "single", config, data, devices=jax.devices()[:1])
    assert Engine(config, data, devices=jax.devices()[:1]).place.devices == 1
    _assert_identical(single, reference)


def test_networks_in_groups_equal_the_sharded_run(setup, reference):
    """One device, training and evaluation in groups of two networks: bit for bit the reference
    (two networks on each of two devices), since every call computes two networks."""
    from core.engine import train
    from core.engine.loop import Layout

    root, config, data = setup
    sharded = Engine(config, data)
    assert sharded.place.devices == 2 and sharded.layout.eval_group == 0
    layout = Layout(2, sharded.eval_rows, 2)
    engine = Engine(config, data, devices=jax.devices()[:1], layout=layout)
    assert engine.step_config.group == 2 and engine.eval_group == 2
    assert train.group_size(engine.step_config, NETS, config.layer_sizes, config.batch) == 2
    grouped = _new_run(root, "grouped", config, data, devices=jax.devices()[:1], layout=layout)
    _assert_identical(grouped, reference)


def test_the_plans_setup_is_the_one_the_engine_trains_with(setup):
    """`mothtui plan` describes a run from the dataset's valid rows alone (`core.plan.data_plan`, then
    `loop.Setup.of`); that description is the engine's own: budget, data placement, layout and step."""
    from core.engine.loop import Setup, placement
    from core.plan import data_plan

    root, config, data = setup
    engine = Engine(config, data)
    split_rows, _ = data_plan(config, root / "runs")
    planned = Setup.of(config, split_rows, place=placement(NETS))
    assert planned == engine.setup
    assert planned.step_config(engine.place) == engine.step_config


def test_a_run_resumed_on_another_machine_keeps_its_layout(setup, monkeypatch):
    """Created where the L2 is small (groups of two, small evaluation blocks), resumed where it is
    large: the resume uses the recorded layout and equals the uninterrupted run bit for bit."""
    from core.engine import train
    from core.engine.loop import Layout

    root, config, data = setup
    one = jax.devices()[:1]
    monkeypatch.setenv(train.L2_OVERRIDE_ENV, "1K")
    engine = Engine(config, data, devices=one)
    assert engine.layout.train_group == 2 and engine.layout.eval_group == 2
    straight = _new_run(root, "small-l2", config, data, devices=one)
    run = Run.create(root / "runs" / "moved", config, dataset=data.dataset, split=data.row_ranges,
                     scaler=data.scaler.to_dict(), extra_attrs={"layout": engine.layout._asdict()})
    stop = threading.Event()
    with pytest.raises(Cancelled):
        run_levels(run, engine, stop=stop, sinks=[lambda r: r.event == "level_end" and stop.set()])
    monkeypatch.setenv(train.L2_OVERRIDE_ENV, "64M")
    assert Engine(config, data, devices=one).layout != engine.layout  # this machine would cut it otherwise
    run = Run.open(run.path, "r+")
    resumed = Engine(config, data, devices=one, layout=Layout.from_attrs(run.attrs["layout"]))
    assert resumed.layout == engine.layout
    run_levels(run, resumed, resumed_from=run.levels_complete)
    _assert_identical(Run.open(run.path), straight)


def test_a_diverged_network_stays_frozen_across_levels_and_the_others_go_on(setup, reference):
    _, config, data = setup
    engine = Engine(config, data)
    params, masks, diverged = engine.initial()
    params[0] = params[0]._replace(weight=params[0].weight.at[1].set(np.inf))
    level0 = engine.train_level(0, params, masks, diverged)
    level0.losses = engine.evaluate(level0.params)
    assert level0.diverged.tolist() == [False, True, False, False]
    assert np.isnan(level0.losses["val"][1]) and np.all(np.isfinite(level0.losses["val"][[0, 2, 3]]))
    healthy = reference.level(0).weights[0]
    np.testing.assert_array_equal(level0.params[0].weight[[0, 2, 3]], healthy[[0, 2, 3]])
    p1, m1 = engine.prune_for(1, level0.params, level0.masks)
    level1 = engine.train_level(1, p1, m1, level0.diverged)
    assert level1.diverged[1] and level1.steps[1] == 0 and np.all(level1.steps[[0, 2, 3]] > 0)


class _StopInsideLevel(threading.Event):
    """A stop that turns on at the `checks`-th look of level `level`'s training loop (mid-level)."""

    def __init__(self, level: int, checks: int):
        super().__init__()
        self.level, self.checks, self.looks = level, checks, 0
        self.in_level = False

    def sink(self, record) -> None:
        if record.event == "level_start":
            self.in_level = record.level == self.level

    def is_set(self) -> bool:
        if self.in_level:
            self.looks += 1
            if self.looks >= self.checks:
                self.set()
        return super().is_set()


def test_a_cancel_inside_a_level_keeps_its_steps_and_resume_continues_bit_for_bit(setup, reference):
    from core.commands import resume
    from core.events import read_events

    root, config, data = setup
    stop = _StopInsideLevel(level=1, checks=3)  # after two chunks of level 1
    with pytest.raises(Cancelled, match="at step 32"):
        _new_run(root, "mid-level", config, data, sinks=[stop.sink], stop=stop)
    run = open_run(root / "runs", "mid-level")
    assert run.status == "cancelled" and run.levels_complete == 1
    saved = run.checkpoint()
    assert saved is not None and (saved.level, saved.step) == (1, 32)
    args = argparse.Namespace(run_id="mid-level", runs=root / "runs", quiet=True)
    assert resume.run(args) == 0
    resumed = open_run(root / "runs", "mid-level")
    _assert_identical(resumed, reference)
    assert resumed.checkpoint() is None and not list((resumed.path / "checkpoint").iterdir())
    starts = [e for e in read_events(resumed.path) if e.event == "level_start"]
    assert [(e.level, e.step) for e in starts] == [(0, None), (1, None), (1, 32), (2, None), (3, None)]


def test_the_eta_predicts_each_level_from_the_levels_before_and_the_early_stopping_state():
    from core.engine.eta import LevelTiming, eta_seconds, held

    caps = [1000, 400, 400, 400, 400]
    # nothing completed yet: the caps, no evaluation
    assert eta_seconds(caps, 0, 100, True, 0.01, []) == pytest.approx(900 * 0.01 + 4 * 400 * 0.01)
    # level 1 ran 200 of 400 steps and level 2 100: level 3, at step 50, is expected to run as long
    # as the levels that outlasted 50 steps (150), level 4 the mean share of levels 2 and 3
    done = [LevelTiming(0, 1000, 500, 5.0, 2.0), LevelTiming(1, 400, 200, 2.0, 2.0), LevelTiming(2, 400, 100, 1.0, 2.0)]
    share = (100 / 400 + 150 / 400) / 2
    assert eta_seconds(caps, 3, 50, True, 0.01, done) == pytest.approx((150 - 50) * 0.01 + 2.0 + share * 400 * 0.01 + 2.0)
    # at step 150 only level 1 outlasted it: 200 expected
    share = (100 / 400 + 200 / 400) / 2
    assert eta_seconds(caps, 3, 150, True, 0.01, done) == pytest.approx(50 * 0.01 + 2.0 + share * 400 * 0.01 + 2.0)
    # past every completed level: halfway to the cap (325 of 400)
    share = (100 / 400 + 325 / 400) / 2
    assert eta_seconds(caps, 3, 250, True, 0.01, done) == pytest.approx(75 * 0.01 + 2.0 + share * 400 * 0.01 + 2.0)
    # every network of the level has stopped: its evaluation and the last level
    share = (100 / 400 + 50 / 400) / 2
    assert eta_seconds(caps, 3, 50, False, 0.01, done) == pytest.approx(2.0 + share * 400 * 0.01 + 2.0)
    # held: a network cannot stop (its loss above early_stop_below), so this level and the later
    # ones are expected to run to their caps
    assert eta_seconds(caps, 3, 50, True, 0.01, done, held_now=True) == pytest.approx(
        350 * 0.01 + 2.0 + (100 / 400 + 1.0) / 2 * 400 * 0.01 + 2.0)
    # held only with a bound, only for active networks above it, and only after the first check
    assert held([3e-4, 1e-4], [True, True], 1000, 2e-4, 500)
    assert not held([3e-4, 1e-4], [False, True], 1000, 2e-4, 500)
    assert not held([3e-4, 1e-4], [True, True], 999, 2e-4, 500)
    assert not held([3e-4, 1e-4], [True, True], 1000, 0.0, 500)


def test_a_trained_run_opens_in_xarray_runs_the_example_notebook_and_exports_to_onnx(reference, tmp_path):
    """The real engine's run (not a fixture): xarray opens it with named dims, docs/examples/paper_figure.py
    runs on it as a script, and its ONNX export predicts what `predict` does (float32: 1e-6 of the range)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    xr = pytest.importorskip("xarray")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("matplotlib")
    from core.export import export_run, load

    tree = xr.open_datatree(reference.path, engine="zarr", consolidated=False)
    assert tree["loss/val"].dims == ("level", "net") and tree["layer_1/weight"].dims == ("level", "net", "in", "out")
    np.testing.assert_array_equal(tree["sparsity"].values, reference.sparsity)
    root = Path(__file__).resolve().parents[2]
    figure = tmp_path / "figure.png"
    proc = subprocess.run([sys.executable, str(root / "docs" / "examples" / "paper_figure.py"), str(reference.path),
                           str(figure)], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)},
                          timeout=180)
    assert proc.returncode == 0 and figure.stat().st_size > 10_000, proc.stderr
    out = tmp_path / "onnx"
    manifest = export_run(reference, out, level=reference.levels_complete - 1, formats=("npz", "onnx"))
    scaler = reference.scaler
    x = np.random.default_rng(0).uniform(scaler["x_min"], scaler["x_max"], (500, 10)).astype(np.float32)
    span = scaler["y_max"] - scaler["y_min"]
    for entry in manifest["networks"]:
        y = ort.InferenceSession(str(out / entry["files"]["onnx"])).run(None, {"x": x})[0]
        expected = load(out / entry["file"]).predict(x.astype(np.float64))
        assert (np.abs(y - expected) <= 1e-6 * span).all(), json.dumps(entry["files"])


def test_training_split_loss_on_its_first_rows(setup):
    """`eval_train_rows`: the train loss is the loss on the split's first rows (the same rows every level),
    val and test stay whole; 0 (the default) evaluates every row."""
    from core.engine import evaluate

    root, config, data = setup
    whole = Engine(config, data)
    params, _, _ = whole.initial()
    rows = 300
    cut = Engine(config.replace(eval_train_rows=rows), data)
    full, part = whole.evaluate(params), cut.evaluate(params)
    split = data.splits["train"]
    assert split.n > rows
    expected = evaluate.split_loss(whole.place.sharded(params), split.x[:rows], split.y[:rows], whole.eval_rows,
                                   put=whole.place.data, group=whole.eval_group)
    np.testing.assert_array_equal(part["train"], expected)
    assert not np.array_equal(part["train"], full["train"])
    for name in ("val", "test"):
        np.testing.assert_array_equal(part[name], full[name])
    big = Engine(config.replace(eval_train_rows=10 * split.n), data).evaluate(params)  # more than there are: all
    np.testing.assert_array_equal(big["train"], full["train"])
