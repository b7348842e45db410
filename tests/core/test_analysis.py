"""Analysis: structure statistics checked against the stored masks and weights, the store
protocol (own group, completion marker last, never damaging the run, refused while training),
and the performance half (per-output error, noise, closed-loop flight) on a really trained run."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from core.analysis import AnalysisParams, analyze_run, load_analysis, read_array
from core.analysis.store import AnalysisWriter
from core.cli import main
from core.errors import MothError
from core.runstore import open_run
from fixture_runs import make_fixture_run

STRUCTURE = AnalysisParams(performance=False)


def _ghosts_by_hand(weight_masks, bias_masks):
    """Ghost units per hidden layer, iterated to a fixed point, from the masks alone."""
    wm = [m.copy() for m in weight_masks]
    alive = [np.ones(m.shape[1], bool) for m in wm[:-1]]
    changed = True
    while changed:
        changed = False
        for h in range(len(alive)):
            dead = alive[h] & (~wm[h].any(axis=0) | ~wm[h + 1].any(axis=1))
            if dead.any():
                alive[h] &= ~dead
                wm[h][:, dead] = False
                wm[h + 1][dead, :] = False
                changed = True
    return [int((~a).sum()) for a in alive]


def _run_files(path: Path) -> dict[str, str]:
    """Digest of every file of the run outside the analysis group."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and "analysis" not in p.parts}


@pytest.fixture
def fixture_run(runs_dir):
    return make_fixture_run(runs_dir, "r", nets=4, hidden=(12, 8), schedule=(0.5, 0.8, 0.9, 0.95), seed=5)


def test_structure_matches_the_stored_masks_and_weights(fixture_run):
    before = _run_files(fixture_run.path)
    summary = analyze_run(fixture_run, STRUCTURE)
    assert _run_files(fixture_run.path) == before, "analysis must not touch the run's own files"
    raw = zarr.open_group(fixture_run.path, mode="r")
    levels = raw.attrs["levels_complete"]
    remaining = read_array(fixture_run, "remaining")
    connections = read_array(fixture_run, "input_connections")
    ghosts = read_array(fixture_run, "ghosts")
    assert remaining.shape == (levels, 4, 3) and summary["levels"] == levels
    for level in range(levels):
        masks = [np.asarray(raw[f"layer_{k}/weight_mask"][level]) for k in range(3)]
        bias_masks = [np.asarray(raw[f"layer_{k}/bias_mask"][level]) for k in range(3)]
        weights = [np.asarray(raw[f"layer_{k}/weight"][level]) for k in range(3)]
        for k, m in enumerate(masks):
            np.testing.assert_allclose(remaining[level, :, k], m.mean(axis=(1, 2)), rtol=1e-6)
            np.testing.assert_allclose(remaining[level, :, k], 1 - raw["sparsity"][level], atol=0.02)
            alive = weights[k][m]
            hist = read_array(fixture_run, f"weights/layer_{k}/hist")[level]
            assert hist.sum() == alive.size
            quantiles = read_array(fixture_run, f"weights/layer_{k}/quantiles")[level]
            np.testing.assert_allclose(quantiles, np.quantile(alive, [0.05, 0.25, 0.5, 0.75, 0.95]),
                                       rtol=1e-6)
        np.testing.assert_array_equal(connections[level], masks[0].sum(axis=2))
        for net in range(4):
            assert list(ghosts[level, net]) == _ghosts_by_hand([m[net] for m in masks],
                                                               [b[net] for b in bias_masks])
    assert np.all(ghosts[0] == 0) and np.any(ghosts[-1] > 0)
    np.testing.assert_allclose(summary["input_connections_fraction"][2],
                               connections[2].mean(axis=0) / 12)


def test_completion_marker_and_reuse(fixture_run):
    assert load_analysis(fixture_run) is None
    half = AnalysisWriter(fixture_run.path)            # an analysis that died half-way
    half.array("remaining", np.zeros((1, 1, 1)))
    assert load_analysis(fixture_run) is None and read_array(fixture_run, "remaining") is None
    analyze_run(fixture_run, STRUCTURE)
    stored = load_analysis(fixture_run)
    assert stored["levels"] == fixture_run.levels_complete and stored["params"]["performance"] is False
    marker = fixture_run.path / "analysis" / "zarr.json"
    stamp = marker.stat().st_mtime_ns
    analyze_run(fixture_run, STRUCTURE, force=False)   # same levels and parameters: reused
    assert marker.stat().st_mtime_ns == stamp


def test_partial_run_analyses_completed_levels_and_stale_is_redone(runs_dir):
    run = make_fixture_run(runs_dir, "p", nets=2, hidden=(8, 8))
    full = run.levels_complete
    run.set_attrs(levels_complete=2, status="cancelled")   # an interrupted run: 2 levels trusted
    assert analyze_run(open_run(runs_dir, "p"), STRUCTURE)["levels"] == 2
    assert read_array(run, "remaining").shape[0] == 2
    run.set_attrs(levels_complete=full, status="done")      # ... later resumed to the end
    assert analyze_run(open_run(runs_dir, "p"), STRUCTURE, force=False)["levels"] == full


def test_refused_while_training_and_bad_input(fixture_run, runs_dir, capsys):
    fixture_run.write_pid(os.getpid())                 # this process stands in for a live engine
    with pytest.raises(MothError, match="still training"):
        analyze_run(fixture_run, STRUCTURE)
    assert main(["analyze", "r", "--runs", str(runs_dir), "--structure-only"]) != 0
    assert "still training" in capsys.readouterr().err
    fixture_run.clear_pid()
    for argv, needle in [(["analyze", "nope"], "no run 'nope'"),
                         (["analyze", "r"], "dataset"),                # the fixture has no dataset
                         (["analyze", "r", "--noise", "nan"], "noise")]:
        assert main([*argv, "--runs", str(runs_dir)]) != 0
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (fixture_run.path / "analysis").exists()


def test_analysis_command_structure_only(fixture_run, runs_dir, capsys):
    assert main(["analyze", "r", "--runs", str(runs_dir), "--structure-only"]) == 0
    out = capsys.readouterr().out
    assert "first-layer connections" in out and "structure only" in out


def test_importing_analysis_does_not_import_jax():
    code = "import sys, core.analysis, core.commands.analyze; print('jax' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
