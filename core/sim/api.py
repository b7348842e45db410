"""Public simulator entry points: numpy in, numpy out, sharded over all local JAX devices.

`simulate_checked` returns the final states and a per-sample validity flag (finite and the
integrator's accumulated error estimate, as a fraction of each component's range at the body
scale, under tolerance); `simulate` returns the final states
with failed samples set to NaN, so that a failure can never pass for a good result.
"""

from __future__ import annotations

import functools
import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from core.errors import MothError
from core.sim import integrate, model
from core.sim.sampling import validate_scale

#: Samples per block on an accelerator: large enough to fill a GPU with one fused kernel chain.
ACCELERATOR_BLOCK = 262144

INTEGRATOR = {
    "method": integrate.ARK4.name,
    "kind": "IMEX additive Runge-Kutta, joint damper implicit (closed-form rank-one solve)",
    "steps": integrate.DEFAULT_STEPS,
    "grading": list(integrate.DEFAULT_GRADING),
    "error_scale": list(integrate.ERROR_SCALE),
    "error_tolerance": integrate.ERROR_TOLERANCE,
    "rounding": "angles reduced to [-pi, pi] with their turns apart; compensated state updates",
    "t_end": model.T_END,
}


def integrator_settings(scale: float = 1.0, dtype=np.float32) -> dict:
    """What a dataset records about how it was integrated (JSON-serialisable)."""
    steps = integrate.steps_for_scale(scale)
    total = len(integrate.step_sizes(steps, scale=scale, grading=integrate.DEFAULT_GRADING))
    return {**INTEGRATOR, "steps": steps, "total_steps": total, "dtype": np.dtype(dtype).name,
            "error_scale": list(integrate.error_scale(scale))}


def _default_block(devices) -> int:
    return integrate.DEFAULT_BLOCK if devices[0].platform == "cpu" else ACCELERATOR_BLOCK


@functools.lru_cache(maxsize=32)
def _compiled(scale: float, dtype_name: str, steps: int, method: str, block: int, devices: tuple):
    """A jitted (n_pad, 8), (n_pad, 3) -> (final (n_pad, 8), error (n_pad,)) over `devices`."""
    params = model.body_params(scale)
    mesh = jax.sharding.Mesh(np.asarray(devices), ("samples",))

    def per_device(initial, controls):
        # (rows, 8) -> (blocks, 8, block): each block is one vectorised structure of arrays.
        blocks = initial.shape[0] // block
        st = initial.reshape(blocks, block, 8).transpose(0, 2, 1)
        ct = controls.reshape(blocks, block, 3).transpose(0, 2, 1)
        final, err = jax.lax.map(
            lambda args: integrate.integrate_block(params, args[0], args[1], steps=steps, method=method),
            (st, ct))
        return final.transpose(0, 2, 1).reshape(-1, 8), err.reshape(-1)

    sharded = jax.shard_map(per_device, mesh=mesh, in_specs=(P("samples"), P("samples")),
                            out_specs=(P("samples"), P("samples")))
    return jax.jit(sharded), NamedSharding(mesh, P("samples"))


def batch_function(n: int, *, scale: float = 1.0, dtype=np.float32, steps: int | None = None,
                   method: str = integrate.DEFAULT_METHOD, block: int | None = None, devices=None):
    """What `simulate_checked` runs for a batch of n samples: the jitted function
    `(initial (n_pad, 8), controls (n_pad, 3)) -> (final, error)`, its input sharding, and n_pad
    (n rounded up to whole blocks on every device). `mothtui plan` compiles and times the same.
    """
    steps = int(steps or integrate.steps_for_scale(scale))
    devices = tuple(devices or jax.local_devices())
    if not block:
        # Small batches get a small block (a power of two, so few distinct compiled shapes).
        per_device = -(-n // len(devices))
        block = min(_default_block(devices), max(64, 1 << (per_device - 1).bit_length()))
    per_call = block * len(devices)
    fn, sharding = _compiled(scale, np.dtype(dtype).name, steps, method, block, devices)
    return fn, sharding, -(-n // per_call) * per_call


def _check_inputs(initial, controls) -> tuple[np.ndarray, np.ndarray]:
    initial, controls = np.asarray(initial), np.asarray(controls)
    if initial.ndim != 2 or initial.shape[1] != 8:
        raise MothError(f"initial states must have shape (n, 8), got {initial.shape}")
    if controls.ndim != 2 or controls.shape[1] != 3 or controls.shape[0] != initial.shape[0]:
        raise MothError(f"controls must have shape ({initial.shape[0]}, 3), got {controls.shape}")
    return initial, controls


def simulate_checked(initial, controls, *, scale: float = 1.0, dtype=np.float32,
                     steps: int | None = None, method: str = integrate.DEFAULT_METHOD,
                     block: int | None = None, devices=None) -> tuple[np.ndarray, np.ndarray]:
    """Final states (n, 8) at t = 0.02 s and validity (n,) bool of n wing strokes.

    A sample is valid when its final state is finite and the integrator's error estimate is
    under `integrate.ERROR_TOLERANCE` (and its inputs were finite). `dtype` float32 (default)
    or float64 (enables JAX x64 for this call only). `devices`: default all local devices.
    `steps`: equal steps per stroke (default `integrate.steps_for_scale(scale)`).
    """
    initial, controls = _check_inputs(initial, controls)
    scale = validate_scale(scale)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise MothError(f"dtype must be float32 or float64, got {dtype}")
    if method not in integrate.TABLEAUX and method != "rk4":
        raise MothError(f"unknown integration method {method!r}")
    n = initial.shape[0]
    if n == 0:
        return np.zeros((0, 8), dtype), np.zeros(0, bool)
    with jax.enable_x64(dtype == np.float64):
        fn, sharding, n_pad = batch_function(n, scale=scale, dtype=dtype, steps=steps, method=method,
                                             block=block, devices=devices)
        # Padding rows are the all-zero state and controls: harmless, and cut off below.
        init_pad = np.zeros((n_pad, 8), dtype)
        ctrl_pad = np.zeros((n_pad, 3), dtype)
        init_pad[:n], ctrl_pad[:n] = initial, controls
        final, err = fn(jax.device_put(init_pad, sharding), jax.device_put(ctrl_pad, sharding))
        final, err = np.array(final[:n]), np.asarray(err)[:n]
    valid = (np.isfinite(final).all(axis=1) & (err < integrate.ERROR_TOLERANCE)
             & np.isfinite(initial).all(axis=1) & np.isfinite(controls).all(axis=1))
    return final, valid


def simulate(initial, controls, *, scale: float = 1.0, dtype=np.float32, **options) -> np.ndarray:
    """Final states (n, 8) at t = 0.02 s; rows that failed the integrator's checks are NaN.

    `options` go to `simulate_checked` (steps, method, block, devices).
    """
    final, valid = simulate_checked(initial, controls, scale=scale, dtype=dtype, **options)
    final[~valid] = np.nan
    return final
