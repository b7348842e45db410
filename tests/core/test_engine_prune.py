"""Per-network magnitude pruning: exact counts, per network, monotone masks, global and bias modes."""

import math

import numpy as np
import pytest

from core.engine import model, prune


@pytest.fixture(scope="module")
def ensemble():
    params = model.init_params((10, 24, 12, 7), 0.2, seed=3, net_range=range(3))
    return params, model.full_masks(params)


def _np(tree):
    return [(np.asarray(layer.weight), np.asarray(layer.bias)) for layer in tree]


def test_layerwise_prunes_exactly_the_smallest_of_each_layer_of_each_network(ensemble):
    params, masks = ensemble
    for fraction in (0.15, 0.5, 0.9, 0.98):
        params, masks = prune.prune(params, masks, fraction)
        for (w, _), (wm, bm) in zip(_np(params), _np(masks)):
            size = w[0].size
            for n in range(w.shape[0]):
                pruned = ~wm[n]
                assert abs(pruned.sum() / size - fraction) <= 0.5 / size  # the target, to one weight
                assert pruned.sum() == prune.prune_count(fraction, size)
                assert np.all(w[n][pruned] == 0.0)
            assert bm.all()  # biases untouched without prune_biases


def test_cutoff_is_per_network_not_across_the_stack():
    params = model.init_params((10, 16, 7), 0.2, seed=0, net_range=range(2))
    # network 1 has weights 100x larger: a cutoff over the stack would prune only network 0
    params = [model.Layer(p.weight.at[1].multiply(100.0), p.bias) for p in params]
    _, masks = prune.prune(params, model.full_masks(params), 0.5)
    for m in _np(masks):
        wm = m[0]
        assert (~wm[0]).sum() == (~wm[1]).sum() == wm[0].size // 2


def test_kept_weights_are_the_largest(ensemble):
    params, masks = ensemble
    original = _np(params)
    _, new_masks = prune.prune(params, masks, 0.6)
    for (w, _), (wm, _) in zip(original, _np(new_masks)):
        for n in range(w.shape[0]):
            assert np.abs(w[n][wm[n]]).min() >= np.abs(w[n][~wm[n]]).max()


def test_pruned_weights_never_come_back_even_with_ties_at_zero():
    params = model.init_params((10, 16, 7), 0.2, seed=1, net_range=range(2))
    params, masks = prune.prune(params, model.full_masks(params), 0.3)
    # a kept weight that happens to be exactly zero ties with the pruned zeros
    params = [model.Layer(p.weight.at[:, 0, 0].set(0.0), p.bias) for p in params]
    before = _np(masks)
    _, masks2 = prune.prune(params, masks, 0.5)
    for (old, _), (new, _) in zip(before, _np(masks2)):
        assert not np.any(new & ~old), "a pruned weight came back"
        for n in range(new.shape[0]):
            assert (~new[n]).sum() == round(0.5 * new[n].size)


def test_global_mode_uses_one_cutoff_over_all_layers(ensemble):
    params, masks = ensemble
    new_params, new_masks = prune.prune(params, masks, 0.8, mode="global")
    weights = [w for w, _ in _np(params)]
    wmasks = [m for m, _ in _np(new_masks)]
    for n in range(3):
        flat_w = np.concatenate([np.abs(w[n]).ravel() for w in weights])
        flat_m = np.concatenate([m[n].ravel() for m in wmasks])
        assert (~flat_m).sum() == prune.prune_count(0.8, flat_w.size)
        assert flat_w[flat_m].min() >= flat_w[~flat_m].max()


def test_biases_pruned_with_their_own_cutoff(ensemble):
    params, masks = ensemble
    params = [model.Layer(p.weight, p.bias + np.linspace(0.01, 1.0, p.bias.shape[1])) for p in params]
    new_params, new_masks = prune.prune(params, masks, 0.9, bias_fraction=0.25)
    for (w, b), (wm, bm) in zip(_np(new_params), _np(new_masks)):
        for n in range(3):
            assert (~bm[n]).sum() == prune.prune_count(0.25, bm[n].size)
            assert (~wm[n]).sum() == prune.prune_count(0.9, wm[n].size)
            assert np.all(b[n][~bm[n]] == 0.0)


