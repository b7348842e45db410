"""Per-network loss on whole splits: every network, every level, every row of train, val and test.

Rows are streamed through the device in fixed blocks (one compiled shape; the last block is
padded with zero-weight rows), so a split never has to sit on the device. Sums are taken in
float32 per block and added up in float64 on the host.

Block and group sizes come from the device (`block_rows`, `eval_group`): on a GPU, blocks as
large as a share of its memory allows and every network at once; on a CPU, blocks and groups of
networks small enough that a group's activations `(group, rows, widest)` stay in the caches,
since a matmul whose output streams through memory runs at a fraction of the arithmetic rate
(measured on the 2-core development CPU: 8 full-size networks on 1,024-row blocks 135 GFLOP/s,
on 8,192-row blocks 95). The group never changes a network's result (sums over rows are
matmuls, see `core.engine.model.sum_rows`); the block size does change the float32 rounding of
the block sums, and it depends on the device and the run's whole ensemble only, never on how
the networks are spread over devices.
"""

from __future__ import annotations

from collections import deque
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from core.engine.model import Params, forward, sum_per_network
from core.engine.train import MIN_GROUP, cpu_cache_bytes


def _sse(params: Params, x: jax.Array, y: jax.Array, weight: jax.Array, precision: str) -> jax.Array:
    err = forward(params, x, precision) - y[None]
    return sum_per_network(jnp.square(err) * weight[None, :, None])


@partial(jax.jit, static_argnames=("precision", "group"))
def _block_sse(params: Params, x: jax.Array, y: jax.Array, weight: jax.Array, precision: str,
               group: int = 0) -> jax.Array:
    """Sum over rows of the squared error summed over outputs, `(N,)`, rows weighted 0 or 1.

    The networks run `group` at a time (`lax.map`; 0 or N or more: all at once).
    """
    n = params[0].weight.shape[0]
    g = _divisor(n, group)
    if g >= n:
        return _sse(params, x, y, weight, precision)
    grouped = jax.tree.map(lambda a: a.reshape(n // g, g, *a.shape[1:]), params)
    return jax.lax.map(lambda p: _sse(p, x, y, weight, precision), grouped).reshape(n)


def _divisor(n: int, want: int) -> int:
    """The largest divisor of n in [MIN_GROUP, want], or n (all at once) when there is none."""
    if want <= 0 or want >= n:
        return n
    fits = [g for g in range(MIN_GROUP, want + 1) if n % g == 0]
    return max(fits) if fits else n


#: Bytes one hidden activation of an evaluation block may take (about three are alive at once).
#: Keeps `eval_batch` safe for any ensemble size: 400 networks 400 wide get 9,984 rows (6 GiB).
EVAL_ACTIVATION_BYTES = 6 * 2 ** 30
#: On an accelerator one activation may take this share of its memory (`bytes_limit`) at most:
#: three alive take 3/8, leaving the rest to the training state and split (80 GB GPU: the paper
#: preset's 8,192 rows of 400 networks still fit; a 24 GB one gets ~3,500 rows).
EVAL_MEMORY_SHARE = 1 / 8
#: On a CPU one group's hidden activation `(group, rows, widest)` fills the L2 caches of all
#: cores at most (measured on the 2-core development CPU, 2 MiB L2 per core, 8 full-size
#: networks: groups of 2 on 512 or 1,024 rows 104 GFLOP/s, of 4 on 1,024 rows 81, of 8 on 512
#: rows 63, all 8 at once on 1,024 rows 71); a group has at most CPU_EVAL_GROUP networks.
CPU_EVAL_GROUP = 8


def _cpu_activation_bytes() -> int:
    import os

    l2, _ = cpu_cache_bytes()
    return l2 * (os.cpu_count() or 1) if l2 else 4 * 2 ** 20


def block_rows(eval_batch: int, largest_split: int, nets: int = 1, widest: int = 1, device=None) -> int:
    """Rows per evaluation block: at most eval_batch, no larger than the largest split, and small
    enough for the device (default: this process's first device).

    On an accelerator one `(nets, rows, widest)` float32 activation fits EVAL_ACTIVATION_BYTES
    and EVAL_MEMORY_SHARE of the device's memory; on a CPU one `(MIN_GROUP, rows, widest)`
    activation fits the caches; either cap is rounded down to a multiple of 256 rows. `nets` is the
    run's whole ensemble (not this device's share), so the block size, and with it the rounding
    of the stored losses, does not depend on how the networks are spread.
    """
    device = device if device is not None else jax.local_devices()[0]
    per_row = 4 * max(1, widest)
    if device.platform == "cpu":
        cap = _cpu_activation_bytes() // (per_row * MIN_GROUP)
    else:
        memory = EVAL_ACTIVATION_BYTES
        stats = device.memory_stats() or {}
        if stats.get("bytes_limit"):
            memory = min(memory, int(stats["bytes_limit"] * EVAL_MEMORY_SHARE))
        cap = memory // (per_row * max(1, nets))
    return max(1, min(eval_batch, largest_split, cap // 256 * 256 or cap))


def eval_group(rows: int, widest: int, device=None) -> int:
    """Networks evaluated at once on `device`: all of them (0) on an accelerator (its matmuls need
    the whole ensemble, and `block_rows` sized the blocks for it) and when the networks are
    sharded over several devices (a group would cut across the shards); on a CPU as many
    as keep one activation `(group, rows, widest)` in the caches, at least MIN_GROUP (fewer
    round differently) and at most CPU_EVAL_GROUP. Without `device`: this process's device, or
    0 if it has several; with it, the caller says the networks are on that one device."""
    if device is None:
        if len(jax.local_devices()) > 1:
            return 0
        device = jax.local_devices()[0]
    if device.platform != "cpu":
        return 0
    fit = _cpu_activation_bytes() // (4 * max(1, rows) * max(1, widest))
    return max(MIN_GROUP, min(CPU_EVAL_GROUP, fit))


#: Blocks in flight before the host waits for the oldest one's result.
IN_FLIGHT = 4


def split_loss(params: Params, x: np.ndarray, y: np.ndarray, rows: int, precision: str = "float32",
               put=jnp.asarray, group: int | None = None) -> np.ndarray:
    """MSE `(N,)` over all rows of one split (mean over rows and outputs), float64.

    `put` places a host block on the device(s) (replicated when the networks are sharded).
    `group`: networks evaluated at once (None: `eval_group` for this device; 0: all at once).
    """
    nets = params[0].weight.shape[0]
    if group is None:
        group = eval_group(rows, max(layer.weight.shape[-1] for layer in params))
    total = np.zeros(nets, np.float64)
    pending: deque = deque()
    n = len(x)
    for start in range(0, n, rows):
        xb, yb = x[start:start + rows], y[start:start + rows]
        weight = np.ones(rows, np.float32)
        if len(xb) < rows:  # pad to the compiled block size with rows that count zero
            pad = rows - len(xb)
            weight[len(xb):] = 0.0
            xb = np.concatenate([xb, np.zeros((pad, xb.shape[1]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros((pad, yb.shape[1]), yb.dtype)])
        pending.append(_block_sse(params, put(xb), put(yb), put(weight), precision, group))
        if len(pending) > IN_FLIGHT:  # the device works on the next blocks while we add this one up
            total += np.asarray(pending.popleft(), np.float64)
    while pending:
        total += np.asarray(pending.popleft(), np.float64)
    return total / (n * y.shape[1])
