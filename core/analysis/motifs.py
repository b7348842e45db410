"""Network motifs of the pruned masks and their z-scores against random networks (Milo et al. 2002).

The follow-on project MothMotifs counts small subgraphs in the 400 pruned networks and scores each
against 1,000 random networks; this module does the same for every level and network of a run,
vectorised over networks and random samples (numpy, and scipy's gammaln for the binomial tables;
no JAX: the UI may import it).

Counts (weight masks only: biases are not units here, docs/science.md says where MothMotifs differs):

- `edges`        surviving weights
- `diverging2`   pairs of connections leaving one unit: sum over units of C(out, 2)
- `converging2`  pairs of connections entering one unit: sum of C(in, 2)
- `chain2`       paths a -> b -> c through a hidden unit b: sum over hidden units of in * out
- `diverging3`   triples leaving one unit: sum of C(out, 3)
- `converging3`  triples entering one unit: sum of C(in, 3)

Every count depends only on the units' degrees, so the null model is sampled as degree sequences
(`sample_degrees`), never as whole masks. The null model (`null_mask` builds one such network, as
the definition and for the tests): layer pair k with a live source units, b live target units and
E weights (a, b, E: those of the real network without its ghost units), independently per pair,

1. cover: the larger side's units (say a >= b) each get one connection; b of them, in random order,
   go one to each target, the other a - b each to a uniformly random target (with repetition);
2. fill: the remaining R = E - max(a, b) connections are a uniformly random R-subset of the
   a*b - max(a, b) live pairs the cover did not use.

So every live unit keeps at least one connection in and out, each layer keeps its live units and
its number of weights, and no other unit gets a connection. One side's degrees are then exactly
`cover + multivariate hypergeometric(R, caps = other side - cover)`, with the cover 1 on the larger
side and 1 + multinomial(a - b, uniform) on the smaller: `side_degrees` samples that. Out- and
in-degrees of one pair are sampled independently: each count uses one side of each pair (chain2
uses the in-side of pair k-1 and the out-side of pair k), so its null distribution is exact, except
that chain2's terms through consecutive hidden layers are correlated in the real model and not here;
its null mean and variance, all a z-score uses, are still exact (docs/science.md gives the argument).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.analysis.summary import MotifSummary, json_ready

MOTIFS = ("edges", "diverging2", "converging2", "chain2", "diverging3", "converging3")
DEFAULT_SAMPLES = 1_000
#: Networks whose random samples are drawn in one batch (bounds memory: batch x samples x widest layer).
NETS_PER_BATCH = 16
#: Batches drawn at once in threads (numpy releases the GIL in most of the work); each batch has its
#: own generator, so the result is the same with any number. Memory: about 0.4 GB per thread at the
#: paper's size.
THREADS = max(1, min(4, os.cpu_count() or 1))
#: Mixed into the analysis seed so the motif stream never equals the input-noise stream.
STREAM = 0x6D6F7469


def _small(d: np.ndarray) -> np.ndarray:
    """Degrees as int32 while their cubes fit (half the memory traffic of int64), else int64."""
    return d.astype(np.int32 if d.size == 0 or int(d.max()) < 1200 else np.int64, copy=False)


def _pair_sums(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sum of d, of C(d, 2), of C(d, 3)) over the last axis, int64, from the power sums of d."""
    d = _small(d)
    d2 = d * d
    s1, s2, s3 = (x.sum(axis=-1, dtype=np.int64) for x in (d, d2, d2 * d))
    return s1, (s2 - s1) // 2, (s3 - 3 * s2 + 2 * s1) // 6


def counts_from_degrees(out_deg: Sequence[np.ndarray], in_deg: Sequence[np.ndarray]) -> np.ndarray:
    """The six counts `(..., 6)` int64 from per weight layer k the out-degrees of its source units
    `out_deg[k] (..., n_k)` and the in-degrees of its target units `in_deg[k] (..., n_{k+1})`."""
    outs = [_pair_sums(o) for o in out_deg]
    ins = [_pair_sums(i) for i in in_deg]
    edges = sum(o[0] for o in outs)
    chain = sum((_small(in_deg[k - 1]) * _small(out_deg[k])).sum(axis=-1, dtype=np.int64)
                for k in range(1, len(out_deg)))
    columns = (edges, sum(o[1] for o in outs), sum(i[1] for i in ins), chain,
               sum(o[2] for o in outs), sum(i[2] for i in ins))
    return np.stack(np.broadcast_arrays(*columns), axis=-1).astype(np.int64)


