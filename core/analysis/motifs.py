"""Network motifs of the pruned masks and their z-scores against random networks (Milo et al. 2002).

The follow-on project MothMotifs counts small subgraphs in the 400 pruned networks and scores each
against 1,000 random networks; this module does the same for every level and network of a run,
vectorised over networks and random samples (pure numpy, no JAX: the UI may import it).

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
its number of weights, and ghost units stay ghosts. One side's degrees are then exactly
`cover + multivariate hypergeometric(R, caps = other side - cover)`, with the cover 1 on the larger
side and 1 + multinomial(a - b, uniform) on the smaller: `side_degrees` samples that. Out- and
in-degrees of one pair are sampled independently: each count uses one side of each pair (chain2
uses the in-side of pair k-1 and the out-side of pair k), so its null distribution is exact, except
that chain2's terms through consecutive hidden layers are correlated in the real model and not here;
its null mean and variance, all a z-score uses, are still exact (docs/science.md gives the argument).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

MOTIFS = ("edges", "diverging2", "converging2", "chain2", "diverging3", "converging3")
DEFAULT_SAMPLES = 1_000
#: Networks whose random samples are drawn in one batch (bounds memory: batch x samples x widest layer).
NETS_PER_BATCH = 16
#: Mixed into the analysis seed so the motif stream never equals the input-noise stream.
STREAM = 0x6D6F7469


def _c2(d: np.ndarray) -> np.ndarray:
    d = d.astype(np.int64)
    return d * (d - 1) // 2


def _c3(d: np.ndarray) -> np.ndarray:
    d = d.astype(np.int64)
    return d * (d - 1) * (d - 2) // 6


def counts_from_degrees(out_deg: Sequence[np.ndarray], in_deg: Sequence[np.ndarray]) -> np.ndarray:
    """The six counts `(..., 6)` int64 from per weight layer k the out-degrees of its source units
    `out_deg[k] (..., n_k)` and the in-degrees of its target units `in_deg[k] (..., n_{k+1})`."""
    edges = sum(o.astype(np.int64).sum(-1) for o in out_deg)
    div2 = sum(_c2(o).sum(-1) for o in out_deg)
    conv2 = sum(_c2(i).sum(-1) for i in in_deg)
    chain = sum((in_deg[k - 1].astype(np.int64) * out_deg[k]).sum(-1) for k in range(1, len(out_deg)))
    div3 = sum(_c3(o).sum(-1) for o in out_deg)
    conv3 = sum(_c3(i).sum(-1) for i in in_deg)
    if len(out_deg) == 1:
        chain = np.zeros_like(edges)
    return np.stack(np.broadcast_arrays(edges, div2, conv2, chain, div3, conv3), axis=-1)


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
    """`(B, width)`: n[i] balls thrown uniformly into the first m[i] bins of row i."""
    rows = n.shape[0]
    most = int(n.max(initial=0))
    out = np.zeros(rows * width, np.int64)
    if most:
        bins = (rng.random((rows, most)) * m[:, None]).astype(np.int64)
        valid = np.arange(most)[None, :] < n[:, None]
        flat = (np.arange(rows)[:, None] * width + bins)[valid]
        out += np.bincount(flat, minlength=rows * width)
    return out.reshape(rows, width)


def _hypergeometric(total: np.ndarray, caps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`(B, W)` multivariate hypergeometric: how many of a uniformly random total[i]-subset of the
    cells fall in each unit of row i, unit j holding caps[i, j] cells (sequential conditionals)."""
    out = np.zeros(caps.shape, np.int64)
    left = total.astype(np.int64).copy()
    remaining = caps.sum(axis=1)
    for j in range(caps.shape[1]):
        c = caps[:, j]
        remaining = remaining - c
        busy = left > 0
        if not busy.any():
            break
        x = np.zeros_like(left)
        x[busy] = rng.hypergeometric(c[busy], remaining[busy], left[busy])
        out[:, j] = x
        left -= x
    return out


def side_degrees(m: np.ndarray, other: np.ndarray, edges: np.ndarray, width: int,
                 rng: np.random.Generator) -> np.ndarray:
    """`(B, width)` degrees of one side (m[i] live units, the first m[i] columns) of a layer pair in
    the null model, the other side having other[i] live units and the pair edges[i] weights."""
    extra = np.maximum(other - m, 0)
    cover = np.where(np.arange(width)[None, :] < m[:, None], 1, 0) + _multinomial_uniform(extra, m, width, rng)
    alive = cover > 0
    caps = np.where(alive, other[:, None] - cover, 0)
    fill = edges - np.maximum(m, other)
    return cover + _hypergeometric(fill, caps, rng)


