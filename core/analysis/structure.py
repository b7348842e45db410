"""What survives pruning, per level, across the ensemble: the structural half of the analysis.

Pure numpy (no data, no JAX): remaining fraction of weights per layer, ghost units per hidden
layer (and the masks without them, `ghost_free`, which the motif analysis counts on), first-layer
connections per input, and the distribution of surviving weight values per layer pooled over the
ensemble (the Monte Carlo statistics of the paper's 400 networks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.export.compaction import compact

#: Quantiles of the surviving weights reported per layer and level.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass
class LevelStructure:
    """One level of the whole ensemble (N networks, K weight layers)."""

    remaining: np.ndarray          # (N, K) fraction of each layer's weights that survive
    ghosts: np.ndarray             # (N, K-1) ghost units per hidden layer
    input_connections: np.ndarray  # (N, n_inputs) surviving first-layer weights of each input
    hist: list[np.ndarray]         # per layer (bins,) counts of surviving weight values, all networks
    quantiles: np.ndarray          # (K, len(QUANTILES)) of the surviving weights, NaN if none
    moments: np.ndarray            # (K, 3): count, mean, std of the surviving weights


def histogram_edges(level0_weights: list[np.ndarray], bins: int) -> list[np.ndarray]:
    """Per layer, symmetric bin edges covering the largest |w| of the unpruned ensemble.

    Fixed from level 0 so every level's histogram of a layer is on the same axis. Weights that
    grow past it during retraining land in the outermost bins (clipped), which the UI shows.
    """
    edges = []
    for w in level0_weights:
        top = float(np.max(np.abs(w))) if w.size else 1.0
        top = top if top > 0 else 1.0
        edges.append(np.linspace(-top, top, bins + 1))
    return edges


def remaining_fractions(weight_masks: list[np.ndarray]) -> np.ndarray:
    """(N, K) fraction of each layer's weights that survive, per network (masks `(N, in, out)` per layer)."""
    n_nets = weight_masks[0].shape[0]
    return np.stack([m.reshape(n_nets, -1).mean(axis=1) for m in weight_masks], axis=1)


def remaining_overall(weight_masks: list[np.ndarray]) -> np.ndarray:
    """(N,) fraction of all of a network's weights that survive (every layer pooled)."""
    n_nets = weight_masks[0].shape[0]
    kept = sum(m.reshape(n_nets, -1).sum(axis=1) for m in weight_masks)
    return kept / sum(m[0].size for m in weight_masks)


def input_connections(first_layer_mask: np.ndarray) -> np.ndarray:
    """(N, n_inputs) surviving first-layer weights of each input (first layer's mask `(N, in, out)`)."""
    return first_layer_mask.sum(axis=2).astype(np.int32)


def input_connection_fractions(first_layer_mask: np.ndarray) -> np.ndarray:
    """(N, n_inputs) fraction of each input's first-layer weights that survive."""
    return input_connections(first_layer_mask) / first_layer_mask.shape[2]


def ghost_free(weight_masks: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """The masks without their ghost units' connections (same shapes: a removed unit keeps its
    place with no connection) and `(N, K-1)` ghost units per hidden layer.

    The ghost units are those `core.export.compaction.compact` removes (no input or no output,
    repeated until nothing changes; they depend on the weight masks only), one network at a time.
    """
    n_nets = weight_masks[0].shape[0]
    widths = [m.shape[2] for m in weight_masks[:-1]]
    alive = [np.zeros((n_nets, w), bool) for w in widths]
    for n in range(n_nets):
        masks = [np.asarray(m[n], bool) for m in weight_masks]
        kept = compact([np.zeros(m.shape, np.float32) for m in masks], [np.zeros(m.shape[1]) for m in masks],
                       masks, [np.zeros(m.shape[1], bool) for m in masks]).kept
        for h, units in enumerate(kept):
            alive[h][n, units] = True
    live = []
    for k, m in enumerate(weight_masks):
        m = np.asarray(m, bool)
        if k > 0:
            m = m & alive[k - 1][:, :, None]
        if k < len(alive):
            m = m & alive[k][:, None, :]
        live.append(m)
    ghosts = np.stack([w - a.sum(axis=1) for w, a in zip(widths, alive)], axis=1).astype(np.int32)
    return live, ghosts.reshape(n_nets, len(widths))


def level_structure(weights: list[np.ndarray], weight_masks: list[np.ndarray],
                    bias_masks: list[np.ndarray], edges: list[np.ndarray],
                    ghosts: np.ndarray | None = None) -> LevelStructure:
    """Statistics of one level: per layer `weights (N, in, out)`, masks the same, `bias_masks (N, out)`;
    `ghosts (N, K-1)` if the caller has them from `ghost_free` already (the same count)."""
    remaining = remaining_fractions(weight_masks)
    if ghosts is None:
        ghosts = ghost_free(weight_masks)[1]
    connections = input_connections(weight_masks[0])
    hist, quantiles, moments = [], [], []
    for w, m, e in zip(weights, weight_masks, edges):
        alive = w[m].astype(np.float64)
        hist.append(np.histogram(np.clip(alive, e[0], e[-1]), bins=e)[0].astype(np.int64))
        if alive.size:
            quantiles.append(np.quantile(alive, QUANTILES))
            moments.append((alive.size, alive.mean(), alive.std()))
        else:
            quantiles.append(np.full(len(QUANTILES), np.nan))
            moments.append((0, np.nan, np.nan))
    return LevelStructure(remaining, ghosts, connections, hist, np.array(quantiles), np.array(moments))
