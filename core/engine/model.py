"""The network: an MLP 10-hidden...-7 with tanh hidden units, defined once with flax nnx.

The engine never trains nnx objects. `init_params` builds one `MLP` per network inside a
vmapped pure function, `nnx.split`s it, and returns the state as a plain pytree of stacked
arrays: a list of `Layer(weight (N, in, out), bias (N, out))`. The hot path (`forward`) is then a
few einsums on those arrays with no Python object handling.

Network i is initialised from `fold_in(key(seed), i)`, so a network's weights do not depend on
how many networks run or which process owns it.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence, TypeAlias

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

#: A leaf of the engine's pytrees: on the device, a host copy, or a shape traced for compilation.
Leaf: TypeAlias = jax.Array | np.ndarray | jax.ShapeDtypeStruct


class Layer(NamedTuple):
    """One dense layer of every network: `weight (N, in, out)`, `bias (N, out)`."""

    weight: Leaf
    bias: Leaf


Params = list  # list[Layer]: the whole ensemble as plain arrays


class MLP(nnx.Module):
    """One network: dense layers, tanh between them, linear output (the seed's architecture)."""

    def __init__(self, sizes: Sequence[int], init_std: float, rngs: nnx.Rngs, init: str = "normal"):
        def kernel_init(fan_in: int):  # "lecun": N(0, 1/fan_in), so every layer's pre-activations are O(1)
            return nnx.initializers.normal(init_std if init == "normal" else fan_in ** -0.5)

        self.layers = nnx.List([
            nnx.Linear(a, b, kernel_init=kernel_init(a), bias_init=nnx.initializers.zeros, rngs=rngs)
            for a, b in zip(sizes, sizes[1:])
        ])

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = jnp.tanh(x)
        return x


@functools.lru_cache(maxsize=16)
def _initializer(sizes: tuple[int, ...], init_std: float, init: str = "normal"):
    """One compiled initializer per architecture: (seed, network indices) -> nnx state as a dict."""
    def one(key):
        _, state = nnx.split(MLP(sizes, init_std, nnx.Rngs(params=key), init))
        return nnx.to_pure_dict(state)

    def stacked(seed, indices):
        base = jax.random.key(seed)
        return jax.vmap(lambda i: one(jax.random.fold_in(base, i)))(indices)

    return jax.jit(stacked)


def init_params(sizes: Sequence[int], init_std: float, seed: int, net_range: range, init: str = "normal") -> Params:
    """Stacked initial parameters of networks `net_range` (a range of global network indices)."""
    state = _initializer(tuple(sizes), float(init_std), init)(seed, jnp.arange(net_range.start, net_range.stop))
    return [Layer(state["layers"][k]["kernel"], state["layers"][k]["bias"])
            for k in range(len(sizes) - 1)]


def full_masks(params: Params) -> Params:
    """Masks that keep everything (level 0)."""
    return [Layer(jnp.ones(p.weight.shape, bool), jnp.ones(p.bias.shape, bool)) for p in params]


def round_tf32(x: jax.Array) -> jax.Array:
    """float32 `x` rounded to TensorFloat-32 (8-bit exponent, 10-bit mantissa), to nearest, ties
    to even, on the bit pattern: what an NVIDIA tensor core keeps of a float32 matmul input.
    Infinities and NaNs stay what they are; a value past tf32's largest finite rounds to infinity."""
    bits = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
    dropped = 23 - TF32_MANTISSA_BITS
    odd = (bits >> dropped) & 1
    rounded = (bits + ((1 << (dropped - 1)) - 1) + odd) & ~jnp.uint32((1 << dropped) - 1)
    special = (bits & 0x7F800000) == 0x7F800000  # inf or NaN: keep the pattern
    return jax.lax.bitcast_convert_type(jnp.where(special, bits, rounded), jnp.float32)


#: Mantissa bits TensorFloat-32 keeps of float32's 23.
TF32_MANTISSA_BITS = 10


def _exact(spec: str, a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.einsum(spec, a, b, precision=jax.lax.Precision.HIGHEST)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _tf32_emulated(spec: str, h: jax.Array, w: jax.Array) -> jax.Array:
    return _exact(spec, round_tf32(h), round_tf32(w))


def _tf32_fwd(spec, h, w):
    return _tf32_emulated(spec, h, w), (h, w)


def _tf32_bwd(spec, residuals, g):
    """The two gradient matmuls as a GPU runs them in tf32: each one's inputs rounded too."""
    h, w = residuals
    h, w, g = round_tf32(h), round_tf32(w), round_tf32(g)
    inputs, _ = spec.split("->")
    h_spec, _ = inputs.split(",")
    dh = _exact(f"nbo,nio->{h_spec}", g, w)
    dw = _exact(f"{h_spec},nbo->nio", h, g)
    return dh, dw


_tf32_emulated.defvjp(_tf32_fwd, _tf32_bwd)


def matmul(h: jax.Array, w: jax.Array, precision: str) -> jax.Array:
    """`h @ w` per network: h `(B, in)` shared by all networks or `(N, B, in)`; w `(N, in, out)`.

    float32 pins HIGHEST so CPU and GPU agree; tf32 lets the GPU use TensorFloat-32 (on a CPU it
    is float32); "tf32-emulated" rounds the inputs of every matmul, forward and backward, to
    tf32 and accumulates in float32, so a CPU shows what tf32 does to the science; bf16 casts
    the inputs and accumulates in float32.
    """
    spec = "bi,nio->nbo" if h.ndim == 2 else "nbi,nio->nbo"
    if precision == "tf32-emulated":
        return _tf32_emulated(spec, h, w)
    if precision == "bf16":
        return jnp.einsum(spec, h.astype(jnp.bfloat16), w.astype(jnp.bfloat16),
                          preferred_element_type=jnp.float32)
    prec = jax.lax.Precision.HIGHEST if precision == "float32" else jax.lax.Precision.DEFAULT
    return jnp.einsum(spec, h, w, precision=prec)


# Sums over rows are matmuls with a block of ones, not reductions: XLA's CPU reduction kernels
# round a sum over rows differently for different network counts (a (8, 128, 400) -> (8, 400)
# sum differs in the last bit from the same two networks' (2, 128, 400) -> (2, 400) sum), while
# its matmuls compute every row of the result alike. A network's results must not depend on
# how many networks share a call (devices, groups of the training chunk, evaluation groups).
# Two columns of ones, not one: a matrix-vector product is rewritten into that same reduction.

def sum_rows(a: jax.Array) -> jax.Array:
    """`a (N, B, O)` summed over B, `(N, O)` (a matmul with ones, see above)."""
    ones = jnp.ones((a.shape[1], 2), a.dtype)
    return jnp.einsum("nbo,bk->nok", a, ones, precision=jax.lax.Precision.HIGHEST)[..., 0]


def sum_per_network(a: jax.Array) -> jax.Array:
    """`a (N, ...)` summed over everything but the network axis, `(N,)` (a matmul with ones)."""
    flat = a.reshape(a.shape[0], -1)
    ones = jnp.ones((flat.shape[1], 2), a.dtype)
    return jnp.dot(flat, ones, precision=jax.lax.Precision.HIGHEST)[:, 0]


@jax.custom_vjp
def add_bias(h: jax.Array, bias: jax.Array) -> jax.Array:
    """`h (N, B, O) + bias (N, O)` per row; its gradient sums over rows with `sum_rows`."""
    return h + bias[:, None, :]


def _add_bias_fwd(h, bias):
    return add_bias(h, bias), None


def _add_bias_bwd(_, g):
    return g, sum_rows(g)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


def forward(params: Params, x: jax.Array, precision: str = "float32") -> jax.Array:
    """Scaled outputs `(N, B, 7)` of every network for scaled inputs x `(B, 10)`.

    Pruned weights are exactly zero (training keeps them so), so no `W * mask` here.
    """
    # Every network gets its own copy of the batch: a first layer written as one wide GEMM over
    # the shared batch would round differently for different network counts, and results must
    # not depend on how the networks are spread over devices.
    h = jnp.broadcast_to(x, (params[0].weight.shape[0], *x.shape)) if x.ndim == 2 else x
    last = len(params) - 1
    for k, layer in enumerate(params):
        h = add_bias(matmul(h, layer.weight, precision), layer.bias)
        if k < last:
            h = jnp.tanh(h)
    return h


def per_network_mse(params: Params, x: jax.Array, y: jax.Array, precision: str = "float32") -> jax.Array:
    """Mean squared error `(N,)` of every network on one batch (mean over rows and outputs)."""
    err = forward(params, x, precision) - y[None]
    return sum_per_network(jnp.square(err)) / (err.shape[1] * err.shape[2])


def weight_count(sizes: Sequence[int]) -> int:
    """Weights of one network (biases not counted)."""
    return sum(a * b for a, b in zip(sizes, sizes[1:]))
