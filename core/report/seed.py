"""The seed's published numbers (model.md section 5), drawn on a report's figures where comparable.

A run is comparable with the seed when it has the paper's network (10-400-400-400-16-7, tanh) on
the contract's inputs and outputs and prunes layer-wise, as the seed did; other runs get no seed
marks (a 10-128-128-16-7 network's per-layer fractions or loss have no seed counterpart). Each
value carries the label the legend shows, saying where it comes from. Pure Python.
"""

from __future__ import annotations

from typing import Any, Mapping

from core.schema import INPUT_NAMES, OUTPUT_NAMES

#: The seed's architecture and pruning mode: what makes a run comparable.
SEED_HIDDEN = (400, 400, 400, 16)
SEED_PRUNING = "layer"

#: The seed's schedule: level 0 then the 17 target sparsities (model.md section 3).
SEED_SPARSITY = (0.0, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.90,
                 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98)

#: A single Keras network's validation MSE (scaled outputs) at each level of SEED_SPARSITY.
KERAS_VAL_MSE = (1.57e-4, 1.48e-4, 1.25e-4, 1.30e-4, 1.12e-4, 1.11e-4, 1.15e-4, 1.00e-4, 1.25e-4,
                 1.26e-4, 1.31e-4, 1.23e-4, 1.67e-4, 1.35e-4, 6.0e-3, 1.36e-2, 1.95e-2, 3.14e-2)
KERAS_LABEL = "seed: Keras, 1 network (val)"

#: The 400-network JAX run: networks whose sparsest level under 1e-3 is at each sparsity (none skipped).
HISTOGRAM = {0.65: 2, 0.75: 18, 0.85: 4, 0.90: 1, 0.91: 73, 0.92: 84, 0.93: 214, 0.94: 4}
HISTOGRAM_NETS = 400
HISTOGRAM_LABEL = "seed: JAX, 400 networks"

#: Networks selected at 93 % (858): fraction of weights kept per layer (median; output layer mean).
KEPT_PER_LAYER = (0.0701, 0.0700, 0.0700, 0.0698, 0.074)
KEPT_LABEL = "seed: 858 networks at 93 %"

#: The same networks: median percentage of each input's 400 first-layer connections kept.
INPUT_KEPT_PERCENT = {"phi_0": 6.0, "theta_0": 8.5, "x_f": 5.5, "y_f": 5.7, "phi_f": 16.7,
                      "theta_f": 17.0, "xd_0": 5.0, "yd_0": 5.0, "phid_0": 0.1, "thetad_0": 0.0}

#: Trained at s = 1, 5 networks at 0 % pruned: test MSE at other body scales.
EXTRAPOLATION_TEST_MSE = {0.5: 0.149, 2.0: 0.134}
EXTRAPOLATION_LABEL = "seed: 5 networks, 0 % pruned (test)"


def comparable(config: Mapping[str, Any], attrs: Mapping[str, Any] | None = None) -> str | None:
    """None when a run (its stored `config` dict and root `attrs`) is comparable with the seed,
    else the reason, e.g. "its network is 10-128-128-16-7, the seed's 10-400-400-400-16-7"."""
    hidden = tuple(int(h) for h in config.get("hidden") or ())
    if hidden != SEED_HIDDEN:
        shape = "-".join(map(str, (10, *hidden, 7)))
        return f"its network is {shape}, the seed's 10-400-400-400-16-7"
    if config.get("pruning", SEED_PRUNING) != SEED_PRUNING:
        return f"it prunes {config.get('pruning')!s}, the seed layer-wise"
    attrs = attrs or {}
    if (attrs.get("input_names") is not None and tuple(attrs["input_names"]) != INPUT_NAMES) or \
            (attrs.get("output_names") is not None and tuple(attrs["output_names"]) != OUTPUT_NAMES):
        return "its inputs or outputs are not the seed's"
    return None