def motif_counts(weight_masks: Sequence[np.ndarray]) -> np.ndarray:
    """`(N, 6)` counts of N networks from per layer masks `(N, in, out)` (MOTIFS order)."""
    masks = [np.asarray(m, bool) for m in weight_masks]
    return counts_from_degrees([m.sum(axis=2) for m in masks], [m.sum(axis=1) for m in masks])


def live_layout(live_masks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Live units per layer `(N, K+1)` and weights per layer `(N, K)` of ghost-free masks.

    Live: an input with a connection out, a hidden unit with one in and one out (all of them once
    the ghosts are gone), an output with a connection in.
    """
    masks = [np.asarray(m, bool) for m in live_masks]
    units = [m.any(axis=2).sum(axis=1) for m in masks] + [masks[-1].any(axis=1).sum(axis=1)]
    edges = [m.sum(axis=(1, 2)) for m in masks]
    return np.stack(units, axis=1).astype(np.int64), np.stack(edges, axis=1).astype(np.int64)


def _check_layout(units: np.ndarray, edges: np.ndarray) -> None:
    a, b = units[..., :-1], units[..., 1:]
    if np.any(edges < np.maximum(a, b)) or np.any(edges > a * b):
        raise ValueError("live units and weights per layer do not fit a network without ghost units")


# ---- the null model, one network at a time (the definition; used by the tests) ---------------------

def null_mask(a: int, b: int, e: int, rng: np.random.Generator) -> np.ndarray:
    """One random `(a, b)` bool mask of the null model (module docstring): cover, then uniform fill."""
    _check_layout(np.array([a, b]), np.array([e]))
    mask = np.zeros((a, b), bool)
    if e == 0:
        return mask
    big, small = max(a, b), min(a, b)
    first = rng.permutation(big)[:small]                  # the larger side's units matched one to one
    partner = np.empty(big, np.int64)
    partner[first] = rng.permutation(small)
    rest = np.setdiff1d(np.arange(big), first)
    partner[rest] = rng.integers(0, small, rest.size)     # the others: a uniformly random partner each
    if a >= b:
        mask[np.arange(a), partner] = True
    else:
        mask[partner, np.arange(b)] = True
    free = np.flatnonzero(~mask.ravel())
    mask.ravel()[rng.choice(free, e - big, replace=False)] = True
    return mask


# ---- the null model, vectorised over networks and samples -------------------------------------------

def _multinomial_uniform(n: np.ndarray, m: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """`(B, width)` int32: n[i] balls thrown uniformly into the first m[i] bins of row i."""
    rows = n.shape[0]
    most = int(n.max(initial=0))
    if not most:
        return np.zeros((rows, width), np.int32)
    bins = (rng.random((rows, most)) * m[:, None]).astype(np.int64)
    valid = np.arange(most)[None, :] < n[:, None]
    flat = (np.arange(rows)[:, None] * width + bins)[valid]
    return np.bincount(flat, minlength=rows * width).astype(np.int32).reshape(rows, width)


#: Buckets of the guide tables that start each binomial inversion near its answer.
_GUIDE = 1024


def _binomial_by_table(table: np.ndarray, n: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Independent Binomial(n[t], p[t]) draws, t = table[i, j], by inversion of cumulative tables
    (one per distinct (n, p): a batch has few, its networks times their cover counts)."""
    from scipy.special import gammaln

    top = int(n.max(initial=0))
    k = np.arange(top + 1)[None, :]
    nn, q = n[:, None].astype(np.float64), p[:, None].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_pmf = (gammaln(nn + 1) - gammaln(k + 1) - gammaln(np.maximum(nn - k, 0) + 1)
                   + np.where(k > 0, k * np.log(q), 0.0) + np.where(nn - k > 0, (nn - k) * np.log1p(-q), 0.0))
        cdf = np.cumsum(np.where(k <= nn, np.exp(log_pmf), 0.0), axis=1)
    cdf[k >= nn] = 2.0                                            # the inversion never passes n
    # guide[t, b]: how many cdf values are <= b / _GUIDE: where a draw in bucket b starts its search
    guide: np.ndarray = np.stack([np.searchsorted(row, np.arange(_GUIDE) / _GUIDE, side="right") for row in cdf])
    guide, cdf = guide.astype(np.int32).ravel(), cdf.ravel()
    t = table.ravel().astype(np.int64)
    u = rng.random(t.size)
    x = guide[t * _GUIDE + (u * _GUIDE).astype(np.int64)]
    at = t * (top + 1)
    step = np.flatnonzero(cdf[at + x] <= u)
    while step.size:                                              # a few cdf values per bucket at most
        x[step] += 1
        step = step[cdf[at[step] + x[step]] <= u[step]]
    return x.reshape(table.shape)


def _uniform_subset_counts(k: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per row i, the counts per unit of a uniformly random k[i]-subset of the row's cells (unit j
    holds weights[i, j] cells). Drawn as k[i] uniform cell ranks, a rank equal to another drawn
    again until all differ: the procedure treats every cell alike, so every k-subset is as likely."""
    rows, width = weights.shape
    most = int(k.max(initial=0))
    if most == 0:
        return np.zeros((rows, width), np.int64)
    cells = weights.sum(axis=1, dtype=np.int64)
    never = np.iinfo(np.int64).max                              # sorts after every real rank
    valid = np.arange(most)[None, :] < k[:, None]
    ranks = np.where(valid, (rng.random((rows, most)) * cells[:, None]).astype(np.int64), never)
    todo = np.arange(rows)
    while todo.size:
        part = np.sort(ranks[todo], axis=1)
        again = (part[:, 1:] == part[:, :-1]) & (part[:, 1:] != never)
        part[:, 1:][again] = (rng.random(int(again.sum())) * np.broadcast_to(
            cells[todo][:, None], again.shape)[again]).astype(np.int64)
        ranks[todo] = part
        todo = todo[again.any(axis=1)]
    ranks.sort(axis=1)
    # rank -> unit: one search in the cumulative cells of all rows laid end to end
    offsets = np.concatenate([[0], np.cumsum(cells)[:-1]])
    ends = (np.cumsum(weights, axis=1, dtype=np.int64) + offsets[:, None]).ravel()
    unit = np.searchsorted(ends, (ranks + offsets[:, None])[valid], side="right")
    return np.bincount(unit, minlength=rows * width).reshape(rows, width)


def _hypergeometric(total: np.ndarray, caps: np.ndarray, rng: np.random.Generator,
                    tables: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """`(B, W)` multivariate hypergeometric: how many of a uniformly random total[i]-subset of the
    cells fall in each unit of row i, unit j holding caps[i, j] cells. Exact, in two steps:

    1. every cell is taken with probability p = total / cells independently (binomial counts per
       unit): given how many were taken, the taken set is a uniformly random subset of that size;
    2. the difference to `total` (about its square root) is made up by adding a uniformly random
       subset of the cells not taken, or removing one of the cells taken (`_uniform_subset_counts`),
       which leaves a uniformly random `total`-subset.

    `tables`: `(table (B, W), n (T,), p (T,))` with caps[i, j] = n[table[i, j]], when the caller
    knows which elements share (caps, p); otherwise one table per distinct pair, found here.
    """
    cells = caps.sum(axis=1, dtype=np.int64)
    p_row = np.where(cells > 0, total / np.maximum(cells, 1), 0.0)
    if tables is None:
        _, first, inverse = np.unique(np.stack([np.broadcast_to(p_row[:, None], caps.shape).ravel(),
                                                caps.ravel()]), axis=1, return_index=True, return_inverse=True)
        table, n_t, p_t = inverse.reshape(caps.shape), caps.ravel()[first], np.broadcast_to(
            p_row[:, None], caps.shape).ravel()[first]
    else:
        table, n_t, p_t = tables
    x = _binomial_by_table(table, n_t, p_t, rng)
    diff = total - x.sum(axis=1)
    for sign in (1, -1):
        rows = np.flatnonzero(diff * sign > 0)
        if not rows.size:
            continue
        weights = caps[rows] - x[rows] if sign > 0 else x[rows]
        x[rows] += sign * _uniform_subset_counts(np.abs(diff[rows]), weights, rng)
    return x


def side_degrees(m: np.ndarray, other: np.ndarray, edges: np.ndarray, width: int,
                 rng: np.random.Generator, group: np.ndarray | None = None) -> np.ndarray:
    """`(B, width)` degrees of one side (m[i] live units, the first m[i] columns) of a layer pair in
    the null model, the other side having other[i] live units and the pair edges[i] weights.
    Rows of one `group` (the samples of one network, numbered from 0) share m, other and edges."""
    rows = m.shape[0]
    group = np.arange(rows) if group is None else np.asarray(group)
    extra = np.maximum(other - m, 0)
    cover = _multinomial_uniform(extra, m, width, rng)
    cover += np.arange(width, dtype=np.int32)[None, :] < m[:, None]
    fill = edges - np.maximum(m, other)
    # the fill's binomial tables: one per network and cover count (cover 0: a unit that is not there)
    depth = int(cover.max(initial=0)) + 1
    groups = int(group.max(initial=0)) + 1
    g_other, g_fill, g_cells = (np.zeros(groups, np.int64) for _ in range(3))
    g_other[group], g_fill[group] = other, fill
    g_cells[group] = m * other - np.maximum(m, other)
    c = np.arange(depth)[None, :]
    table_caps = np.where(c > 0, np.maximum(g_other[:, None] - c, 0), 0)
    table_p = np.repeat(np.where(g_cells > 0, g_fill / np.maximum(g_cells, 1), 0.0), depth)
    table = group[:, None].astype(np.int32) * depth + cover
    caps = table_caps.ravel()[table]
    return cover + _hypergeometric(fill, caps.astype(np.int32), rng, (table, table_caps.ravel(), table_p))


def _pair_degrees(units: np.ndarray, edges: np.ndarray, samples: int, rng: np.random.Generator):
    """Yields, pair by pair, the null model's out-degrees `(B, samples, w_k)` and in-degrees
    `(B, samples, w_{k+1})` for rows `units (B, K+1)`, `edges (B, K)` (live units first, zeros after)."""
    units, edges = np.asarray(units, np.int64), np.asarray(edges, np.int64)
    _check_layout(units, edges)
    rows = units.shape[0]
    widths = [int(units[:, k].max(initial=0)) for k in range(units.shape[1])]
    rep_units = np.repeat(units, samples, axis=0)
    rep_edges = np.repeat(edges, samples, axis=0)
    group = np.repeat(np.arange(rows), samples)
    for k in range(edges.shape[1]):
        a, b, e = rep_units[:, k], rep_units[:, k + 1], rep_edges[:, k]
        out = side_degrees(a, b, e, widths[k], rng, group).reshape(rows, samples, widths[k])
        yield out, side_degrees(b, a, e, widths[k + 1], rng, group).reshape(rows, samples, widths[k + 1])


def sample_degrees(units: np.ndarray, edges: np.ndarray, samples: int,
                   rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Null-model degrees for rows `units (B, K+1)`, `edges (B, K)`: per layer pair k, out-degrees
    `(B, samples, w_k)` and in-degrees `(B, samples, w_{k+1})` (live units first, zeros after)."""
    pairs = list(_pair_degrees(units, edges, samples, rng))
    return [p[0] for p in pairs], [p[1] for p in pairs]


def null_counts(units: np.ndarray, edges: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """`(B, samples, 6)` motif counts of random networks of the null model, per row of units/edges
    (the same draws as `sample_degrees`, holding two layer pairs' degrees at a time)."""
    total, previous_in = None, None
    for out, into in _pair_degrees(units, edges, samples, rng):
        counts = counts_from_degrees([out], [into])
        if previous_in is not None:
            counts[..., MOTIFS.index("chain2")] = (_small(previous_in) * _small(out)).sum(axis=-1, dtype=np.int64)
        total = counts if total is None else total + counts
        previous_in = into
    if total is None:
        return np.zeros((len(units), samples, len(MOTIFS)), np.int64)
    return total


def z_scores(real: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, sd, z) over the samples axis (-2) of `null (..., S, 6)` against `real (..., 6)`:
    z = (real - mean) / sd with the sample sd (ddof 1); NaN where sd is 0 (e.g. `edges`, fixed by
    the null model) or fewer than 2 samples: z is undefined there."""
    null = null.astype(np.float64)
    mean = null.mean(axis=-2)
    if null.shape[-2] < 2:
        return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    sd = null.std(axis=-2, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, (real - mean) / np.where(sd > 0, sd, 1.0), np.nan)
    return mean, sd, z


@dataclass
class LevelMotifs:
    """One level's motifs for N networks, each `(N, 6)` in MOTIFS order."""

    counts: np.ndarray       # int64, on the masks as stored
    live_counts: np.ndarray  # int64, without ghost units (what the null model is matched to)
    null_mean: np.ndarray    # float64, over the random networks (NaN without samples)
    null_sd: np.ndarray      # float64
    z: np.ndarray            # float64, of live_counts; NaN where undefined


def level_motifs(weight_masks: Sequence[np.ndarray], live_masks: Sequence[np.ndarray], samples: int,
                 seed: Sequence[int] | int, threads: int | None = None) -> LevelMotifs:
    """Counts on the stored and on the ghost-free masks, and z-scores of the latter against `samples`
    random networks each (0: counts only). `seed` seeds one generator per batch of networks, so the
    result does not depend on anything but the masks, `samples` and the seed (not on `threads`,
    default THREADS)."""
    counts = motif_counts(weight_masks)
    live = motif_counts(live_masks)
    n_nets = counts.shape[0]
    nan = np.full(live.shape, np.nan)
    if samples < 1 or n_nets == 0:
        return LevelMotifs(counts, live, nan, nan.copy(), nan.copy())
    units, edges = live_layout(live_masks)
    mean, sd, z = nan.copy(), nan.copy(), nan.copy()
    base = list(np.atleast_1d(seed).astype(np.int64))

    def batch(start: int) -> None:
        stop = min(n_nets, start + NETS_PER_BATCH)
        rng = np.random.default_rng([*base, STREAM, start])
        null = null_counts(units[start:stop], edges[start:stop], samples, rng)
        mean[start:stop], sd[start:stop], z[start:stop] = z_scores(live[start:stop], null)

    starts = range(0, n_nets, NETS_PER_BATCH)
    workers = max(1, min(THREADS if threads is None else threads, len(starts)))
    if workers == 1:
        for start in starts:
            batch(start)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="motifs") as pool:
            list(pool.map(batch, starts))                       # re-raises a batch's error
    return LevelMotifs(counts, live, mean, sd, z)


#: The arrays `analyze_run` stores under `<run>/analysis/motifs/`, each `(L, N, 6)`.
ARRAYS = ("counts", "live_counts", "null_mean", "null_sd", "z")


def _nanmedian(a: np.ndarray, axis: int) -> np.ndarray:
    """nanmedian, NaN (no warning) where every value is NaN (z of `edges`, or no samples)."""
    a = np.asarray(a, np.float64)
    out = np.full(np.delete(a.shape, axis), np.nan)
    some = np.isfinite(a).any(axis=axis)
    if some.any():
        moved = np.moveaxis(a, axis, -1)[some]
        out[some] = np.nanmedian(moved, axis=-1)
    return out


def motif_summary(levels: Sequence[LevelMotifs], samples: int) -> MotifSummary:
    """What the stored summary says of the motifs: medians over the networks per level, `(L, 6)`."""
    z = np.stack([m.z for m in levels])
    return MotifSummary(
        names=list(MOTIFS), samples=int(samples),
        counts_median=json_ready(np.median(np.stack([m.counts for m in levels]), axis=1)),
        live_median=json_ready(np.median(np.stack([m.live_counts for m in levels]), axis=1)),
        z_median=json_ready(_nanmedian(z, axis=1)))


def load_motifs(run) -> dict | None:
    """The stored motifs of a run as JSON-ready lists (`analyze --json`'s `motifs`), or None when
    the stored analysis has none (absent, half-written, or from before motifs were counted).

    `counts`, `live_counts`, `null_mean`, `null_sd`, `z` are indexed [level][network][motif] in
    `names` order; null where a value is undefined (z of `edges`, or no random networks).
    """
    from core.analysis.store import load_analysis, stored_array

    found = load_analysis(run)
    if found is None or "motifs/z" not in found.group:
        return None
    group, params = found.group, found.params
    out = {"names": list(MOTIFS), "samples": params.get("motif_samples"), "seed": params.get("seed"),
           "levels": found.levels}
    for name in ARRAYS:
        a = stored_array(group, f"motifs/{name}")
        if a.dtype.kind == "f":
            out[name] = [[[None if not np.isfinite(v) else float(v) for v in net] for net in lvl] for lvl in a]
        else:
            out[name] = a.tolist()
    return out
