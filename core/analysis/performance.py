"""How well each pruned network still works, per level: per-output error, input-noise
robustness, and the closed-loop flight check through the simulator.

Imports JAX inside the functions (never at module level): the UI may import core.analysis to
read stored results, and must not pull JAX in by doing so.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Float elements of hidden activations held at once per evaluation block (bounds memory).
_BLOCK_ELEMENTS = 1 << 24


@lru_cache(maxsize=None)
def _compiled_forward():
    """The engine's forward pass (core.engine.model.forward, float32 at HIGHEST precision), jitted
    once: the analysis evaluates exactly the function the engine trained and scored."""
    import jax

    from core.engine.model import Layer, forward

    @jax.jit
    def run(x_s, weights, biases):
        """x_s (n, in) scaled -> (N, n, out) scaled outputs of every network."""
        return forward([Layer(w, b) for w, b in zip(weights, biases)], x_s, "float32")

    return run


def ensemble_forward(x_s: np.ndarray, weights: list[np.ndarray], biases: list[np.ndarray]) -> np.ndarray:
    """Scaled inputs `(n, 10)` through N networks (per layer `(N, in, out)`) -> `(N, n, 7)` float32."""
    forward = _compiled_forward()
    n_nets = weights[0].shape[0]
    widest = max(w.shape[2] for w in weights)
    block = max(64, _BLOCK_ELEMENTS // max(1, n_nets * widest))
    ws = tuple(np.asarray(w, np.float32) for w in weights)
    bs = tuple(np.asarray(b, np.float32) for b in biases)
    x_s = np.asarray(x_s, np.float32)
    parts = []
    for start in range(0, len(x_s), block):
        chunk = x_s[start:start + block]
        if len(chunk) < block and start > 0:   # pad the tail to the block shape: one compilation
            pad = np.zeros((block - len(chunk), x_s.shape[1]), np.float32)
            parts.append(np.asarray(forward(np.concatenate([chunk, pad]), ws, bs))[:, :len(chunk)])
        else:
            parts.append(np.asarray(forward(chunk, ws, bs)))
    return np.concatenate(parts, axis=1)


def output_mse(y_pred_s: np.ndarray, y_s: np.ndarray) -> np.ndarray:
    """(N, n, 7) predictions vs (n, 7) targets, scaled -> (N, 7) mean squared error per output."""
    diff = y_pred_s.astype(np.float64) - y_s[None].astype(np.float64)
    return np.mean(diff * diff, axis=1)


def noise_losses(x_s: np.ndarray, y_s: np.ndarray, weights, biases, sigmas, seed: int) -> np.ndarray:
    """(S, N) loss (MSE over the 7 scaled outputs) with N(0, sigma^2) added to the scaled inputs.

    The same noise draw is used for every network and every level (common random numbers), so
    differences between levels are the networks', not the dice's.
    """
    out = []
    for i, sigma in enumerate(sigmas):
        rng = np.random.default_rng([seed, i])
        noisy = x_s + rng.normal(0.0, float(sigma), x_s.shape).astype(np.float32)
        out.append(output_mse(ensemble_forward(noisy, weights, biases), y_s).mean(axis=1))
    return np.array(out)


def controls_from_outputs(y: np.ndarray) -> np.ndarray:
    """Physical outputs (..., 7) -> controls (..., 3) [F, alpha, tau] (F = |(Fx, Fy)|)."""
    fx, fy, tau = y[..., 0], y[..., 1], y[..., 2]
    return np.stack([np.hypot(fx, fy), np.arctan2(fy, fx), tau], axis=-1)


# State order q = (x, xd, y, yd, theta, thetad, phi, phid), model.md §1.
_X, _Y, _THETA, _PHI = 0, 2, 4, 6


def flight_errors(reached: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position error (cm, hypot of x and y), |theta error| and |phi error| (rad) of final states."""
    position = np.hypot(reached[..., _X] - target[..., _X], reached[..., _Y] - target[..., _Y])
    return (position, np.abs(reached[..., _THETA] - target[..., _THETA]),
            np.abs(reached[..., _PHI] - target[..., _PHI]))


def closed_loop(initial: np.ndarray, target: np.ndarray, controls: np.ndarray, scale: float):
    """Fly the predicted controls: `initial (M, 8)`, `target (M, 8)`, `controls (N, M, 3)`.

    Returns position (N, M) cm, theta and phi errors (N, M) rad, and the simulator's validity
    (N, M); invalid or non-finite trajectories get NaN errors.
    """
    from core.sim import simulate_checked

    n_nets, m = controls.shape[:2]
    start = np.broadcast_to(initial[None], (n_nets, m, 8)).reshape(-1, 8)
    final, valid = simulate_checked(np.ascontiguousarray(start, dtype=np.float64),
                                    controls.reshape(-1, 3).astype(np.float64), scale=scale)
    final = np.asarray(final, np.float64).reshape(n_nets, m, 8)
    valid = np.asarray(valid, bool).reshape(n_nets, m) & np.isfinite(final).all(axis=-1)
    errors = flight_errors(final, target[None])
    return tuple(np.where(valid, e, np.nan) for e in errors) + (valid,)
