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


def _prune_group(values: Sequence[jax.Array], masks: Sequence[jax.Array], k: jax.Array,
                 protect: Sequence[int] | None = None) -> list[jax.Array]:
    """New masks for a group of arrays pruned together (one cutoff per network over the group).

    `protect[i]` > 0 raises the keys of array i's largest entries per output column (it must be a
    weight); with any protection every key is halved first, so raised ones stay below `_KEY_MAX`.
    """
    protect = protect or [0] * len(values)
    keys = [_keys(v, m) for v, m in zip(values, masks)]
    if any(protect):
        keys = [_protect_columns(kk, v.shape, p) if p else _halve(kk) for kk, v, p in zip(keys, values, protect)]
    keys = jnp.concatenate(keys, axis=1)
    prune = _prune_keys(keys, k)
    out, start = [], 0
    for v, m in zip(values, masks):
        size = int(np.prod(v.shape[1:]))
        out.append(m & ~prune[:, start:start + size].reshape(v.shape))
        start += size
    return out


@partial(jax.jit, static_argnames=("mode", "keep_per_output"))
def _prune(params: Params, masks: Params, weight_k: jax.Array, bias_k: jax.Array, mode: str,
           keep_per_output: int = 0):
    weights = [p.weight for p in params]
    biases = [p.bias for p in params]
    wm = [m.weight for m in masks]
    bm = [m.bias for m in masks]
    protect = [0] * (len(weights) - 1) + [keep_per_output]
    if mode == "global":
        new_wm = _prune_group(weights, wm, weight_k[0], protect)
        new_bm = _prune_group(biases, bm, bias_k[0])
    else:
        new_wm = [_prune_group([w], [m], weight_k[i], [protect[i]])[0]
                  for i, (w, m) in enumerate(zip(weights, wm))]
        new_bm = [_prune_group([b], [m], bias_k[i])[0] for i, (b, m) in enumerate(zip(biases, bm))]
    new_masks = [Layer(a, b) for a, b in zip(new_wm, new_bm)]
    new_params = [Layer(jnp.where(m.weight, p.weight, 0.0), jnp.where(m.bias, p.bias, 0.0))
                  for p, m in zip(params, new_masks)]
    return new_params, new_masks


def prune(params: Params, masks: Params, weight_fraction: float, bias_fraction: float = 0.0,
          mode: str = "layer", count: str = "round", keep_per_output: int = 0) -> tuple[Params, Params]:
    """Prune every network to the target fractions; returns (params with zeros, masks).

    mode "layer": each layer of each network loses `prune_count(fraction, layer size, count)` weights.
    mode "global": each network loses that many of all its weights, with one cutoff.
    Biases follow the same mode with their own fraction (0: biases untouched).
    keep_per_output: each output's that many largest weights are pruned last (module docstring).
    """
    w_sizes = [int(np.prod(p.weight.shape[1:])) for p in params]
    b_sizes = [int(np.prod(p.bias.shape[1:])) for p in params]
    if mode == "global":
        weight_k = [prune_count(weight_fraction, sum(w_sizes), count)]
        bias_k = [prune_count(bias_fraction, sum(b_sizes), count)]
    else:
        weight_k = [prune_count(weight_fraction, s, count) for s in w_sizes]
        bias_k = [prune_count(bias_fraction, s, count) for s in b_sizes]
    return _prune(params, masks, jnp.asarray(weight_k, jnp.int32), jnp.asarray(bias_k, jnp.int32), mode,
                  keep_per_output)
