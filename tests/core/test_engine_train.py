"""The compiled training chunk: masks hold through Adam, divergence freezes one network, chunking
does not change results, early stopping is per network."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.engine import model, prune, train

SIZES = (10, 16, 12, 7)
NETS = 4
BATCH = 32


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (512, 10)).astype(np.float32)
    y = np.tanh(x @ rng.normal(0, 0.5, (10, 7))).astype(np.float32) * 0.5
    rows = rng.integers(0, 512, (60, BATCH)).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(y), rows


def _run(params, masks, data, steps, chunk, sc, diverged=None, max_steps=10 ** 6):
    x, y, rows = data
    state = train.init_state(params, jnp.zeros(NETS, bool) if diverged is None else diverged, sc)
    losses = []
    for start in range(0, steps, chunk):
        state, loss = train.chunk_on_device(sc, state, masks, x, y, jnp.asarray(rows[start:start + chunk]),
                                            jnp.int32(start), jnp.int32(max_steps))
        losses.append(np.asarray(loss))
    return jax.device_get(state), np.concatenate(losses)


def _sc(**kw):
    # the settings of test_engine_run's config, so the compiled chunk is shared
    values = dict(learning_rate=3e-3, window=10, every=5, ratio=1.01)
    values.update(kw)
    return train.StepConfig(**values)


def test_pruned_weights_and_their_adam_moments_stay_exactly_zero(data):
    params = model.init_params(SIZES, 0.2, 0, range(NETS))
    params, masks = prune.prune(params, model.full_masks(params), 0.7, bias_fraction=0.3)
    state, losses = _run(params, masks, data, 40, 20, _sc())
    mu, nu = state.opt_state[0].mu, state.opt_state[0].nu
    for k, m in enumerate(jax.device_get(masks)):
        for tree in (state.params, mu, nu):
            assert np.all(np.asarray(tree[k].weight)[~np.asarray(m.weight)] == 0.0)
            assert np.all(np.asarray(tree[k].bias)[~np.asarray(m.bias)] == 0.0)
        # and the kept ones did train
        moved = np.asarray(state.params[k].weight) != np.asarray(params[k].weight)
        assert moved[np.asarray(m.weight)].mean() > 0.9


def test_result_does_not_depend_on_steps_per_call(data):
    params = model.init_params(SIZES, 0.2, 1, range(NETS))
    masks = model.full_masks(params)
    a, la = _run(params, masks, data, 60, 20, _sc(), max_steps=50)
    b, lb = _run(params, masks, data, 60, 10, _sc(), max_steps=50)
    for pa, pb in zip(a.params, b.params):
        np.testing.assert_array_equal(pa.weight, pb.weight)
    np.testing.assert_array_equal(la, lb)
    assert np.all(a.steps == 50) and np.all(np.isnan(la[50:]))  # the step cap


def test_a_diverging_network_is_frozen_and_the_others_go_on(data):
    params = model.init_params(SIZES, 0.2, 2, range(NETS))
    masks = model.full_masks(params)
    healthy, _ = _run(params, masks, data, 20, 20, _sc())
    broken = [model.Layer(p.weight.at[1].set(jnp.inf), p.bias) if k == 0 else p for k, p in enumerate(params)]
    state, losses = _run(broken, masks, data, 20, 20, _sc())
    assert state.diverged.tolist() == [False, True, False, False]
    assert state.steps[1] == 0 and np.all(state.steps[[0, 2, 3]] > 0)
    assert np.all(np.isnan(losses[:, 1])) and np.all(np.isfinite(losses[:10, [0, 2, 3]]))
    for k, p in enumerate(state.params):  # frozen: exactly what it was
        np.testing.assert_array_equal(np.asarray(p.weight[1]), np.asarray(broken[k].weight[1]))
    for ph, pb in zip(healthy.params, state.params):  # the others exactly as if nothing happened
        np.testing.assert_array_equal(np.asarray(ph.weight)[[0, 2, 3]], np.asarray(pb.weight)[[0, 2, 3]])


def test_early_stopping_is_decided_per_network(data):
    """Replays the seed's 1 % rule on each network's recorded batch losses."""
    params = model.init_params(SIZES, 0.2, 0, range(NETS))
    params, masks = prune.prune(params, model.full_masks(params), 0.7, bias_fraction=0.3)
    sc = _sc()
    state, losses = _run(params, masks, data, 60, 20, sc)
    w = sc.window
    for n in range(NETS):
        expected = 60
        for s in range(60):
            if (s + 1) % sc.every == 0 and s + 1 >= 2 * w:
                older = losses[s + 1 - 2 * w:s + 1 - w, n].astype(np.float64).mean()
                newer = losses[s + 1 - w:s + 1, n].astype(np.float64).mean()
                if older < sc.ratio * newer:
                    expected = s + 1
                    break
        assert state.steps[n] == expected
        assert state.stopped[n] == (expected < 60)
        assert np.all(np.isnan(losses[expected:, n]))
    assert len(set(state.steps.tolist())) > 1, "networks should stop at different steps"


def test_evaluation_blocks_are_capped_by_memory_and_loss_is_blockwise_exact(monkeypatch):
    import os

    from core.engine import evaluate, train

    # the paper's ensemble: 400 networks 400 wide may not take the default 65,536-row blocks
    rows = evaluate.block_rows(65_536, 2_000_000, nets=400, widest=400)
    assert 400 * rows * 400 * 4 <= evaluate.EVAL_ACTIVATION_BYTES and rows >= 256 and rows % 256 == 0
    # on a CPU a block's activation fits the L2 caches of all cores (forced here, so that the test
    # reads the same on any machine): a small run in one block where they are large, cut into whole
    # 256-row pieces where the caches hold 1 MiB in all
    monkeypatch.setenv(train.L2_OVERRIDE_ENV, "64M")
    assert evaluate.block_rows(65_536, 5_000, nets=8, widest=64) == 5_000
    monkeypatch.setenv(train.L2_OVERRIDE_ENV, str(2 ** 20 // (os.cpu_count() or 1)))
    small = evaluate.block_rows(65_536, 5_000, nets=8, widest=64)
    assert small % 256 == 0 and 256 <= small < 5_000
    assert train.MIN_GROUP * small * 64 * 4 <= 2 ** 20
    # whatever the block size, the loss is the mean over every row (padding counts zero)
    params = model.init_params((10, 8, 7), 0.2, 0, range(2))
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (101, 10)).astype(np.float32)
    y = rng.uniform(-0.5, 0.5, (101, 7)).astype(np.float32)
    whole = evaluate.split_loss(params, x, y, rows=101)
    blocked = evaluate.split_loss(params, x, y, rows=16)
    np.testing.assert_allclose(blocked, whole, rtol=1e-6)
    direct = np.mean((np.asarray(model.forward(params, jnp.asarray(x))) - y[None]) ** 2, axis=(1, 2))
    np.testing.assert_allclose(whole, direct, rtol=1e-6)


def _numpy_tf32(x: np.ndarray) -> np.ndarray:
    """Independent model of tf32 rounding: 11 significant bits (10 stored), to nearest, ties to even,
    through frexp/ldexp in float64 (exact for float32 normal numbers)."""
    m, e = np.frexp(x.astype(np.float64))          # x = m * 2**e, 0.5 <= |m| < 1: 24 significant bits
    return np.ldexp(np.round(m * 2.0 ** 11) / 2.0 ** 11, e).astype(np.float32)


def test_tf32_emulation_rounds_as_a_numpy_model_of_the_rounding():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(20_000) * 10.0 ** rng.uniform(-6, 6, 20_000)).astype(np.float32)
    # ties: exactly half way between two tf32 numbers, rounding to the even one either way
    ties = np.array([1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11)], np.float32)
    x = np.concatenate([x, ties, [0.0, -0.0]]).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(model.round_tf32(jnp.asarray(x))), _numpy_tf32(x))
    assert np.asarray(model.round_tf32(jnp.asarray(ties))).tolist() == [1.0, 1 + 4 * 2 ** -11, -1.0]
    special = np.array([np.inf, -np.inf, np.nan], np.float32)
    out = np.asarray(model.round_tf32(jnp.asarray(special)))
    assert out[0] == np.inf and out[1] == -np.inf and np.isnan(out[2])


def test_tf32_emulated_matmul_and_its_gradients_are_the_rounded_inputs_products():
    rng = np.random.default_rng(4)
    h = rng.standard_normal((3, 32, 24)).astype(np.float32)
    w = rng.standard_normal((3, 24, 16)).astype(np.float32)
    g = rng.standard_normal((3, 32, 16)).astype(np.float32)
    hr, wr, gr = (_numpy_tf32(a).astype(np.float64) for a in (h, w, g))
    out, vjp = jax.vjp(lambda a, b: model.matmul(a, b, "tf32-emulated"), jnp.asarray(h), jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(out), hr @ wr, rtol=1e-5, atol=1e-5)
    dh, dw = vjp(jnp.asarray(g))
    np.testing.assert_allclose(np.asarray(dh), gr @ wr.transpose(0, 2, 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(dw), hr.transpose(0, 2, 1) @ gr, rtol=1e-5, atol=1e-5)
    # and it is not float32: the rounding shows at float32's resolution
    exact = np.asarray(model.matmul(jnp.asarray(h), jnp.asarray(w), "float32"))
    assert np.abs(np.asarray(out) - exact).max() > 1e-4
    # inputs shared by all networks (the first layer): the same rounding
    x = h[0]
    np.testing.assert_allclose(np.asarray(model.matmul(jnp.asarray(x), jnp.asarray(w), "tf32-emulated")),
                               _numpy_tf32(x).astype(np.float64) @ wr, rtol=1e-5, atol=1e-5)