def sample_degrees(units: np.ndarray, edges: np.ndarray, samples: int, rng: np.random.Generator,
                   widths: Sequence[int] | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Null-model degrees for rows `units (B, K+1)`, `edges (B, K)`: per layer pair k, out-degrees
    `(B, samples, w_k)` and in-degrees `(B, samples, w_{k+1})` (live units first, zeros after)."""
    units, edges = np.asarray(units, np.int64), np.asarray(edges, np.int64)
    _check_layout(units, edges)
    rows = units.shape[0]
    widths = list(widths) if widths is not None else [int(units[:, k].max(initial=0)) for k in range(units.shape[1])]
    rep_units = np.repeat(units, samples, axis=0)
    rep_edges = np.repeat(edges, samples, axis=0)
    outs, ins = [], []
    for k in range(edges.shape[1]):
        a, b, e = rep_units[:, k], rep_units[:, k + 1], rep_edges[:, k]
        outs.append(side_degrees(a, b, e, widths[k], rng).reshape(rows, samples, widths[k]))
        ins.append(side_degrees(b, a, e, widths[k + 1], rng).reshape(rows, samples, widths[k + 1]))
    return outs, ins


def null_counts(units: np.ndarray, edges: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """`(B, samples, 6)` motif counts of random networks of the null model, per row of units/edges."""
    outs, ins = sample_degrees(units, edges, samples, rng)
    return counts_from_degrees(outs, ins)


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
                 seed: Sequence[int] | int) -> LevelMotifs:
    """Counts on the stored and on the ghost-free masks, and z-scores of the latter against `samples`
    random networks each (0: counts only). `seed` seeds one generator per batch of networks, so the
    result does not depend on anything but the masks, `samples` and the seed."""
    counts = motif_counts(weight_masks)
    live = motif_counts(live_masks)
    n_nets = counts.shape[0]
    nan = np.full(live.shape, np.nan)
    if samples < 1 or n_nets == 0:
        return LevelMotifs(counts, live, nan, nan.copy(), nan.copy())
    units, edges = live_layout(live_masks)
    mean, sd, z = nan.copy(), nan.copy(), nan.copy()
    base = list(np.atleast_1d(seed).astype(np.int64))
    for start in range(0, n_nets, NETS_PER_BATCH):
        stop = min(n_nets, start + NETS_PER_BATCH)
        rng = np.random.default_rng([*base, STREAM, start])
        null = null_counts(units[start:stop], edges[start:stop], samples, rng)
        mean[start:stop], sd[start:stop], z[start:stop] = z_scores(live[start:stop], null)
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


def motif_summary(levels: Sequence[LevelMotifs], samples: int) -> dict:
    """What the stored summary says of the motifs: medians over the networks per level, `(L, 6)`."""
    z = np.stack([m.z for m in levels])
    return {
        "motif_names": list(MOTIFS),
        "motif_samples": int(samples),
        "motif_counts_median": np.median(np.stack([m.counts for m in levels]), axis=1),
        "motif_live_median": np.median(np.stack([m.live_counts for m in levels]), axis=1),
        "motif_z_median": _nanmedian(z, axis=1),
    }


def load_motifs(run) -> dict | None:
    """The stored motifs of a run as JSON-ready lists (`analyze --json`'s `motifs`), or None when
    the stored analysis has none (absent, half-written, or from before motifs were counted).

    `counts`, `live_counts`, `null_mean`, `null_sd`, `z` are indexed [level][network][motif] in
    `names` order; null where a value is undefined (z of `edges`, or no random networks).
    """
    from core.analysis.store import load_analysis

    found = load_analysis(run)
    if found is None or "motifs/z" not in found["group"]:
        return None
    group, params = found["group"], found["params"]
    out = {"names": list(MOTIFS), "samples": params.get("motif_samples"), "seed": params.get("seed"),
           "levels": found["levels"]}
    for name in ARRAYS:
        a = np.asarray(group[f"motifs/{name}"][...])
        if a.dtype.kind == "f":
            out[name] = [[[None if not np.isfinite(v) else float(v) for v in net] for net in lvl] for lvl in a]
        else:
            out[name] = a.tolist()
    return out
