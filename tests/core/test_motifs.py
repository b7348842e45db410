"""Motif counts, the null model and the z-scores (core.analysis.motifs), and their place in the
stored analysis and `analyze --json`."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from core.analysis import AnalysisParams, analyze_run, read_array
from core.analysis import motifs as mo
from core.analysis.structure import ghost_free
from core.cli import main
from core.export.compaction import compact
from fixture_runs import make_fixture_run


def _random_masks(rng, sizes, nets, density):
    return [rng.random((nets, a, b)) < density for a, b in zip(sizes, sizes[1:])]


def _brute_force(masks):
    """The six counts of one network by enumerating the subgraphs themselves (itertools)."""
    counts = dict.fromkeys(mo.MOTIFS, 0)
    for m in masks:
        a, b = m.shape
        counts["edges"] += sum(bool(m[i, j]) for i in range(a) for j in range(b))
        for i in range(a):
            counts["diverging2"] += sum(m[i, j] and m[i, k] for j, k in itertools.combinations(range(b), 2))
            counts["diverging3"] += sum(m[i, j] and m[i, k] and m[i, l]
                                        for j, k, l in itertools.combinations(range(b), 3))
        for j in range(b):
            counts["converging2"] += sum(m[i, j] and m[k, j] for i, k in itertools.combinations(range(a), 2))
            counts["converging3"] += sum(m[i, j] and m[k, j] and m[l, j]
                                         for i, k, l in itertools.combinations(range(a), 3))
    for first, second in zip(masks, masks[1:]):
        for x, y, z in itertools.product(range(first.shape[0]), range(first.shape[1]), range(second.shape[1])):
            counts["chain2"] += bool(first[x, y] and second[y, z])
    return [counts[name] for name in mo.MOTIFS]


@pytest.mark.parametrize("sizes,density", [((4, 5, 3), 0.5), ((3, 6, 5, 2), 0.35), ((5, 4, 4, 4, 3), 0.7),
                                           ((2, 3), 0.9)])
def test_counts_equal_a_brute_force_enumeration(sizes, density):
    rng = np.random.default_rng(len(sizes))
    masks = _random_masks(rng, sizes, 5, density)
    counts = mo.motif_counts(masks)
    for n in range(5):
        assert counts[n].tolist() == _brute_force([m[n] for m in masks])


def test_ghost_free_counts_are_the_compacted_networks_counts():
    rng = np.random.default_rng(3)
    masks = _random_masks(rng, (5, 8, 8, 3), 6, 0.2)
    live, ghosts = ghost_free(masks)
    assert ghosts.sum() > 0, "the test wants some ghost units"
    live_counts = mo.motif_counts(live)
    for n in range(6):
        c = compact([np.zeros(m[n].shape, np.float32) for m in masks], [np.zeros(m.shape[2]) for m in masks],
                    [m[n] for m in masks], [np.zeros(m.shape[2], bool) for m in masks])
        assert ghosts[n].tolist() == c.removed
        assert live_counts[n].tolist() == _brute_force(c.weight_masks)
        # every hidden unit left has a connection in and out
        for h in range(len(masks) - 1):
            ins, outs = live[h][n].sum(axis=0), live[h + 1][n].sum(axis=1)
            assert ((ins > 0) == (outs > 0)).all()


def _layout(seed=4, nets=5):
    rng = np.random.default_rng(seed)
    live, _ = ghost_free(_random_masks(rng, (4, 7, 6, 3), nets, 0.35))
    return mo.live_layout(live)


@pytest.mark.parametrize("caps,total", [([5, 0, 3, 10, 1, 7], 12), ([5, 0, 3, 10, 1, 7], 26),
                                        (list(np.random.default_rng(0).integers(0, 30, 60)), 400)])
def test_fast_hypergeometric_has_the_exact_moments(caps, total):
    """The sampler behind the null model against the multivariate hypergeometric's exact moments."""
    rows = 20_000
    caps = np.tile(np.asarray(caps, np.int64), (rows, 1))
    x = mo._hypergeometric(np.full(rows, total), caps, np.random.default_rng(5))
    c, n = caps[0].astype(float), caps[0].sum()
    assert (x.sum(axis=1) == total).all() and (x >= 0).all() and (x <= caps).all()
    mean = total * c / n
    var = total * (c / n) * (1 - c / n) * (n - total) / max(n - 1, 1)
    se = np.sqrt(var / rows) + 1e-12
    assert (np.abs(x.mean(axis=0) - mean) <= 5 * se).all()
    assert np.allclose(x.var(axis=0), var, rtol=0.1, atol=1e-9)
    cov = -total * (n - total) * c[0] * c[3] / (n * n * max(n - 1, 1))
    assert abs(np.cov(x[:, 0], x[:, 3])[0, 1] - cov) <= 5 * np.sqrt(var[0] * var[3] / rows) + 1e-12


