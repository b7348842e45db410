"""The compiled training chunk: K Adam steps of every network in one call (lax.scan, donated state).

Per step and per network: MSE on the batch, gradients masked (pruned weights get none, so their
Adam moments stay zero), Adam (optax), updates masked again and gated by the network's `active`
flag. A pruned weight therefore stays exactly 0.0 and a stopped or diverged network's
parameters stay exactly as they were. Everything per network is decided inside the scan:

- early stopping (the seed's 1 % rule, on each network alone): every `every` steps, once
  `2 * window` steps ran, stop if mean(loss of the window before) / mean(last window) < ratio
  and (with `stop_below`) the last window's mean is at most `stop_below`: a network on a slow
  plateau far above the selection threshold keeps its whole budget;
- divergence: a non-finite batch loss flags the network `diverged` and freezes it before the
  update of that step is applied, while the others go on;
- the step cap: step numbers at or beyond `max_steps` do nothing.

So the result after S steps is the same whatever K is, and the host only looks at the
per-network losses and flags once per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from core.engine.model import Params, per_network_mse


class TrainState(NamedTuple):
    """What a level's training carries from step to step (all leading axes N, except opt's count)."""

    params: Params
    opt_state: optax.OptState
    active: jax.Array        # (N,) bool: still training
    stopped: jax.Array       # (N,) bool: stopped early by the 1 % rule this level
    diverged: jax.Array      # (N,) bool: loss went non-finite (frozen for good)
    steps: jax.Array         # (N,) int32: steps this network trained this level
    history: jax.Array       # (N, 2 * window) float32: ring buffer of recent batch losses


@dataclass(frozen=True)
class StepConfig:
    """The static settings of the compiled step (hashable: part of the compilation key)."""

    learning_rate: float
    window: int
    every: int
    ratio: float
    precision: str = "float32"
    stop_below: float = 0.0
    """Early stopping applies only once the last window's mean loss is at most this (0: always)."""
    carried: bool = False
    """Adam's state outlives the level: steps past the cap must leave it exactly as it was."""
    signal: str = "train"
    """What early stopping watches: "train" (each network's batch losses, stopping it alone) or
    "seed" (the seed's: the ensemble's mean loss on consecutive validation batches, stopping all)."""

    @classmethod
    def from_config(cls, cfg) -> "StepConfig":
        return cls(cfg.learning_rate, cfg.early_stop_window, cfg.early_stop_every,
                   cfg.early_stop_ratio, cfg.precision, cfg.early_stop_below,
                   cfg.optimizer_state == "carried", cfg.early_stop_signal)

    @property
    def optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.learning_rate)


class Moments(NamedTuple):
    """Adam's state outside the compiled step: the step count and the moments (Params-shaped)."""

    count: jax.Array  # () int32: steps taken so far (shared by the ensemble)
    mu: Params
    nu: Params


def moments_of(opt_state: optax.OptState) -> Moments:
    """The Adam state of `optax.adam` (a chain of scale_by_adam and the learning rate) as Moments."""
    adam = opt_state[0]
    return Moments(adam.count, adam.mu, adam.nu)


def init_state(params: Params, diverged: jax.Array, sc: StepConfig, moments: Moments | None = None) -> TrainState:
    """A level's starting state: every non-diverged network active; fresh Adam moments, or `moments`
    carried over from the previous level (config `optimizer_state = "carried"`, as the seed did).

    The parameters are copied: the chunk functions donate the state, and the caller's arrays
    must survive that.
    """
    n = params[0].weight.shape[0]
    params = jax.tree.map(jnp.copy, params)
    diverged = jnp.asarray(diverged, bool)
    opt_state = sc.optimizer.init(params)
    if moments is not None:
        adam = opt_state[0]._replace(count=jnp.asarray(moments.count, jnp.int32),
                                     mu=jax.tree.map(jnp.asarray, moments.mu),
                                     nu=jax.tree.map(jnp.asarray, moments.nu))
        opt_state = (adam, *opt_state[1:])
    return TrainState(
        params=params,
        opt_state=opt_state,
        active=~diverged,
        stopped=jnp.zeros((n,), bool),
        diverged=diverged,
        steps=jnp.zeros((n,), jnp.int32),
        history=jnp.zeros((n, 2 * sc.window), jnp.float32),
    )


def _gate(tree, masks, ok):
    """Zero every entry of `tree` that is pruned or belongs to a network that must not move.

    `jnp.where`, not a product: a NaN gradient of a diverged network must not leak through.
    """
    def one(value, mask):
        keep = mask & ok.reshape((-1,) + (1,) * (value.ndim - 1))
        return jnp.where(keep, value, jnp.zeros_like(value))
    return jax.tree.map(one, tree, masks)


