"""`analyze_run`: compute the whole per-level analysis of a run once and store it in the run.

Policy while a run is training: refused (the engine process is alive); an interrupted or
cancelled run is analysed over its completed levels only, and the stored `levels` says how many,
so a later `analyze` notices a stale analysis and recomputes it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from core.analysis import motifs as mo
from core.analysis import structure as st
from core.analysis.store import AnalysisWriter, load_analysis
from core.analysis.summary import AnalysisSummary, PerformanceSummary, json_ready
from core.errors import MothError
from core.owner import held as claim_of
from core.runstore import StoredLevel
from core.schema import check_split

if TYPE_CHECKING:  # annotations only: the dataset reader is imported when an analysis runs
    from core.data import Scaler
    from core.dataset import Rows

#: Receives one line saying what the analysis is doing (the `analyze` command prints it).
StatusCallback = Callable[[str], None]


@dataclass(frozen=True)
class AnalysisParams:
    """What the analysis computes and on which rows (stored with the results)."""

    split: str = "test"
    """Held-out rows used for per-output error, noise and flight (the run's own row range)."""
    eval_samples: int = 20_000
    """Rows of that split for per-output error and noise (first valid rows; 0 means all)."""
    noise: tuple[float, ...] = (0.01, 0.03, 0.1)
    """Standard deviations of Gaussian noise added to the scaled inputs (range [-0.5, 0.5])."""
    flight_samples: int = 256
    """Held-out samples flown closed-loop through the simulator per network and level."""
    bins: int = 41
    """Histogram bins of surviving weight values per layer."""
    seed: int = 0
    """Seed of the input noise."""
    performance: bool = True
    """False: structure only (no dataset, no simulator)."""
    motif_samples: int = mo.DEFAULT_SAMPLES
    """Random networks of the motif null model per network and level (0: counts only, no z-scores)."""

    def check(self) -> "AnalysisParams":
        check_split(self.split)
        if self.eval_samples < 0 or self.flight_samples < 0:
            raise MothError("--eval-samples and --flight-samples must be 0 or positive")
        if any(not (math.isfinite(s) and s >= 0) for s in self.noise):
            raise MothError(f"bad --noise {list(self.noise)}: standard deviations must be finite and >= 0")
        if self.bins < 2:
            raise MothError("bins must be at least 2")
        if self.motif_samples < 0:
            raise MothError(f"bad --motif-samples {self.motif_samples}: 0 (counts only) or more random networks")
        return self


def _nanmedian(a: np.ndarray, axis) -> np.ndarray:
    """nanmedian without the warning for an all-NaN slice (every flight rejected: NaN is the answer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=axis)


@dataclass
class HeldOut:
    """The rows the analysis evaluates on: `rows` (core.dataset.Rows) and their scaled features."""

    x_s: np.ndarray   # (n, 10) float32
    y_s: np.ndarray   # (n, 7) float32
    rows: Rows        # states, controls, physical features
    scaler: Scaler    # the run's


def _held_out_rows(run, params: AnalysisParams) -> HeldOut:
    """The first usable rows of the run's rows of `params.split`, scaled with the run's scaler."""
    from core.data import Scaler
    from core.dataset import open_dataset

    dataset = run.attrs.get("dataset", "")
    if not dataset or not Path(dataset).exists():
        raise MothError(f"the dataset of run {run.run_id!r} ({dataset}) is not there: "
                        f"analyse with --structure-only, or restore the dataset")
    start, stop = run.row_ranges[params.split]
    want = max(params.eval_samples or (stop - start), params.flight_samples)
    rows = open_dataset(dataset).usable_rows(start, stop, limit=want, block=max(4096, want * 2))
    if len(rows) == 0:
        raise MothError(f"run {run.run_id!r}: the {params.split} split has no valid samples")
    scaler = Scaler.from_dict(run.attrs["scaler"])
    return HeldOut(scaler.scale_x(rows.x).astype(np.float32), scaler.scale_y(rows.y).astype(np.float32),
                   rows, scaler)


def analyze_run(run, params: AnalysisParams | None = None, *, force: bool = True,
                progress: StatusCallback | None = None) -> AnalysisSummary:
    """Analyse every completed level of `run` and store it under `<run>/analysis`; returns the summary.

    With `force=False` a complete analysis of the same levels and parameters is returned as is.
    """
    params = (params or AnalysisParams()).check()
    say = progress or (lambda text: None)
    owner = run.owner()
    if owner.alive and claim_of(run.path) is None:  # a writer holds it (the analyze command claims first)
        raise MothError(f"run {run.run_id!r} is in use by {owner.record.describe()}: analyse it once "
                        f"it has finished (or cancel it)")
    levels = run.levels_complete
    if levels < 1:
        raise MothError(f"run {run.run_id!r} has no completed level to analyse")
    stored = load_analysis(run)
    if (not force and stored is not None and stored.levels == levels
            and stored.params == json_ready(asdict(params))):
        return AnalysisSummary.from_dict(stored.summary)

    held = _held_out_rows(run, params) if params.performance else None
    scale = float(run.config.scale)
    sparsity = run.sparsity[:levels]
    structures, motifs, mse, noise, flight = [], [], [], [], []
    edges = None
    for level in range(levels):
        arrays = run.level(level)
        if edges is None:
            edges = st.histogram_edges(arrays.weights, params.bins)
        live, ghosts = st.ghost_free(arrays.weight_masks)
        structures.append(st.level_structure(arrays.weights, arrays.weight_masks,
                                             arrays.bias_masks, edges, ghosts=ghosts))
        motifs.append(mo.level_motifs(arrays.weight_masks, live, params.motif_samples, [params.seed, level]))
        if held is not None:
            mse_l, noise_l, flight_l = _performance(arrays, held, params, scale)
            mse.append(mse_l)
            noise.append(noise_l)
            flight.append(flight_l)
            say(f"level {level} ({sparsity[level]:.2f}): eval loss {np.median(mse_l.mean(axis=1)):.3g}, "
                f"flight {_nanmedian(flight_l[0], None):.3g} cm (median)")
        else:
            say(f"level {level} ({sparsity[level]:.2f}): structure")

    assert edges is not None  # set by level 0 (levels >= 1)
    writer = AnalysisWriter(run.path)
    remaining = np.stack([s.remaining for s in structures]).astype(np.float32)
    ghosts = np.stack([s.ghosts for s in structures])
    connections = np.stack([s.input_connections for s in structures])
    writer.array("remaining", remaining)
    writer.array("ghosts", ghosts)
    writer.array("input_connections", connections)
    for k, e in enumerate(edges):
        writer.array(f"weights/layer_{k}/edges", e)
        writer.array(f"weights/layer_{k}/hist", np.stack([s.hist[k] for s in structures]))
        writer.array(f"weights/layer_{k}/quantiles", np.stack([s.quantiles[k] for s in structures]))
        writer.array(f"weights/layer_{k}/moments", np.stack([s.moments[k] for s in structures]))
    for name in mo.ARRAYS:
        writer.array(f"motifs/{name}", np.stack([getattr(m, name) for m in motifs]))
    performance = None
    if held is not None:
        mse_a = np.stack(mse).astype(np.float32)                   # (L, N, 7)
        noise_a = np.stack(noise, axis=1).astype(np.float32)       # (S, L, N)
        pos, theta, phi, valid = (np.stack([f[i] for f in flight]) for i in range(4))
        writer.array("output_mse", mse_a)
        writer.array("noise/sigma", np.asarray(params.noise, np.float64))
        writer.array("noise/loss", noise_a)
        writer.array("closed_loop/position_cm", pos.astype(np.float32))
        writer.array("closed_loop/theta_rad", theta.astype(np.float32))
        writer.array("closed_loop/phi_rad", phi.astype(np.float32))
        writer.array("closed_loop/valid", valid)
        performance = PerformanceSummary(
            eval_rows=len(held.rows), flight_rows=int(min(params.flight_samples, len(held.rows))),
            output_names=run.attrs.get("output_names"),
            eval_loss_median=json_ready(np.median(mse_a.mean(axis=2), axis=1)),
            output_mse_median=json_ready(np.median(mse_a, axis=1)),
            noise_sigma=json_ready(params.noise),
            noise_loss_median=json_ready(np.median(noise_a, axis=2)),
            flight_position_cm_median=json_ready(_nanmedian(_nanmedian(pos, 2), 1)),
            flight_theta_rad_median=json_ready(_nanmedian(_nanmedian(theta, 2), 1)),
            flight_phi_rad_median=json_ready(_nanmedian(_nanmedian(phi, 2), 1)),
            flight_valid_fraction=json_ready(valid.mean(axis=(1, 2))),
            replay_position_cm_median=json_ready(_replay_floor(held, scale)))
    first_width = run.config.layer_sizes[1]
    summary = AnalysisSummary(
        levels=levels, sparsity=json_ready(sparsity),
        remaining_mean=json_ready(remaining.astype(np.float64).mean(axis=1)),
        ghosts_mean=json_ready(ghosts.mean(axis=1)),
        input_names=run.attrs.get("input_names"),
        input_connections_fraction=json_ready(connections.mean(axis=1) / first_width),
        weight_quantiles=json_ready([np.stack([s.quantiles[k] for s in structures]) for k in range(len(edges))]),
        quantile_levels=json_ready(st.QUANTILES),
        motifs=mo.motif_summary(motifs, params.motif_samples),
        performance=performance)
    writer.finish(summary=summary.to_dict(), params=json_ready(asdict(params)), levels=levels)
    return summary


def _performance(arrays: StoredLevel, held: HeldOut, params: AnalysisParams, scale: float):
    """One level: per-output MSE (N, 7), noise losses (S, N), closed-loop errors ((N, M) x 4)."""
    from core.analysis import performance as pf

    x_s, y_s, q0, qf = held.x_s, held.y_s, held.rows.initial, held.rows.final
    weights, biases = arrays.weights, arrays.biases
    pred_s = pf.ensemble_forward(x_s, weights, biases)
    mse = pf.output_mse(pred_s, y_s)
    noise = (pf.noise_losses(x_s, y_s, weights, biases, params.noise, params.seed)
             if params.noise else np.zeros((0, weights[0].shape[0])))
    m = min(params.flight_samples, len(x_s))
    pred = held.scaler.unscale_y(pred_s[:, :m])
    flight = pf.closed_loop(q0[:m], qf[:m], pf.controls_from_outputs(pred), scale)
    return mse, noise, flight


def _replay_floor(held: HeldOut, scale: float) -> float | None:
    """Median position error of flying the dataset's own controls: the simulator's agreement
    with the stored targets, i.e. the best any network could do in the closed-loop check."""
    from core.analysis import performance as pf

    q0, u, qf = held.rows.initial, held.rows.controls, held.rows.final
    pos, _, _, _ = pf.closed_loop(q0, qf, u[None], scale)
    return float(np.nanmedian(pos)) if np.isfinite(pos).any() else None
