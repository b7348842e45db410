"""`evaluate_scales`: how the run's networks do on moths of other body sizes (model.md §4, §5).

For each body scale s, held-out wing strokes are simulated at s (cached under
`<runs>/.datasets/` like training data, with a seed of their own so they are never the training
rows), scaled with the run's own scaler (the networks were trained on s = 1: inputs outside the
training range are part of the question), and every completed level of every network is
evaluated with the engine's forward pass. The loss is the training loss: MSE of the scaled
outputs, mean over rows and outputs.

Stored in `<run>/extrapolation/` (core.analysis.store, completion marker last):
- `scales (S,)` float64, `loss (S, L, N)` float64, `rows (S,)` int64 (usable rows evaluated),
  `valid_fraction (S,)` float64 (usable rows / simulated rows: small bodies lose many strokes)
- attributes `summary` (medians and p10/p90 per scale and level, the run's own level-0 test loss
  and each scale's ratio to it), `params` (`samples`, `seed`), `levels`, `datasets`.

Imports JAX only inside the functions that run the networks (the UI reads the stored results).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from core import paths
from core.analysis.store import EXTRAPOLATION, AnalysisWriter, load_analysis
from core.analysis.summary import json_ready
from core.errors import MothError
from core.formatting import fmt_value
from core.schema import INPUT_NAMES, OUTPUT_NAMES

#: The held-out strokes' seed is the run's `data_seed` plus this: never the training rows.
HELD_OUT_SEED_OFFSET = 1
DEFAULT_SAMPLES = 20_000

StatusCallback = Callable[[str], None]


def parse_scales(text: str) -> tuple[float, ...]:
    """`"0.5,2"` -> (0.5, 2.0); MothError (one line) for an empty list or a scale out of range."""
    from core.sim.sampling import validate_scale

    items = [item.strip() for item in str(text).split(",")]
    if not items or any(not item for item in items):
        raise MothError(f"bad --scale {text!r}: expected body scales such as 0.5,2")
    scales = []
    for item in items:
        try:
            scales.append(validate_scale(item))
        except MothError as err:
            raise MothError(f"bad --scale {text!r}: {err}") from None
    if len(set(scales)) != len(scales):
        raise MothError(f"bad --scale {text!r}: a scale is listed twice")
    return tuple(scales)


def check_architecture(run) -> None:
    """The networks must be the contract's 10-...-7 tanh MLPs on the contract's inputs and outputs:
    otherwise held-out strokes cannot be fed to them (MothError, one line)."""
    attrs = run.attrs
    inputs, outputs = attrs.get("input_names"), attrs.get("output_names")
    if (inputs is not None and list(inputs) != list(INPUT_NAMES)) or \
            (outputs is not None and list(outputs) != list(OUTPUT_NAMES)) or \
            attrs.get("activation", "tanh") != "tanh":
        raise MothError(f"run {run.run_id!r} is not a 10-input, 7-output tanh network on this "
                        f"simulator's features: it cannot be evaluated on simulated strokes")


def held_out_name(samples: int, seed: int, scale: float) -> str:
    from core.dataset import cache_name

    return cache_name("heldout", samples, seed, scale)


def bands(loss: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p10, median, p90) over networks (last axis) of the finite losses; NaN where none is finite."""
    values = np.where(np.isfinite(loss), loss, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p10, median, p90 = (np.nanpercentile(values, q, axis=-1) for q in (10, 50, 90))
    return p10, median, p90



def level_losses(run, held_out: Sequence[tuple[np.ndarray, np.ndarray]], levels: int) -> np.ndarray:
    """`(S, levels, N)` MSE of every network at every level on each set of scaled rows `(x_s, y_s)`,
    with the engine's forward pass. Each level's weights are read once for all the sets."""
    from core.analysis.performance import ensemble_forward

    out = np.empty((len(held_out), levels, run.nets), np.float64)
    for level in range(levels):
        arrays = run.level(level)
        for i, (x_s, y_s) in enumerate(held_out):
            pred = ensemble_forward(x_s, arrays.weights, arrays.biases).astype(np.float64)
            out[i, level] = np.mean(np.square(pred - y_s[None].astype(np.float64)), axis=(1, 2))
    return out


def evaluate_scales(run, runs_dir: Path, scales: Sequence[float], samples: int = DEFAULT_SAMPLES,
                    progress: StatusCallback | None = None) -> dict[str, Any]:
    """Evaluate every completed level of `run` at each body scale; store and return the summary.

    The caller holds the run (`core.owner.claim`), as for the analysis.
    """
    from core.data import Scaler
    from core.dataset import ensure_dataset, open_dataset

    say = progress or (lambda text: None)
    check_architecture(run)
    if samples < 1:
        raise MothError(f"bad --samples {samples}: at least 1 held-out stroke")
    levels = run.levels_complete
    if levels < 1:
        raise MothError(f"run {run.run_id!r} has no completed level to evaluate")
    seed = int(run.config.data_seed) + HELD_OUT_SEED_OFFSET
    scaler = Scaler.from_dict(run.attrs["scaler"])
    held_out, rows, valid, datasets = [], [], [], []
    for scale in scales:
        path = paths.dataset_dir(runs_dir, held_out_name(samples, seed, scale))  # beside the training data
        say(f"s = {scale:g}: {samples:,} held-out strokes ({path.name})")
        ensure_dataset(path, samples, seed, scale)
        found = open_dataset(path).usable_rows(0, samples)
        if len(found) == 0:
            raise MothError(f"no valid stroke among {samples:,} simulated at s = {scale:g}")
        held_out.append((scaler.scale_x(found.x).astype(np.float32), scaler.scale_y(found.y).astype(np.float32)))
        rows.append(len(found))
        valid.append(len(found) / samples)
        datasets.append(str(path))
    say(f"evaluating {levels} levels of {run.nets} networks at s = {', '.join(f'{s:g}' for s in scales)}")
    loss_a = level_losses(run, held_out, levels)                    # (S, L, N)
    summary = store_extrapolation(run, scales, loss_a, rows, valid, samples=samples, seed=seed, datasets=datasets)
    for scale, m, v in zip(scales, summary["loss_median"], valid):
        say(f"s = {scale:g}: level 0 median loss {fmt_value(m[0])}, {v:.0%} of strokes valid")
    return summary



def store_extrapolation(run, scales: Sequence[float], loss_a: np.ndarray, rows: Sequence[int],
                        valid: Sequence[float], *, samples: int, seed: int, datasets: Sequence[str]) -> dict[str, Any]:
    """Summarise `loss_a (S, levels, N)` against the run's own test loss and store it (the module's
    layout, completion marker last); returns the summary. The one writer of `<run>/extrapolation`."""
    levels = loss_a.shape[1]
    p10, med, p90 = bands(loss_a)
    test = run.losses("test")[:levels]
    own = float(np.nanmedian(test[0])) if np.isfinite(test[0]).any() else None
    summary = {
        "scales": list(scales), "levels": levels, "sparsity": run.sparsity[:levels],
        "rows": rows, "valid_fraction": valid,
        "loss_median": med, "loss_p10": p10, "loss_p90": p90,
        "test_loss_median": bands(test)[1],
        "level0_test_median": own,
        "ratio_to_level0": [None if own is None or not math.isfinite(m[0]) else float(m[0] / own) for m in med],
    }
    summary = json_ready(summary)
    writer = AnalysisWriter(run.path, EXTRAPOLATION)
    writer.array("scales", np.asarray(scales, np.float64))
    writer.array("loss", loss_a)
    writer.array("rows", np.asarray(rows, np.int64))
    writer.array("valid_fraction", np.asarray(valid, np.float64))
    writer.finish(summary=summary, params={"samples": int(samples), "seed": int(seed)}, levels=levels,
                  datasets=list(datasets))
    return summary


def load_extrapolation(run) -> dict[str, Any] | None:
    """The stored extrapolation summary of a run, or None (absent or half-written). Pure numpy + zarr."""
    found = load_analysis(run, EXTRAPOLATION)
    return None if found is None else found.summary