def test_null_degrees_keep_weights_and_live_units_per_layer():
    units, edges = _layout()
    assert (edges > 0).all()
    outs, ins = mo.sample_degrees(units, edges, 200, np.random.default_rng(0))
    for k in range(edges.shape[1]):
        for side, n_live in ((outs[k], units[:, k]), (ins[k], units[:, k + 1])):
            assert (side.sum(axis=2) == edges[:, k, None]).all()          # weights per layer
            live = np.arange(side.shape[2])[None, None, :] < n_live[:, None, None]
            assert (side[np.broadcast_to(live, side.shape)] >= 1).all()   # each live unit connected
            assert (side[~np.broadcast_to(live, side.shape)] == 0).all()  # no other unit
        assert (outs[k] <= units[:, k + 1, None, None]).all() and (ins[k] <= units[:, k, None, None]).all()
    for k in range(1, edges.shape[1]):      # a hidden unit: one in and one out, as live units per layer say
        assert ((ins[k - 1] > 0) == (outs[k] > 0)).all()
        assert ((outs[k] > 0).sum(axis=2) == units[:, k, None]).all()
    # null_counts streams the same draws pair by pair
    np.testing.assert_array_equal(mo.null_counts(units, edges, 200, np.random.default_rng(0)),
                                  mo.counts_from_degrees(outs, ins))


@pytest.mark.parametrize("layout", ["random", "skewed"])
def test_null_masks_are_the_model_and_its_degrees_have_the_samplers_distribution(layout):
    """`null_mask` (whole networks, the definition) and `sample_degrees` (the vectorised sampler)
    agree on every count's null mean and sd; "skewed": few units against many, nearly full pairs."""
    if layout == "random":
        units, edges = _layout(seed=6, nets=1)
    else:
        units, edges = np.array([[2, 6, 3, 5]]), np.array([[9, 13, 7]])
    u, e = units[0], edges[0]
    rng = np.random.default_rng(1)
    samples = 3000
    by_mask = []
    for _ in range(samples):
        masks = [mo.null_mask(int(u[k]), int(u[k + 1]), int(e[k]), rng) for k in range(len(e))]
        for k, m in enumerate(masks):
            assert m.sum() == e[k] and m.any(axis=1).all() and m.any(axis=0).all()
        by_mask.append(mo.motif_counts([m[None] for m in masks])[0])
    by_mask = np.array(by_mask, float)
    by_degrees = mo.null_counts(units, edges, samples, np.random.default_rng(2))[0].astype(float)
    for j, name in enumerate(mo.MOTIFS):
        m1, m2 = by_mask[:, j].mean(), by_degrees[:, j].mean()
        s1, s2 = by_mask[:, j].std(), by_degrees[:, j].std()
        assert abs(m1 - m2) <= 5 * np.hypot(s1, s2) / np.sqrt(samples) + 1e-9, (name, m1, m2)
        assert abs(s1 - s2) <= 0.12 * max(s1, s2) + 1e-9, (name, s1, s2)


def test_z_score_of_a_hand_made_case():
    real = np.array([10, 7, 3, 0, 1, 2])
    null = np.array([[10, 5, 3, 1, 1, 2], [10, 7, 3, 1, 1, 2], [10, 9, 3, 1, 1, 2]])
    mean, sd, z = mo.z_scores(real, null)
    assert mean.tolist() == [10, 7, 3, 1, 1, 2]
    assert sd[1] == pytest.approx(2.0)                 # ddof 1
    assert z[1] == 0.0 and np.isnan(z[0]) and np.isnan(z[2]) and np.isnan(z[3])   # sd 0: undefined
    # a dense layer pair has one null network, the real one: nothing is defined
    dense = [np.ones((2, 3, 4), bool), np.ones((2, 4, 2), bool)]
    got = mo.level_motifs(dense, dense, 20, 0)
    assert (got.null_mean == got.live_counts).all() and np.isnan(got.z).all()