def test_the_seeds_count_prunes_one_more_than_round_in_every_layer():
    """`prune_count = "seed"`: floor(c·n) + 1 per layer (model.md section 5), against round(c·n)."""
    # the paper's 16x7 output layer: the seed keeps 7 / 6 / 5 weights at 93 / 94 / 95 %, round 8 / 7 / 6
    assert [112 - prune.prune_count(c, 112, "seed") for c in (0.93, 0.94, 0.95)] == [7, 6, 5]
    assert [112 - prune.prune_count(c, 112) for c in (0.93, 0.94, 0.95)] == [8, 7, 6]
    assert prune.prune_count(0.0, 112, "seed") == 0 and prune.prune_count(1.0, 112, "seed") == 112
    params = model.init_params((10, 40, 16, 7), 0.2, seed=1, net_range=range(2))
    masks = model.full_masks(params)
    for fraction in (0.15, 0.5, 0.93, 0.95):
        params, masks = prune.prune(params, masks, fraction, count="seed")
        for (w, _), (wm, _) in zip(_np(params), _np(masks)):
            size = w[0].size
            for n in range(w.shape[0]):
                assert (~wm[n]).sum() == int(np.floor(fraction * size)) + 1  # exact, per layer
                assert np.all(w[n][~wm[n]] == 0.0)


def _expected_keep_per_output(w: np.ndarray, kept: np.ndarray, count: int, keep: int) -> np.ndarray:
    """Independent numpy rule: protect each column's `keep` largest kept |w|, prune `count` smallest others."""
    fan_in, fan_out = w.shape
    protected = np.zeros_like(kept)
    for j in range(fan_out):
        rows = [i for i in np.argsort(-np.abs(w[:, j]), kind="stable") if kept[i, j]]
        protected[rows[:keep], j] = True
    order = sorted(np.flatnonzero(kept.ravel()),
                   key=lambda f: (protected.ravel()[f], np.abs(w.ravel()[f])))
    new_kept = kept.copy().ravel()
    already = (~kept).sum()
    new_kept[order[:count - already]] = False
    return new_kept.reshape(w.shape)


@pytest.mark.parametrize("mode", ["layer", "global"])
def test_keep_per_output_prunes_each_outputs_largest_weights_last(mode):
    """`keep_per_output`: no output goes dead while the count leaves room; the counts stay exact."""
    sizes, nets = (10, 24, 12, 7), 3
    params = model.init_params(sizes, 0.2, seed=5, net_range=range(nets))
    # two small outputs, like the angular rates of docs/science.md, so pure magnitude kills them
    last = params[-1]
    params = [*params[:-1], last._replace(weight=last.weight.at[:, :, 5:].multiply(0.05))]
    masks = model.full_masks(params)
    w0 = np.asarray(params[-1].weight)  # pruning only zeroes, so kept weights keep these values
    plain_params, plain_masks, dead_without = params, masks, 0
    for fraction in (0.5, 0.8, 0.9, 0.91):  # 0.91 of 84 keeps 8: room for one weight per output
        before = np.asarray(masks[-1].weight)
        params, masks = prune.prune(params, masks, fraction, mode=mode, keep_per_output=1)
        plain_params, plain_masks = prune.prune(plain_params, plain_masks, fraction, mode=mode)
        out_m = np.asarray(masks[-1].weight)
        pruned = [(~np.asarray(m.weight).reshape(nets, -1)).sum(1) for m in masks]
        if mode == "layer":
            for layer, p in zip(masks, pruned):
                assert np.all(p == prune.prune_count(fraction, np.asarray(layer.weight)[0].size))
            count = prune.prune_count(fraction, w0[0].size)
            for n in range(nets):
                assert np.array_equal(out_m[n], _expected_keep_per_output(w0[n], before[n], count, 1))
        else:
            total = sum(np.asarray(m.weight)[0].size for m in masks)
            assert np.all(sum(pruned) == prune.prune_count(fraction, total))
        assert out_m.any(axis=1).all(), f"an output lost all its weights at {fraction}"
        dead_without += int((~np.asarray(plain_masks[-1].weight).any(axis=1)).sum())
    assert dead_without > 0, "the test needs a case where pure magnitude kills an output"


