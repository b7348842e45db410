"""Per-network loss on whole splits: every network, every level, every row of train, val and test.

Rows are streamed through the device in fixed blocks (one compiled shape; the last block is
padded with zero-weight rows), so a split never has to sit on the device. Sums are taken in
float32 per block and added up in float64 on the host.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from core.engine.model import Params, forward


@partial(jax.jit, static_argnames=("precision",))
def _block_sse(params: Params, x: jax.Array, y: jax.Array, weight: jax.Array, precision: str) -> jax.Array:
    """Sum over rows of the squared error summed over outputs, `(N,)`, rows weighted 0 or 1."""
    err = forward(params, x, precision) - y[None]
    return jnp.einsum("nbo,b->n", jnp.square(err), weight, precision=jax.lax.Precision.HIGHEST)


#: Bytes one hidden activation of an evaluation block may take (about three are alive at once).
#: Keeps `eval_batch` safe for any ensemble size: 400 networks 400 wide get 9,830 rows (6 GiB).
EVAL_ACTIVATION_BYTES = 6 * 2 ** 30


def block_rows(eval_batch: int, largest_split: int, nets: int = 1, widest: int = 1) -> int:
    """Rows per evaluation block: at most eval_batch, no larger than the largest split, and small
    enough that one `(nets, rows, widest)` float32 activation fits EVAL_ACTIVATION_BYTES.

    `nets` is the run's whole ensemble (not this device's share), so the block size, and with it
    the rounding of the stored losses, does not depend on how the networks are spread.
    """
    memory_cap = EVAL_ACTIVATION_BYTES // (4 * max(1, nets) * max(1, widest))
    return max(1, min(eval_batch, largest_split, memory_cap))


def split_loss(params: Params, x: np.ndarray, y: np.ndarray, rows: int, precision: str = "float32",
               put=jnp.asarray) -> np.ndarray:
    """MSE `(N,)` over all rows of one split (mean over rows and outputs), float64.

    `put` places a host block on the device(s) (replicated when the networks are sharded).
    """
    total = np.zeros(params[0].weight.shape[0], np.float64)
    n = len(x)
    for start in range(0, n, rows):
        xb, yb = x[start:start + rows], y[start:start + rows]
        weight = np.ones(rows, np.float32)
        if len(xb) < rows:  # pad to the compiled block size with rows that count zero
            pad = rows - len(xb)
            weight[len(xb):] = 0.0
            xb = np.concatenate([xb, np.zeros((pad, xb.shape[1]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros((pad, yb.shape[1]), yb.dtype)])
        total += np.asarray(_block_sse(params, put(xb), put(yb), put(weight), precision), np.float64)
    return total / (n * y.shape[1])
