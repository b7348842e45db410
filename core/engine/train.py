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

Networks in groups (`StepConfig.group`, `group_size`): networks are independent, so a chunk may
run them group by group, each group doing all K steps before the next starts. On a CPU that
keeps a group's weights, gradients, Adam moments and activations in cache for K steps instead
of streaming the whole ensemble's ~7 MB per full-size network from memory at every step (400
networks: ~2.8 GB per step). The maths per network is the same, so the results are the same
(tested bitwise against the all-at-once chunk). Adam's step count is one scalar shared by the
ensemble and advances the same way in every group; the seed's stopping signal (the ensemble's
mean at every step) needs every network at every step, so it always runs all at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from core.engine.model import Params, per_network_mse
from core.errors import ConfigError


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
    group: int = 0
    """Networks per group of a chunk (each group runs all K steps, then the next): 0 chooses it
    from the device (`auto_group`); the network count or more runs all networks at once.
    It changes the speed only, never the results (see the module docstring)."""

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

    # () int32: steps taken so far (shared by the ensemble); on the device or a host copy. The field
    # hides tuple.count, as NamedTuple fields may (the ignore: mypy forbids it)
    count: jax.Array | np.ndarray | np.integer  # type: ignore[assignment]
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


# ---- networks in groups ----------------------------------------------------------------------

#: Fewest networks in a group: XLA compiles a batch of one network to a plain GEMM whose
#: rounding differs from the batched kernel's (as `sharding.MIN_NETS_PER_DEVICE`).
MIN_GROUP = 2


def step_bytes(sizes, batch: int) -> int:
    """Bytes one network touches in a training step: its parameters, gradients and Adam's two
    moments (4 B each per parameter), its masks (1 B per parameter) and the activations the
    backward pass keeps (two per unit and row: before and after tanh, 4 B each)."""
    params = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    return 17 * params + 8 * batch * sum(sizes[1:])


#: Environment variable that replaces the per-core L2 size read from /sys (bytes, or with a K/M
#: suffix): so a test, a benchmark or a user can size the CPU groups and evaluation blocks as
#: another machine would (the AMD EPYC that runs this project has 512K, the Intel 2M).
L2_OVERRIDE_ENV = "MOTHTUI_CPU_L2"


def _parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    scale = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * scale)


def cpu_cache_bytes() -> tuple[int, int]:
    """(per-core L2, shared L3) in bytes of this CPU, from /sys (0 where the kernel does not say);
    `$MOTHTUI_CPU_L2` replaces the L2 size."""
    sizes = {}
    override = os.environ.get(L2_OVERRIDE_ENV)
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = os.listdir(base)
    except OSError:
        entries = []
    for entry in entries:
        try:
            with open(f"{base}/{entry}/level") as f:
                level = int(f.read())
            with open(f"{base}/{entry}/type") as f:
                kind = f.read().strip()
            with open(f"{base}/{entry}/size") as f:
                text = f.read().strip()
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        sizes[level] = _parse_size(text)
    if override:
        try:
            sizes[2] = _parse_size(override)
        except ValueError:
            raise ConfigError(f"${L2_OVERRIDE_ENV}={override!r} is not a size (e.g. 512K, 2M)") from None
    return sizes.get(2, 0), sizes.get(3, 0)


