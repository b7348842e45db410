"""Networks in groups (training chunk and evaluation) against the all-at-once results.

What the engine guarantees on any CPU (tests here run with the cache sizes of other machines
forced through `$MOTHTUI_CPU_L2`):
- a network's results depend on the size of the group it runs in, never on how many groups
  there are or which other networks share the call: bit for bit;
- a run records its layout (groups and evaluation blocks, `core.engine.loop.Layout`) and every
  resume uses it, so a run computes with the same shapes from its first level to its last;
- across group sizes the results agree to float32 rounding (XLA's batched matmul kernels may
  round differently for different batch counts: bitwise on the 2 MiB-L2 Intel, not on an AMD
  EPYC with 512 KiB), and every discrete outcome (stops, divergence, step counts) is the same.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.engine import evaluate, model, prune, train
from core.errors import ConfigError

SIZES = (10, 16, 12, 7)
NETS = 8
BATCH = 32
STEPS, CHUNK, CAP = 60, 20, 50


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (512, 10)).astype(np.float32)
    y = np.tanh(x @ rng.normal(0, 0.5, (10, 7))).astype(np.float32) * 0.5
    rows = rng.integers(0, 512, (STEPS, BATCH)).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(y), rows


@pytest.fixture(scope="module")
def start():
    params = model.init_params(SIZES, 0.2, 3, range(NETS))
    params, masks = prune.prune(params, model.full_masks(params), 0.5, bias_fraction=0.3)
    params[0] = params[0]._replace(weight=params[0].weight.at[5].set(jnp.inf))  # network 5 diverges
    return params, masks


def _sc(group, **kw):
    return train.StepConfig(learning_rate=3e-3, window=10, every=5, ratio=1.1, group=group, **kw)


def _train(start, data, sc, from_host=False):
    params, masks = start
    x, y, rows = data
    state = train.init_state(params, jnp.zeros(params[0].weight.shape[0], bool), sc)
    losses = []
    for s in range(0, STEPS, CHUNK):
        batch = jnp.asarray(rows[s:s + CHUNK])
        if from_host:
            state, loss = train.chunk_from_host(sc, state, masks, x[batch], y[batch], jnp.int32(s), jnp.int32(CAP))
        else:
            state, loss = train.chunk_on_device(sc, state, masks, x, y, batch, jnp.int32(s), jnp.int32(CAP))
        losses.append(np.asarray(loss))
    return jax.device_get(state), np.concatenate(losses)


def _compare(a, b, check):
    (state_a, loss_a), (state_b, loss_b) = a, b
    check(loss_a, loss_b, "losses")
    paths = jax.tree_util.tree_flatten_with_path(state_a)[0]
    for (path, leaf_a), leaf_b in zip(paths, jax.tree.leaves(state_b)):
        check(np.asarray(leaf_a), np.asarray(leaf_b), jax.tree_util.keystr(path))


def _assert_same(a, b):
    _compare(a, b, lambda x, y, name: np.testing.assert_array_equal(x, y, err_msg=name))


def _assert_close(a, b):
    """Floats within float32 rounding carried through 60 Adam steps; flags and counts exactly equal."""
    def check(x, y, name):
        if np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)
    _compare(a, b, check)


def _first(tree, n):
    """The first `n` networks of a state or of (losses (K, N)): per-network leaves cut, scalars kept."""
    return jax.tree.map(lambda a: a if np.ndim(a) == 0 else a[:n], tree)


@pytest.fixture(params=["256K", "512K", "2M", "32M"], ids=lambda v: f"L2={v}")
def other_machine(request, monkeypatch):
    """Size groups and blocks as a CPU with this much L2 per core would."""
    monkeypatch.setenv(train.L2_OVERRIDE_ENV, request.param)
    return request.param


@pytest.mark.parametrize("carried", [False, True])
def test_grouped_chunk_matches_all_at_once(start, data, carried):
    whole = _train(start, data, _sc(NETS, carried=carried))
    state = whole[0]
    # the case covers what it should: a diverged network, early stops at different steps, the cap
    assert state.diverged.tolist() == [i == 5 for i in range(NETS)]
    assert state.stopped.any() and not state.stopped.all()
    assert len(set(state.steps.tolist())) > 2 and state.steps.max() == CAP
    assert int(state.opt_state[0].count) == (CAP if carried else STEPS)
    assert train.group_size(_sc(2), NETS, SIZES, BATCH) == 2
    _assert_close(whole, _train(start, data, _sc(2, carried=carried)))
    if not carried:  # batches gathered on the host take the same path, bit for bit
        _assert_same(_train(start, data, _sc(4)), _train(start, data, _sc(4), from_host=True))


@pytest.mark.parametrize("group", [2, 4])
def test_a_networks_results_depend_on_its_group_size_only(start, data, group):
    """Bit for bit on any machine: the first networks of an 8-network ensemble equal the same
    networks trained as a smaller ensemble, in groups of the same size."""
    params, masks = start
    n = group * 2 if group * 2 < NETS else group
    eight = _train(start, data, _sc(group, carried=True))
    fewer = _train((_first(params, n), _first(masks, n)), data, _sc(group, carried=True))
    assert train.group_size(_sc(group), n, SIZES, BATCH) == group
    state, losses = eight
    _assert_same((_first(state, n), losses[:, :n]), fewer)


def test_seed_signal_and_sharded_runs_go_all_at_once(start, data):
    sc = _sc(2, signal="seed")
    assert train.group_size(sc, NETS, SIZES, BATCH) == NETS  # the ensemble mean needs every network
    x, y, rows = data
    params, masks = start
    results = []
    for group in (2, NETS):
        s = dataclasses.replace(sc, group=group)
        state = train.init_state(params, jnp.zeros(NETS, bool), s)
        results.append(jax.device_get(train.chunk_on_device(s, state, masks, x, y, jnp.asarray(rows[:CHUNK]),
                                                            jnp.int32(0), jnp.int32(CAP), (x[:256], y[:256]))))
    _assert_same(*results)
    assert len(jax.local_devices()) == 4  # conftest: automatic grouping is off with several devices
    assert train.group_size(_sc(0), NETS, SIZES, BATCH) == NETS


def test_group_size_is_a_divisor_of_at_least_two():
    assert train.group_size(_sc(3), 8, SIZES, BATCH) == 2
    assert train.group_size(_sc(4), 6, SIZES, BATCH) == 3
    assert train.group_size(_sc(2), 7, SIZES, BATCH) == 7  # a prime count: all at once
    assert train.group_size(_sc(1), 8, SIZES, BATCH) == 8  # one network alone would round differently
    assert train.group_size(_sc(400), 8, SIZES, BATCH) == 8


def test_grouped_evaluation_equals_all_at_once():
    params = model.init_params((10, 24, 24, 7), 0.2, 0, range(NETS))
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.5, 0.5, (1000, 10)).astype(np.float32)
    y = rng.uniform(-0.5, 0.5, (1000, 7)).astype(np.float32)
    whole = evaluate.split_loss(params, x, y, rows=256, group=0)
    for group in (2, 4):
        grouped = evaluate.split_loss(params, x, y, rows=256, group=group)
        np.testing.assert_allclose(grouped, whole, rtol=1e-6)
        # bit for bit: the same networks in groups of the same size, fewer of them
        first = evaluate.split_loss([layer._replace(weight=layer.weight[:group], bias=layer.bias[:group])
                                     for layer in params], x, y, rows=256, group=group)
        np.testing.assert_array_equal(first, grouped[:group])
    assert [evaluate._divisor(8, g) for g in (0, 1, 2, 3, 7, 8, 9)] == [8, 8, 2, 2, 4, 8, 8]
    direct = np.mean((np.asarray(model.forward(params, jnp.asarray(x))) - y[None]) ** 2, axis=(1, 2))
    np.testing.assert_allclose(whole, direct, rtol=1e-6)


def test_the_l2_size_can_be_forced(monkeypatch):
    monkeypatch.setenv(train.L2_OVERRIDE_ENV, "512K")
    assert train.cpu_cache_bytes()[0] == 512 * 2 ** 10
    monkeypatch.setenv(train.L2_OVERRIDE_ENV, "2M")
    small, big = train.auto_group((10, 400, 400, 400, 16, 7), 128), None
    monkeypatch.setenv(train.L2_OVERRIDE_ENV, "64M")
    big = train.auto_group((10, 400, 400, 400, 16, 7), 128)
    assert big > small >= train.MIN_GROUP
    monkeypatch.setenv(train.L2_OVERRIDE_ENV, "lots")
    with pytest.raises(ConfigError, match="MOTHTUI_CPU_L2"):
        train.cpu_cache_bytes()


def test_evaluation_blocks_and_groups_fit_the_cpu_caches(other_machine):
    cpu = jax.local_devices()[0]
    rows = evaluate.block_rows(65_536, 2_000_000, nets=400, widest=400, device=cpu)
    group = evaluate.eval_group(rows, 400, cpu)
    assert train.MIN_GROUP <= group <= evaluate.CPU_EVAL_GROUP
    assert rows % 256 == 0 or rows < 256  # whole multiples of 256 rows where the caches allow
    assert train.MIN_GROUP * rows * 400 * 4 <= max(evaluate._cpu_activation_bytes(), 256 * 400 * 4 * 2)
    # the block size depends on the whole ensemble and the device, not on a device's share
    assert evaluate.block_rows(65_536, 2_000_000, nets=400, widest=400, device=cpu) == \
        evaluate.block_rows(65_536, 2_000_000, nets=200, widest=400, device=cpu)
    assert evaluate.eval_group(rows, 400) == 0  # several local devices (conftest): the caller decides
    full = (10, 400, 400, 400, 16, 7)
    assert train.auto_group(full, 128, cpu) >= train.MIN_GROUP
    assert train.auto_group(SIZES, BATCH, cpu) >= train.auto_group(full, 128, cpu)  # small networks: more


def test_accelerator_blocks_come_from_its_memory():
    class Gpu:
        platform = "gpu"

        def __init__(self, limit):
            self.limit = limit

        def memory_stats(self):
            return {"bytes_limit": self.limit}

    # the paper preset (8,192 rows, 400 networks 400 wide) fits an 80 GB GPU (60 GB usable) as before
    assert evaluate.block_rows(8_192, 6_400_000, 400, 400, Gpu(60e9)) == 8_192
    small = evaluate.block_rows(8_192, 6_400_000, 400, 400, Gpu(18e9))  # a 24 GB one: smaller blocks
    assert small % 256 == 0 and 400 * small * 400 * 4 <= 18e9 * evaluate.EVAL_MEMORY_SHARE
    assert evaluate.eval_group(small, 400, Gpu(18e9)) == 0  # every network at once
