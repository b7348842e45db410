"""SVG snapshots of the study workbench's screens at 80x24 and 120x40 (pytest-textual-snapshot).

The fixture store of tests/tui/conftest.py, plus, for `alpha`, a stored analysis and extrapolation
(deterministic numbers derived from its losses, written through the analysis store's writer) and
the events of a level in training (the training curve). Update after an intended change with
`pytest tests/tui/test_study_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.analysis.store import EXTRAPOLATION, AnalysisWriter
from core.events import EVENTS_FILE, make
from core.runstore import open_run

from fixture_runs import make_fixture_run
from tui.conftest import build_store
from tui.helpers import make_app, snapshot_env
from tui.test_snapshots import steps

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


def add_results(runs_dir: Path) -> None:
    """A stored analysis and extrapolation of `alpha`, and the events of its last level in training."""
    run = open_run(runs_dir, "alpha")
    loss = run.losses("val").astype(float)
    levels = loss.shape[0]
    med = np.median(loss, axis=1)
    sparsity = run.sparsity[:levels].tolist()
    analysis = AnalysisWriter(run.path)
    analysis.finish(levels=levels, params={}, summary={
        "levels": levels, "sparsity": sparsity,
        "remaining_mean": [[1 - s] * 3 for s in sparsity], "ghosts_mean": [[0.0, float(i)] for i in range(levels)],
        "eval_loss_median": med.tolist(), "noise_sigma": [0.01, 0.1],
        "noise_loss_median": [(med * 1.5).tolist(), (med * 8 + 1e-3).tolist()],
        "flight_position_cm_median": (0.05 + 40 * med).tolist(), "flight_valid_fraction": [1.0] * levels,
        "replay_position_cm_median": 0.01,
        "input_names": run.attrs["input_names"],
        "input_connections_fraction": [[1 - s] * 10 for s in sparsity],
        "motif_names": ["edges", "diverging2", "converging2", "chain2", "diverging3", "converging3"],
        "motif_samples": 1000,
        "motif_z_median": [[None, 4 * s - 1, 3 * s - 0.5, -2 * s, 5 * s - 1.5, 2.5 * s] for s in sparsity],
    })
    scales = AnalysisWriter(run.path, EXTRAPOLATION)
    scales.finish(levels=levels, params={"samples": 1000, "seed": 1}, summary={
        "scales": [0.5, 2.0], "levels": levels, "sparsity": sparsity, "rows": [890, 1000],
        "valid_fraction": [0.89, 1.0], "loss_median": [(med * 270).tolist(), (med * 245).tolist()],
        "test_loss_median": (med * 1.05).tolist(), "level0_test_median": float(med[0] * 1.05),
        "ratio_to_level0": [270 / 1.05, 245 / 1.05]})
    records = [make("run_start", 1_799_999_000.0, run="alpha", nets=4, levels=5, pid=None, resumed_from=3),
               make("level_start", 1_799_999_001.0, level=4, sparsity=0.95, max_steps=2000)]
    for i in range(1, 21):
        base = 0.2 * np.exp(-i / 6) + 2e-3
        records.append(make("progress", 1_799_999_001.0 + i, level=4, step=100 * i, max_steps=2000, active=4,
                            loss=[base * f for f in (0.8, 1.0, 1.1, 1.6)], samples_per_s=50_000.0, eta_s=None))
    (run.path / EVENTS_FILE).write_text("".join(r.to_json() + "\n" for r in records))


def add_global_run(runs_dir: Path) -> None:
    """`gamma`: an older run pruned globally at body scale 2 (the runs list's setup column tells it apart)."""
    run = make_fixture_run(runs_dir, "gamma", nets=3, seed=2, created="2026-11-20T08:00:00+00:00")
    run.set_attrs(config={**run.attrs["config"], "pruning": "global", "scale": 2.0})


@pytest.fixture
def app(tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    build_store(tmp_path / "runs")
    add_results(tmp_path / "runs")
    add_global_run(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    snapshot_env(tmp_path, monkeypatch)
    return make_app(Path("runs"))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("keys", [("space", "space"), ("space", "space", "C"), ("space", "space", "C", "2"),
                                  ("space", "space", "C", "3"), ("space", "space", "C", "5")],
                         ids=["marked", "compare-loss", "compare-chosen", "compare-config", "compare-scales"])
def test_compare(snap_compare, app, keys, size):
    assert snap_compare(app, terminal_size=SIZES[size], run_before=steps(*keys, wait=0.3))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("tab", ["1", "4", "5", "6"], ids=["training-curve", "analysis-plots", "scales", "motifs"])
def test_run_screen(snap_compare, app, tab, size):
    if tab == "1" and SIZES[size] == (80, 24):
        pytest.skip("the training curve at 80x24 renders with timing-dependent y ticks (throttled redraw); "
                    "its 120x40 snapshot and tests/tui/test_study.py cover it")
    # the events file is over one 4 KiB tail span: give the 4 Hz tail time to read all of it
    assert snap_compare(app, terminal_size=SIZES[size], run_before=steps("enter", tab, wait=1.0))
