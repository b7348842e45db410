"""Compaction: a pruned network without its ghost units, with the same outputs.

A ghost unit is a hidden unit left with no input or no output by pruning. `compact` removes
them (folding constant units into the next layer's biases); `ghost_units` counts them from the
masks alone (what `core.analysis.structure` reports per level). Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

@dataclass
class Compacted:
    """A network without ghost units. `kept[h]` are the original indices of hidden layer h's units."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    weight_masks: list[np.ndarray]
    bias_masks: list[np.ndarray]
    kept: list[np.ndarray]
    removed: list[int]


def compact(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
            weight_masks: Sequence[np.ndarray], bias_masks: Sequence[np.ndarray]) -> Compacted:
    """Remove hidden units with no remaining output or no remaining input, outputs unchanged.

    A unit with no output contributes exactly 0 downstream: dropped. A unit with no input is
    the constant tanh(bias): its contribution is folded into the next layer's biases (kept in
    float64 so the sum is exact to rounding), then dropped. Removing units can orphan others, so
    this repeats until nothing changes. Inputs and outputs of the network are never removed.
    """
    w = [np.asarray(a, dtype=np.float32).copy() for a in weights]
    b = [np.asarray(a, dtype=np.float64).copy() for a in biases]
    wm = [np.asarray(a, dtype=bool).copy() for a in weight_masks]
    bm = [np.asarray(a, dtype=bool).copy() for a in bias_masks]
    kept = [np.arange(a.shape[1]) for a in w[:-1]]   # hidden layer h = output of weight layer h
    changed = True
    while changed:
        changed = False
        for h in range(len(kept)):
            no_out = ~wm[h + 1].any(axis=1)
            no_in = ~wm[h].any(axis=0)
            ghost = no_out | no_in
            if not ghost.any():
                continue
            constant = no_in & ~no_out
            if constant.any():
                values = np.tanh(np.where(bm[h][constant], b[h][constant], 0.0))
                outgoing = np.where(wm[h + 1][constant], w[h + 1][constant], 0.0).astype(np.float64)
                b[h + 1] = b[h + 1] + values @ outgoing
                bm[h + 1] = bm[h + 1] | (wm[h + 1][constant] & (values[:, None] != 0)).any(axis=0)
            keep = ~ghost
            w[h], wm[h] = w[h][:, keep], wm[h][:, keep]
            b[h], bm[h] = b[h][keep], bm[h][keep]
            w[h + 1], wm[h + 1] = w[h + 1][keep], wm[h + 1][keep]
            kept[h] = kept[h][keep]
            changed = True
    removed = [int(np.asarray(weights[h]).shape[1] - kept[h].size) for h in range(len(kept))]
    return Compacted(w, b, wm, bm, kept, removed)


def ghost_units(weight_masks: Sequence[np.ndarray], bias_masks: Sequence[np.ndarray]) -> list[int]:
    """Number of ghost units per hidden layer (what `compact` would remove), from the masks only."""
    zeros = [np.zeros(m.shape, np.float32) for m in weight_masks]
    return compact(zeros, [np.zeros(m.shape) for m in bias_masks], weight_masks, bias_masks).removed