def test_level_motifs_is_seeded_and_counts_only_without_samples():
    rng = np.random.default_rng(8)
    masks = _random_masks(rng, (4, 9, 9, 3), 3, 0.4)
    live, _ = ghost_free(masks)
    a, b = mo.level_motifs(masks, live, 100, [0, 1]), mo.level_motifs(masks, live, 100, [0, 1])
    c = mo.level_motifs(masks, live, 100, [0, 2])
    np.testing.assert_array_equal(a.z, b.z)
    assert not np.array_equal(a.null_mean, c.null_mean, equal_nan=True)
    assert np.isnan(a.z[:, 0]).all() and np.isfinite(a.z[:, 1:]).all()
    many = mo.level_motifs([np.repeat(m, 12, axis=0) for m in masks], [np.repeat(m, 12, axis=0) for m in live],
                           40, [0, 1], threads=1)                  # 36 networks: 3 batches of 16 or fewer
    threaded = mo.level_motifs([np.repeat(m, 12, axis=0) for m in masks], [np.repeat(m, 12, axis=0) for m in live],
                               40, [0, 1], threads=3)
    np.testing.assert_array_equal(many.z, threaded.z)
    assert not np.array_equal(many.null_mean[12], many.null_mean[16])  # one network, two batches: own draws
    none = mo.level_motifs(masks, live, 0, 0)
    assert (none.counts == a.counts).all() and np.isnan(none.z).all()


def test_stored_with_the_analysis_and_in_analyze_json(runs_dir, capsys):
    run = make_fixture_run(runs_dir, "m", nets=3, hidden=(12, 8), schedule=(0.5, 0.9), seed=2)
    summary = analyze_run(run, AnalysisParams(performance=False, motif_samples=50))
    levels = run.levels_complete
    for level in range(levels):
        masks = run.level(level).weight_masks
        assert (read_array(run, "motifs/counts")[level] == mo.motif_counts(masks)).all()
        assert (read_array(run, "motifs/live_counts")[level] == mo.motif_counts(ghost_free(masks)[0])).all()
    assert np.asarray(summary.motifs.z_median).shape == (levels, 6) and summary.motifs.samples == 50

    assert main(["analyze", "m", "--runs", str(runs_dir), "--structure-only", "--motif-samples", "50",
                 "--json"]) == 0
    motifs = json.loads(capsys.readouterr().out)["motifs"]
    assert motifs["names"] == list(mo.MOTIFS) and motifs["samples"] == 50
    assert np.asarray(motifs["counts"]).shape == (levels, 3, 6)
    assert motifs["z"][0][0][0] is None                    # edges: fixed by the null model
    assert np.asarray(motifs["z"], dtype=float)[1, :, 1:].shape == (3, 5)

    assert main(["analyze", "m", "--runs", str(runs_dir), "--structure-only", "--motif-samples", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mothtui: ") and "--motif-samples" in err and len(err.strip().splitlines()) == 1


def test_networks_drawn_from_the_null_model_score_z_about_standard_normal():
    rng = np.random.default_rng(3)
    units, edges, nets = [6, 20, 25, 10, 4], [40, 120, 60, 15], 80
    masks = [np.stack([mo.null_mask(units[k], units[k + 1], edges[k], rng) for _ in range(nets)])
             for k in range(len(edges))]
    live, ghosts = ghost_free(masks)
    assert ghosts.sum() == 0 and all((a == b).all() for a, b in zip(live, masks))
    z = mo.level_motifs(masks, live, 300, 1).z[:, 1:]
    assert (np.abs(z.mean(axis=0)) < 0.4).all(), z.mean(axis=0)
    assert ((z.std(axis=0) > 0.75) & (z.std(axis=0) < 1.25)).all(), z.std(axis=0)
