"""Per-network magnitude pruning: layer-wise (the seed) or global, biases optionally, exact counts.

For each network on its own (never across the stacked tensor), find the k-th smallest |w| by a
32-step bisection on the float32 bit pattern (non-negative floats order like their bits): no
sort, and k is traced, so one compiled function serves every level. Exactly k entries are
pruned: ties at the cutoff are broken by position. Already-pruned entries rank below every
kept one, so a pruned weight never comes back.

An output whose last weights are pruned is dead, and retraining cannot revive it (the sparsity
cliff of docs/science.md). With `keep_per_output` = m, each output's m largest kept weights rank
above every other entry, so they go last: the layer still loses exactly its count, and the floor
holds while the count leaves room for it (m x outputs kept weights).

Per layer (config `prune_first_layer`, `prune_output_layer`, `max_layer_sparsity`): a layer left out
of the schedule keeps its mask (its count is 0: nothing new goes, nothing comes back), and in
"global" mode it is not part of the cutoff's group either, so the target is a fraction of the pruned
layers' weights. A capped layer loses at most floor(cap x size) weights: in "layer" mode its count
is min(target, cap); in "global" mode the weights beyond its cap's smallest are keyed above every
other entry and the count is clamped to what the caps leave, so the other layers give the rest.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from core.engine.model import Layer, Params

#: Bisection steps: enough to pin any uint32 key exactly.
_BISECTION_STEPS = 32
#: Upper bound of the keys: |w| bits (at most 0x7fffffff) + 1.
_KEY_MAX = np.uint32(0x80000000)


def prune_count(fraction: float, size: int, rule: str = "round") -> int:
    """How many of `size` entries a target `fraction` prunes under `rule` (none for fraction 0).

    "round" (mothtui): the nearest count, round half up, so a layer is pruned to its target.
    "seed" (the seed's code, config key `prune_count`): it keeps |w| above the int(c·n)-th
    smallest, so floor(c·n) + 1 entries go: one more in every layer at every level.
    """
    if fraction <= 0:
        return 0
    if rule == "seed":
        return min(size, int(np.floor(fraction * size)) + 1)
    return int(np.floor(fraction * size + 0.5))


def cap_count(cap: float, size: int) -> int:
    """The most of `size` entries a layer capped at `cap` may have pruned: floor(cap·size)
    (an output layer of 112 weights capped at 0.8 keeps at least 23)."""
    return min(size, int(np.floor(cap * size + 1e-9)))


def _keys(values: jax.Array, mask: jax.Array) -> jax.Array:
    """uint32 ranking keys `(N, size)`: pruned entries 0, kept ones 1 + the bits of |value|."""
    n = values.shape[0]
    bits = jax.lax.bitcast_convert_type(jnp.abs(values.reshape(n, -1)), jnp.uint32)
    return jnp.where(mask.reshape(n, -1), bits + jnp.uint32(1), jnp.uint32(0))


def _protect_columns(keys: jax.Array, shape: tuple[int, ...], keep: int) -> jax.Array:
    """Keys of an `(N, in, out)` weight whose `keep` largest kept entries per output column are raised
    above every unprotected key (still ordered among themselves, so a tight count prunes the smallest)."""
    n, fan_in, fan_out = shape
    cols = keys.reshape(n, fan_in, fan_out)
    # rank within the column: how many entries outrank this one (larger key, or equal and earlier)
    earlier = jnp.tril(jnp.ones((fan_in, fan_in), bool), -1)  # earlier[i, j]: row j comes before row i
    above = (cols[:, None, :, :] > cols[:, :, None, :]) | (
        (cols[:, None, :, :] == cols[:, :, None, :]) & earlier[None, :, :, None])
    rank = jnp.sum(above, axis=2)
    protected = (rank < keep) & (cols > 0)
    half = _halve(cols)
    return jnp.where(protected, half + jnp.uint32(0x40000000), half).reshape(n, -1)


def _halve(keys: jax.Array) -> jax.Array:
    """Keys in half the range, kept entries still above the pruned ones' 0 (room for raised keys)."""
    return jnp.where(keys > 0, jnp.maximum(keys >> 1, jnp.uint32(1)), jnp.uint32(0))


def _prune_keys(keys: jax.Array, k: jax.Array) -> jax.Array:
    """Boolean `(N, size)`: exactly k entries per row with the smallest keys (ties by position)."""
    n = keys.shape[0]

    def body(_, bounds):
        lo, hi = bounds
        mid = lo + (hi - lo) // 2
        enough = jnp.sum(keys <= mid[:, None], axis=1) >= k
        return jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi)

    lo = jnp.zeros((n,), jnp.uint32)
    hi = jnp.full((n,), _KEY_MAX, jnp.uint32)
    _, cutoff = jax.lax.fori_loop(0, _BISECTION_STEPS, body, (lo, hi))
    below = keys < cutoff[:, None]
    at = keys == cutoff[:, None]
    room = k - jnp.sum(below, axis=1)
    return below | (at & (jnp.cumsum(at, axis=1) <= room[:, None]))


def _cap_keys(keys: jax.Array, cap: jax.Array) -> jax.Array:
    """Keys of one array whose entries beyond its `cap` smallest (already pruned ones first) are set
    to `_KEY_MAX`, above every other key: a cutoff over a group then never takes them."""
    allowed = _prune_keys(keys, cap)
    return jnp.where(allowed | (keys == 0), keys, _KEY_MAX)