def test_keep_per_output_gives_way_to_the_count_when_it_leaves_no_room():
    """At 98 % of a 12x7 layer only 2 weights stay: the count wins, and the 2 are protected ones."""
    params = model.init_params((10, 24, 12, 7), 0.2, seed=5, net_range=range(2))
    params, masks = prune.prune(params, model.full_masks(params), 0.98, keep_per_output=1)
    out_m = np.asarray(masks[-1].weight)
    assert np.all(out_m.reshape(2, -1).sum(1) == 84 - prune.prune_count(0.98, 84))
    assert np.all(out_m.any(axis=1).sum(1) == 2)  # two outputs, one weight each


# ---- per-layer control: layers left out, caps (config prune_first_layer, prune_output_layer,
# max_layer_sparsity), against an independent numpy rule ---------------------------------------

def _rule(weights, kept, fraction, mode, layers, caps):
    """Independent numpy rule for one network: lists of (in, out) |w| and kept masks -> new masks.

    layer: a pruned layer's count is min(round half up of c·n, floor(cap·n)), the smallest kept |w|
    going first; a layer left out keeps its mask. global: walk the entries of the pruned layers from
    the smallest |w| up and prune one unless its layer has reached its cap, until the group has
    round(c·N) pruned (already pruned entries count, and never come back)."""
    sizes = [w.size for w in weights]
    cap_n = [math.floor(c * n + 1e-9) for c, n in zip(caps, sizes)]
    new = [m.copy().ravel() for m in kept]
    if mode == "layer":
        for i, (w, n) in enumerate(zip(weights, sizes)):
            if not layers[i]:
                continue
            k = min(math.floor(fraction * n + 0.5), cap_n[i])
            todo = k - int((~new[i]).sum())
            order = sorted(np.flatnonzero(new[i]), key=lambda f: (abs(w.ravel()[f]), f))
            new[i][order[:max(todo, 0)]] = False
    else:
        group = [i for i in range(len(weights)) if layers[i]]
        k = math.floor(fraction * sum(sizes[i] for i in group) + 0.5)
        pruned = {i: int((~new[i]).sum()) for i in group}
        entries = sorted(((abs(weights[i].ravel()[f]), i, f) for i in group for f in np.flatnonzero(new[i])),
                         key=lambda e: (e[0], group.index(e[1]), e[2]))
        for _, i, f in entries:
            if sum(pruned.values()) >= k:
                break
            if pruned[i] < cap_n[i]:
                new[i][f] = False
                pruned[i] += 1
    return [m.reshape(w.shape) for m, w in zip(new, weights)]


PER_LAYER_CASES = [
    ("layer", (False, True, False), None),  # hidden layers only (first and output kept dense)
    ("layer", (True, True, False), None),  # output layer kept dense
    ("layer", (False, True, True), None),  # first layer kept dense
    ("layer", (True, True, True), (1.0, 1.0, 0.8)),  # output layer at most 80 %
    ("global", (False, True, False), None),
    ("global", (True, True, True), (1.0, 0.7, 0.8)),
    ("global", (False, True, True), (1.0, 1.0, 0.5)),
]