def _seed_signal(sc: StepConfig, params: Params, val, step: jax.Array, batch: int) -> jax.Array:
    """The seed's early-stopping signal: the ensemble's mean loss on validation batch `step` (rows
    step·B to (step+1)·B of the split, restarting each level); NaN once the split is used up, as the
    seed's empty slices were, so it never stops after that (model.md section 5)."""
    x_val, y_val = val
    n = x_val.shape[0]
    start = jnp.minimum(step * batch, max(n - batch, 0))
    xb = jax.lax.dynamic_slice_in_dim(x_val, start, batch)
    yb = jax.lax.dynamic_slice_in_dim(y_val, start, batch)
    mean = jnp.mean(per_network_mse(params, xb, yb, sc.precision))
    return jnp.where((step + 1) * batch <= n, mean, jnp.nan)


def _step(sc: StepConfig, state: TrainState, masks: Params, x: jax.Array, y: jax.Array,
          step: jax.Array, max_steps: jax.Array, val=None) -> tuple[TrainState, jax.Array]:
    """One Adam step of every network on batch (x (B, 10), y (B, 7)) at level step number `step`.

    `val`: the device-resident validation split `(x, y)`, needed by the seed's stopping signal only.
    """
    def total(params):
        losses = per_network_mse(params, x, y, sc.precision)
        return jnp.sum(losses), losses

    (_, loss), grads = jax.value_and_grad(total, has_aux=True)(state.params)
    running = state.active & (step < max_steps)
    finite = jnp.isfinite(loss)
    ok = running & finite
    grads = _gate(grads, masks, ok)
    updates, opt_state = sc.optimizer.update(grads, state.opt_state, state.params)
    updates = _gate(updates, masks, ok)
    if sc.carried:  # a step past the cap (padding of the last chunk) is no step for the carried state
        opt_state = jax.tree.map(lambda new, old: jnp.where(step < max_steps, new, old), opt_state, state.opt_state)
    params = optax.apply_updates(state.params, updates)

    span = 2 * sc.window
    if sc.signal == "seed":  # one ensemble value for every network; the first check after 2 windows + 1
        signal = jnp.broadcast_to(_seed_signal(sc, params, val, step, x.shape[0]), loss.shape)
        history = state.history.at[:, step % span].set(signal)
        check = ((step + 1) % sc.every == 0) & (step + 1 > span)
    else:
        history = state.history.at[:, step % span].set(jnp.where(ok, loss, 0.0))
        check = ((step + 1) % sc.every == 0) & (step + 1 >= span)
    newer = jnp.mean(history[:, (step - jnp.arange(sc.window)) % span], axis=1)
    older = jnp.mean(history[:, (step - sc.window - jnp.arange(sc.window)) % span], axis=1)
    low_enough = (newer <= sc.stop_below) if sc.stop_below > 0 else True
    stop = ok & check & (older < sc.ratio * newer) & low_enough
    diverged = state.diverged | (running & ~finite)
    new_state = TrainState(
        params=params, opt_state=opt_state,
        active=state.active & ~stop & ~diverged,
        stopped=state.stopped | stop,
        diverged=diverged,
        steps=state.steps + ok.astype(jnp.int32),
        history=history,
    )
    return new_state, jnp.where(ok, loss, jnp.nan)


@partial(jax.jit, static_argnums=(0,), donate_argnums=(1,))
def chunk_on_device(sc: StepConfig, state: TrainState, masks: Params, x_train: jax.Array,
                    y_train: jax.Array, rows: jax.Array, step0: jax.Array, max_steps: jax.Array, val=None):
    """K steps; batch i is rows[i] `(K, B)` gathered from the device-resident training split.

    Returns the new state and the per-step, per-network batch losses `(K, N)` (NaN where a
    network did not train).
    """
    def body(carry, i):
        return _step(sc, carry, masks, x_train[rows[i]], y_train[rows[i]], step0 + i, max_steps, val)
    return jax.lax.scan(body, state, jnp.arange(rows.shape[0]))


@partial(jax.jit, static_argnums=(0,), donate_argnums=(1,))
def chunk_from_host(sc: StepConfig, state: TrainState, masks: Params, x_batches: jax.Array,
                    y_batches: jax.Array, step0: jax.Array, max_steps: jax.Array, val=None):
    """K steps on batches gathered on the host: x `(K, B, 10)`, y `(K, B, 7)` (data too big for the device)."""
    def body(carry, i):
        return _step(sc, carry, masks, x_batches[i], y_batches[i], step0 + i, max_steps, val)
    return jax.lax.scan(body, state, jnp.arange(x_batches.shape[0]))


@partial(jax.jit, static_argnums=(0,))
def seed_style_step(sc: StepConfig, state: TrainState, masks: Params, x: jax.Array, y: jax.Array,
                    step: jax.Array, max_steps: jax.Array):
    """The same step, compiled alone and not donated: the seed's loop structure (for the benchmark)."""
    return _step(sc, state, masks, x, y, step, max_steps)