def _prune_group(values: Sequence[jax.Array], masks: Sequence[jax.Array], k: jax.Array,
                 protect: Sequence[int] | None = None,
                 caps: Sequence[jax.Array | None] | None = None) -> list[jax.Array]:
    """New masks for a group of arrays pruned together (one cutoff per network over the group).

    `protect[i]` > 0 raises the keys of array i's largest entries per output column (it must be a
    weight); with any protection every key is halved first, so raised ones stay below `_KEY_MAX`.
    `caps[i]` (not None): array i has at most that many entries pruned; the count is clamped to what
    the caps leave (a cutoff at `_KEY_MAX` would take capped entries).
    """
    protect = protect or [0] * len(values)
    keys = [_keys(v, m) for v, m in zip(values, masks)]
    if any(protect):
        keys = [_protect_columns(kk, v.shape, p) if p else _halve(kk) for kk, v, p in zip(keys, values, protect)]
    if caps is not None and any(c is not None for c in caps):
        keys = [kk if c is None else _cap_keys(kk, c) for kk, c in zip(keys, caps)]
        joined = jnp.concatenate(keys, axis=1)
        k = jnp.minimum(k, jnp.sum(joined < _KEY_MAX, axis=1))
    else:
        joined = jnp.concatenate(keys, axis=1)
    prune = _prune_keys(joined, k)
    out, start = [], 0
    for v, m in zip(values, masks):
        size = int(np.prod(v.shape[1:]))
        out.append(m & ~prune[:, start:start + size].reshape(v.shape))
        start += size
    return out


@partial(jax.jit, static_argnames=("mode", "keep_per_output", "layers", "capped"))
def _prune(params: Params, masks: Params, weight_k: jax.Array, bias_k: jax.Array, mode: str,
           keep_per_output: int = 0, layers: tuple[bool, ...] | None = None,
           capped: tuple[bool, ...] | None = None, cap_k: jax.Array | None = None):
    weights = [p.weight for p in params]
    biases = [p.bias for p in params]
    wm = [m.weight for m in masks]
    bm = [m.bias for m in masks]
    protect = [0] * (len(weights) - 1) + [keep_per_output]
    if mode == "global":
        group = [i for i in range(len(weights)) if layers is None or layers[i]]
        caps: list[jax.Array | None] | None = None
        if capped is not None:
            assert cap_k is not None  # given with `capped`
            caps = [cap_k[i] if capped[i] else None for i in group]
        pruned_w = _prune_group([weights[i] for i in group], [wm[i] for i in group], weight_k[0],
                                [protect[i] for i in group], caps) if group else []
        pruned_b = _prune_group([biases[i] for i in group], [bm[i] for i in group], bias_k[0]) if group else []
        new_wm, new_bm = list(wm), list(bm)  # a layer outside the group keeps its masks
        for i, w, b in zip(group, pruned_w, pruned_b):
            new_wm[i], new_bm[i] = w, b
    else:
        new_wm = [_prune_group([w], [m], weight_k[i], [protect[i]])[0]
                  for i, (w, m) in enumerate(zip(weights, wm))]
        new_bm = [_prune_group([b], [m], bias_k[i])[0] for i, (b, m) in enumerate(zip(biases, bm))]
    new_masks = [Layer(a, b) for a, b in zip(new_wm, new_bm)]
    new_params = [Layer(jnp.where(w, p.weight, 0.0), jnp.where(b, p.bias, 0.0))
                  for p, w, b in zip(params, new_wm, new_bm)]
    return new_params, new_masks


def prune(params: Params, masks: Params, weight_fraction: float, bias_fraction: float = 0.0,
          mode: str = "layer", count: str = "round", keep_per_output: int = 0,
          layers: Sequence[bool] | None = None, caps: Sequence[float] | None = None) -> tuple[Params, Params]:
    """Prune every network to the target fractions; returns (params with zeros, masks).

    mode "layer": each layer of each network loses `prune_count(fraction, layer size, count)` weights.
    mode "global": each network loses that many of all its weights, with one cutoff.
    Biases follow the same mode with their own fraction (0: biases untouched).
    keep_per_output: each output's that many largest weights are pruned last (module docstring).
    layers: per layer, whether it is pruned at all (None: every layer); one left out keeps its masks
    and, in "global" mode, is outside the group the fraction counts.
    caps: per layer, the largest fraction of its weights that may be pruned (None or 1: no cap).
    """
    n = len(params)
    layers = tuple(bool(x) for x in layers) if layers is not None else (True,) * n
    caps = tuple(float(c) for c in caps) if caps else (1.0,) * n
    if len(layers) != n or len(caps) != n:
        raise ValueError(f"layers and caps need one entry per layer ({n})")
    w_sizes = [int(np.prod(p.weight.shape[1:])) for p in params]
    b_sizes = [int(np.prod(p.bias.shape[1:])) for p in params]
    cap_k = [cap_count(c, s) for c, s in zip(caps, w_sizes)]
    capped = tuple(k < s for k, s in zip(cap_k, w_sizes))
    if mode == "global":
        weight_k = [prune_count(weight_fraction, sum(s for s, x in zip(w_sizes, layers) if x), count)]
        bias_k = [prune_count(bias_fraction, sum(s for s, x in zip(b_sizes, layers) if x), count)]
    else:
        weight_k = [min(prune_count(weight_fraction, s, count), k) if x else 0
                    for s, k, x in zip(w_sizes, cap_k, layers)]
        bias_k = [prune_count(bias_fraction, s, count) if x else 0 for s, x in zip(b_sizes, layers)]
    every = all(layers) and not any(capped)  # the plain case compiles as before
    return _prune(params, masks, jnp.asarray(weight_k, jnp.int32), jnp.asarray(bias_k, jnp.int32), mode,
                  keep_per_output, None if every else layers, None if every else capped,
                  None if every else jnp.asarray(cap_k, jnp.int32))