@pytest.mark.parametrize("mode,layers,caps", PER_LAYER_CASES)
def test_per_layer_pruning_follows_the_numpy_rule_with_exact_counts(mode, layers, caps):
    sizes, nets = (10, 24, 12, 7), 3
    params = model.init_params(sizes, 0.2, seed=7, net_range=range(nets))
    masks = model.full_masks(params)
    caps_or_none = caps or (1.0,) * 3
    for fraction in (0.5, 0.85, 0.95):
        before = [np.asarray(m.weight) for m in masks]
        weights = [np.asarray(p.weight) for p in params]
        params, masks = prune.prune(params, masks, fraction, mode=mode, layers=layers, caps=caps)
        after = [np.asarray(m.weight) for m in masks]
        for n in range(nets):
            expected = _rule([w[n] for w in weights], [b[n] for b in before], fraction, mode, layers, caps_or_none)
            for k in range(3):
                assert np.array_equal(after[k][n], expected[k]), f"{mode} {fraction} net {n} layer {k}"
                assert (~after[k][n]).sum() <= math.floor(caps_or_none[k] * after[k][n].size + 1e-9)
                if not layers[k]:
                    assert after[k][n].all(), "a layer left out was pruned"
        for p, m in zip(params, masks):  # pruned weights are zero
            assert np.all(np.asarray(p.weight)[~np.asarray(m.weight)] == 0.0)
        if mode == "layer":  # exact counts per pruned layer: the target, or the cap where it binds
            for k, size in enumerate(a[0].size for a in after):
                want = min(prune.prune_count(fraction, size), prune.cap_count(caps_or_none[k], size)) if layers[k] else 0
                assert np.all((~after[k].reshape(nets, -1)).sum(1) == want)
        else:  # the group's count, unless the caps leave less room
            group = [k for k in range(3) if layers[k]]
            total = sum(after[k][0].size for k in group)
            room = sum(prune.cap_count(caps_or_none[k], after[k][0].size) for k in group)
            got = sum((~after[k].reshape(nets, -1)).sum(1) for k in group)
            assert np.all(got == min(prune.prune_count(fraction, total), room))


def test_the_output_cap_binds_at_80_percent_of_the_papers_16x7_layer():
    """The 16x7 output layer capped at 0.8 keeps 23 weights at 95 %, where the plain rule keeps 6."""
    assert prune.cap_count(0.8, 112) == 89 and prune.cap_count(1.0, 112) == 112 and prune.cap_count(0.0, 112) == 0
    params = model.init_params((10, 40, 16, 7), 0.2, seed=2, net_range=range(2))
    _, masks = prune.prune(params, model.full_masks(params), 0.95, caps=(1.0, 1.0, 0.8))
    kept = [np.asarray(m.weight).reshape(2, -1).sum(1) for m in masks]
    assert kept[2].tolist() == [23, 23] and kept[0].tolist() == [400 - 380] * 2
    _, plain = prune.prune(params, model.full_masks(params), 0.95)
    assert np.asarray(plain[2].weight).reshape(2, -1).sum(1).tolist() == [6, 6]


def test_a_layer_left_out_or_over_its_cap_keeps_its_mask_as_it_came():
    """A branch from a 94 % network: the output layer, left out or capped below its pruned fraction,
    neither loses more weights nor gets any back; the hidden layers go on to the new target."""
    params = model.init_params((10, 24, 12, 7), 0.2, seed=4, net_range=range(2))
    params, masks = prune.prune(params, model.full_masks(params), 0.94)
    start = [np.asarray(m.weight) for m in masks]
    for kwargs in (dict(layers=(False, True, False)), dict(caps=(0.94, 1.0, 0.5))):
        _, new = prune.prune(params, masks, 0.99, **kwargs)
        new = [np.asarray(m.weight) for m in new]
        assert np.array_equal(new[2], start[2]) and np.array_equal(new[0], start[0])
        assert np.all((~new[1].reshape(2, -1)).sum(1) == prune.prune_count(0.99, 24 * 12))
        assert not np.any(new[1] & ~start[1])
