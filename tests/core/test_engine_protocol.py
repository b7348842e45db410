"""The protocol options (issue 9): carried optimizer state, the level-0 budget and early stopping
only below a loss, on tiny networks with the real engine and a real run store.

The seed's prune count is tested with the pruning itself (test_engine_prune.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from core.config import PRESETS, from_dict
from core.data import prepare
from core.engine import model, train
from core.engine.loop import Engine, run_levels
from core.runstore import Run
from engine_fixtures import write_dataset

BASE = {**PRESETS["smoke"], "nets": 2, "hidden": [12, 8], "batch": 32, "schedule": [0.5, 0.8],
        "max_steps": 40, "steps_per_call": 16, "early_stop_window": 10 ** 6, "learning_rate": 3e-3,
        "eval_batch": 512}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = write_dataset(tmp_path_factory.mktemp("protocol") / "dataset", n=2000, seed=4)
    return path, prepare(path, (0.64, 0.16, 0.20))


def _run(root, name, data, **changes):
    path, prepared = data
    config = from_dict({**BASE, "dataset": str(path), **changes})
    run = Run.create(root / name, config, dataset=str(path), split=prepared.row_ranges,
                     scaler=prepared.scaler.to_dict())
    run_levels(run, Engine(config, prepared, devices=jax.devices()[:1]))
    return Run.open(run.path, "r+")


def _one_optimizer_through_the_levels(config, prepared):
    """An independent reference: one optax Adam, a plain Python loop over the engine's batches,
    masked gradients and updates, pruning between levels; returns (params per level, final count)."""
    engine = Engine(config, prepared, devices=jax.devices()[:1])
    params, masks, _ = engine.initial()
    optimizer = optax.adam(config.learning_rate)
    opt_state = optimizer.init(params)
    x, y = prepared.splits["train"].x, prepared.splits["train"].y

    def loss(p, xb, yb):
        return jnp.sum(model.per_network_mse(p, xb, yb, "float32"))

    grad = jax.jit(jax.grad(loss))
    per_level = []
    for level in range(config.levels):
        if level:
            params, masks = engine.prune_for(level, params, masks)
        rows = np.concatenate([engine.batch_plan.indices(level, s, engine.chunk)
                               for s in range(0, config.max_steps, engine.chunk)])[:config.max_steps]
        for r in rows:
            g = jax.tree.map(lambda a, m: jnp.where(m, a, 0.0), grad(params, x[r], y[r]), masks)
            updates, opt_state = optimizer.update(g, opt_state, params)
            updates = jax.tree.map(lambda a, m: jnp.where(m, a, 0.0), updates, masks)
            params = optax.apply_updates(params, updates)
        per_level.append([np.asarray(p.weight) for p in params])
    return per_level, int(opt_state[0].count)


def test_carried_moments_equal_one_optimizer_running_through_the_levels(tmp_path, data):
    # 40 steps in chunks of 16: the last chunk runs 8 steps past the cap, which must not count
    run = _run(tmp_path, "carried", data, optimizer_state="carried")
    reference, count = _one_optimizer_through_the_levels(run.config, data[1])
    assert count == 3 * 40
    for level in range(run.levels):
        for k, expected in enumerate(reference[level]):
            np.testing.assert_allclose(run.level(level).weights[k], expected, rtol=1e-4, atol=1e-5,  # float32 order of operations
                                       err_msg=f"level {level} layer {k}")
    assert run.moments(2)[0] == 120 and run.moments(1)[0] == 80
    fresh = _run(tmp_path, "fresh", data)  # the default really is different after the first prune
    assert "optimizer" not in fresh.group
    assert not np.allclose(fresh.level(2).weights[0], run.level(2).weights[0])
    # level 0 starts fresh either way (the carried step compiles differently: equal to float32 rounding)
    np.testing.assert_allclose(fresh.level(0).weights[0], run.level(0).weights[0], rtol=1e-5, atol=1e-6)


def test_carried_moments_resume_from_the_store_bit_for_bit(tmp_path, data):
    whole = _run(tmp_path, "whole", data, optimizer_state="carried")
    again = _run(tmp_path, "again", data, optimizer_state="carried")
    again.set_attrs(levels_complete=2, status="cancelled")  # the last level lost: resume from the store
    path, prepared = data
    run_levels(again, Engine(again.config, prepared, devices=jax.devices()[:1]), resumed_from=2)
    for k in range(whole.n_layers):
        np.testing.assert_array_equal(Run.open(again.path).level(2).weights[k], whole.level(2).weights[k])


def test_level_zero_gets_its_own_budget_and_early_stop_waits_for_the_loss(tmp_path, data):
    run = _run(tmp_path, "budget", data, max_steps=0, epochs_per_level=1.0, level0_epochs=3.0)
    steps = run.group["train/steps"][:]
    per_epoch = -(-data[1].splits["train"].n // BASE["batch"])
    assert list(steps[0]) == [3 * per_epoch] * 2 and list(steps[1]) == [per_epoch] * 2
    # a 1 % rule that would fire at once (ratio 10) stops nobody while the loss is above 1e-9
    quick = dict(max_steps=200, early_stop_window=5, early_stop_every=5, early_stop_ratio=10.0)
    stopped = _run(tmp_path, "stops", data, **quick).group["train/steps"][:]
    waiting = _run(tmp_path, "waits", data, **quick, early_stop_below=1e-9).group["train/steps"][:]
    assert (stopped < 200).all() and (waiting == 200).all()


def test_moments_of_reads_optax_adam():
    params = model.init_params((10, 4, 7), 0.2, seed=0, net_range=range(2))
    state = train.init_state(params, np.zeros(2, bool), train.StepConfig(1e-3, 5, 5, 1.01))
    m = train.moments_of(state.opt_state)
    assert int(m.count) == 0 and m.mu[0].weight.shape == params[0].weight.shape


def test_initialisations_have_the_scale_they_name():
    sizes = (10, 400, 400, 16, 7)
    normal = model.init_params(sizes, 0.05, seed=0, net_range=range(2))
    lecun = model.init_params(sizes, 0.05, seed=0, net_range=range(2), init="lecun")
    for k, fan_in in enumerate(sizes[:-1]):
        assert np.asarray(normal[k].weight).std() == pytest.approx(0.05, rel=0.1)
        assert np.asarray(lecun[k].weight).std() == pytest.approx(fan_in ** -0.5, rel=0.1)
        assert not np.asarray(normal[k].bias).any()


def _replay_seed_signal(config, prepared, steps):
    """Independent replay of level 0 with optax in a Python loop: the ensemble's mean loss on
    validation batch s after step s, and the step at which the seed's rule stops everyone."""
    engine = Engine(config, prepared, devices=jax.devices()[:1])
    params, masks, _ = engine.initial()
    optimizer = optax.adam(config.learning_rate)
    opt_state = optimizer.init(params)
    x, y = prepared.splits["train"].x, prepared.splits["train"].y
    xv, yv = prepared.splits["val"].x, prepared.splits["val"].y
    grad = jax.jit(jax.grad(lambda p, xb, yb: jnp.sum(model.per_network_mse(p, xb, yb, "float32"))))
    rows = np.concatenate([engine.batch_plan.indices(0, s, engine.chunk) for s in range(0, steps, engine.chunk)])
    b, w, signal = config.batch, config.early_stop_window, []
    for s in range(steps):
        updates, opt_state = optimizer.update(grad(params, x[rows[s]], y[rows[s]]), opt_state, params)
        params = optax.apply_updates(params, updates)
        batch = slice(s * b, (s + 1) * b)
        signal.append(float(np.mean(model.per_network_mse(params, xv[batch], yv[batch], "float32")))
                      if (s + 1) * b <= len(xv) else float("nan"))
        if (s + 1) % config.early_stop_every == 0 and s + 1 > 2 * w:
            older, newer = np.mean(signal[-2 * w:-w]), np.mean(signal[-w:])
            if older < config.early_stop_ratio * newer:
                return s + 1
    return steps


def test_the_seeds_signal_stops_the_whole_ensemble_on_validation_batches(data):
    path, prepared = data
    seed_like = dict(dataset=str(path), early_stop_signal="seed", early_stop_window=4, early_stop_every=2,
                     early_stop_ratio=1.05, max_steps=48, batch=8)
    config = from_dict({**BASE, **seed_like})
    engine = Engine(config, prepared, devices=jax.devices()[:1])
    params, masks, diverged = engine.initial()
    result = engine.train_level(0, params, masks, diverged)
    expected = _replay_seed_signal(config, prepared, 48)
    assert 10 <= expected < 48, "the rule should fire inside the budget on this data"
    assert list(result.steps) == [expected, expected]  # every network stops at the ensemble's step
    # a validation split used up before the first check (the seed at 12,500 batches): never stops
    short = from_dict({**BASE, **seed_like, "batch": 64, "early_stop_window": 3, "early_stop_every": 1})
    assert 7 * 64 > prepared.splits["val"].n  # the first check (step 7) is past the split's end
    engine = Engine(short, prepared, devices=jax.devices()[:1])
    result = engine.train_level(0, *engine.initial())
    assert list(result.steps) == [48, 48] and not result.stopped.any()