def auto_group(sizes, batch: int, device=None) -> int:
    """Networks per group of a training chunk on `device` (default: this process's first device);
    0: all at once.

    Why: on a CPU a step of full-size networks touches ~7.5 MB per network (`step_bytes`), so
    400 networks stream ~3 GB through memory at every step, and matmuls, bias gradients, tanh and
    Adam then wait for memory: Adam alone took 3.3 ms per network at 400 networks and 0.9 ms at 2.
    A group whose step state fits the caches keeps it there for the chunk's K steps. The budget
    is CPU_GROUP_L2S times the L2 caches of all cores (read from /sys; 16 MiB if unknown): on the
    2-core development CPU (2 MiB L2 per core) 48 full-size networks ran 1.58x faster in groups of
    2 (15 MB) than all at once, groups of 4 were 4 % slower than 2 and groups of 8 20 %; small
    networks (10-128-128-16-7, batch 256: 0.9 MB each) ran fastest 8 at once, since every group
    costs a few microseconds per kernel and step. On an accelerator: all at once, because the
    matmuls need the whole ensemble to fill the device and its memory streams the state fast.
    """
    device = device if device is not None else jax.local_devices()[0]
    if device.platform != "cpu":
        return 0
    l2, _ = cpu_cache_bytes()
    budget = CPU_GROUP_L2S * l2 * (os.cpu_count() or 1) if l2 else 16 * 2 ** 20
    return max(MIN_GROUP, budget // step_bytes(sizes, batch))


#: A CPU group's step state (`step_bytes` x networks) may fill this many times all cores' L2.
CPU_GROUP_L2S = 4


def group_size(sc: StepConfig, nets: int, sizes, batch: int) -> int:
    """Networks per group the chunk of `nets` networks runs with: a divisor of `nets` of at least
    MIN_GROUP and at most the requested group (`sc.group`, or `auto_group` when 0), or `nets`
    (all at once) when there is none, under the seed's stopping signal (it needs the whole
    ensemble at every step) and when this process has several devices (the networks are then
    sharded over them, and a group would cut across the shards)."""
    if sc.signal == "seed":
        return nets
    want = sc.group
    if want == 0:
        if len(jax.local_devices()) > 1:
            return nets
        want = auto_group(sizes, batch) or nets
    fits = [g for g in range(MIN_GROUP, min(want, nets) + 1) if nets % g == 0]
    return max(fits) if fits else nets


def _sizes(params: Params) -> tuple[int, ...]:
    return (params[0].weight.shape[1], *(layer.weight.shape[2] for layer in params))


def _in_groups(sc: StepConfig, run, state: TrainState, masks: Params, batch: int):
    """`run(state, masks) -> (state, losses (K, N))` over groups of networks, one after the other.

    The network axis of every array is split into (groups, group) and `lax.map` runs `run` on
    each group; Adam's step count (the state's only scalar) is the same in every group, so the
    first group's is kept.
    """
    nets = state.active.shape[0]
    g = group_size(sc, nets, _sizes(state.params), batch)
    if g >= nets:
        return run(state, masks)
    leaves, tree = jax.tree.flatten(state)
    shared = [np.ndim(a) == 0 for a in leaves]
    split = lambda a: a.reshape(nets // g, g, *a.shape[1:])  # noqa: E731
    grouped = [split(a) for a, s in zip(leaves, shared) if not s]

    def one(args):
        mine, group_masks = args
        it = iter(mine)
        group_state = jax.tree.unflatten(tree, [a if s else next(it) for a, s in zip(leaves, shared)])
        new, losses = run(group_state, group_masks)
        return jax.tree.leaves(new), losses

    new_leaves, losses = jax.lax.map(one, (grouped, jax.tree.map(split, masks)))
    merged = [a[0] if s else a.reshape(nets, *a.shape[2:]) for a, s in zip(new_leaves, shared)]
    losses = jnp.moveaxis(losses, 0, 1)  # (groups, K, g) -> (K, groups, g)
    return jax.tree.unflatten(tree, merged), losses.reshape(losses.shape[0], nets)


@partial(jax.jit, static_argnums=(0,), donate_argnums=(1,))
def chunk_on_device(sc: StepConfig, state: TrainState, masks: Params, x_train: jax.Array,
                    y_train: jax.Array, rows: jax.Array, step0: jax.Array, max_steps: jax.Array, val=None):
    """K steps; batch i is rows[i] `(K, B)` gathered from the device-resident training split.

    Returns the new state and the per-step, per-network batch losses `(K, N)` (NaN where a
    network did not train). Networks run in groups of `group_size` (the same results).
    """
    def run(state, masks):
        def body(carry, i):
            return _step(sc, carry, masks, x_train[rows[i]], y_train[rows[i]], step0 + i, max_steps, val)
        return jax.lax.scan(body, state, jnp.arange(rows.shape[0]))
    return _in_groups(sc, run, state, masks, rows.shape[1])


@partial(jax.jit, static_argnums=(0,), donate_argnums=(1,))
def chunk_from_host(sc: StepConfig, state: TrainState, masks: Params, x_batches: jax.Array,
                    y_batches: jax.Array, step0: jax.Array, max_steps: jax.Array, val=None):
    """K steps on batches gathered on the host: x `(K, B, 10)`, y `(K, B, 7)` (data too big for the device)."""
    def run(state, masks):
        def body(carry, i):
            return _step(sc, carry, masks, x_batches[i], y_batches[i], step0 + i, max_steps, val)
        return jax.lax.scan(body, state, jnp.arange(x_batches.shape[0]))
    return _in_groups(sc, run, state, masks, x_batches.shape[1])


@partial(jax.jit, static_argnums=(0,))
def seed_style_step(sc: StepConfig, state: TrainState, masks: Params, x: jax.Array, y: jax.Array,
                    step: jax.Array, max_steps: jax.Array):
    """The same step, compiled alone and not donated: the seed's loop structure (for the benchmark)."""
    return _step(sc, state, masks, x, y, step, max_steps)
