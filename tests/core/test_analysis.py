"""Analysis: structure statistics checked against the stored masks and weights, the store
protocol (own group, completion marker last, never damaging the run, refused while training),
and the performance half (per-output error, noise, closed-loop flight) on a really trained run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from core.analysis import AnalysisParams, analyze_run, load_analysis, read_array
from core.analysis.store import AnalysisWriter
from core.analysis.summary import AnalysisSummary
from core.cli import main
from core.errors import MothError
from core.runstore import open_run
from core.schema import SPLITS
from fixture_runs import make_fixture_run

REPO = Path(__file__).resolve().parents[2]

STRUCTURE = AnalysisParams(performance=False)
#: The stored summary's keys, in order (docs/store-format.md): the structure's, then the motifs'.
STRUCTURE_KEYS = ["levels", "sparsity", "remaining_mean", "ghosts_mean", "input_names", "input_connections_fraction",
                  "weight_quantiles", "quantile_levels", "motif_names", "motif_samples", "motif_counts_median",
                  "motif_live_median", "motif_z_median"]
#: Then, unless structure only, the performance's.
PERFORMANCE_KEYS = ["eval_rows", "flight_rows", "output_names", "eval_loss_median", "output_mse_median", "noise_sigma",
                    "noise_loss_median", "flight_position_cm_median", "flight_theta_rad_median",
                    "flight_phi_rad_median", "flight_valid_fraction", "replay_position_cm_median"]


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
    assert remaining.shape == (levels, 4, 3) and summary.levels == levels
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
    np.testing.assert_allclose(summary.input_connections_fraction[2],
                               connections[2].mean(axis=0) / 12)


def test_completion_marker_and_reuse(fixture_run):
    assert load_analysis(fixture_run) is None
    half = AnalysisWriter(fixture_run.path)            # an analysis that died half-way
    half.array("remaining", np.zeros((1, 1, 1)))
    assert load_analysis(fixture_run) is None and read_array(fixture_run, "remaining") is None
    summary = analyze_run(fixture_run, STRUCTURE)
    stored = load_analysis(fixture_run)
    assert stored.levels == fixture_run.levels_complete and stored.params["performance"] is False
    # the stored form (and analyze --json's), key for key and in order; no performance keys
    assert stored.summary == summary.to_dict() and list(stored.summary) == STRUCTURE_KEYS
    marker = fixture_run.path / "analysis" / "zarr.json"
    stamp = marker.stat().st_mtime_ns
    assert analyze_run(fixture_run, STRUCTURE, force=False) == summary   # same levels and parameters: reused
    assert marker.stat().st_mtime_ns == stamp


def test_partial_run_analyses_completed_levels_and_stale_is_redone(runs_dir):
    run = make_fixture_run(runs_dir, "p", nets=2, hidden=(8, 8))
    full = run.levels_complete
    run.set_attrs(levels_complete=2, status="cancelled")   # an interrupted run: 2 levels trusted
    assert analyze_run(open_run(runs_dir, "p"), STRUCTURE).levels == 2
    assert read_array(run, "remaining").shape[0] == 2
    run.set_attrs(levels_complete=full, status="done")      # ... later resumed to the end
    assert analyze_run(open_run(runs_dir, "p"), STRUCTURE, force=False).levels == full


def test_refused_while_training_and_bad_input(fixture_run, runs_dir, capsys):
    # another process holds the run, as a training engine does (core.owner)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from core.owner import claim; "
                               f"claim({str(fixture_run.path)!r}, 'mothtui train'); print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(MothError, match=r"in use by mothtui train \(pid \d+ on "):
            analyze_run(fixture_run, STRUCTURE)
        assert main(["analyze", "r", "--runs", str(runs_dir), "--structure-only"]) == 2
        assert f"in use by mothtui train (pid {holder.pid} on " in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    for argv, needle in [(["analyze", "nope"], "no run 'nope'"),
                         (["analyze", "r"], "dataset"),                # the fixture has no dataset
                         (["analyze", "r", "--noise", "nan"], "noise")]:
        assert main([*argv, "--runs", str(runs_dir)]) != 0
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (fixture_run.path / "analysis").exists()


def test_a_broken_dataset_is_one_line_and_leaves_the_run_alone(fixture_run, runs_dir, tmp_path, capsys):
    """The analysis reads its held-out rows through the dataset store's one reader: a store with
    an array missing, or a damaged chunk in the run's rows, is one line on stderr, exit 2."""
    import shutil

    from engine_fixtures import write_dataset

    dataset = write_dataset(tmp_path / "dataset", n=1000, seed=2)
    fixture_run.set_attrs(dataset=str(dataset))         # its rows: train 0-640, val 640-800, test 800-1000
    before = _run_files(fixture_run.path)
    chunk = next(p for p in (dataset / "final").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(b"\x00garbage" * 8)
    argv = ["analyze", "r", "--runs", str(runs_dir), "--flight-samples", "8", "--eval-samples", "16"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "corrupt (rows 800-" in err, err
    shutil.rmtree(dataset / "final")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "array 'final' missing" in err, err
    assert _run_files(fixture_run.path) == before and not (fixture_run.path / "analysis").exists()


def test_analysis_command_structure_only(fixture_run, runs_dir, capsys):
    assert main(["analyze", "r", "--runs", str(runs_dir), "--structure-only"]) == 0
    out = capsys.readouterr().out
    assert "first-layer connections" in out and "structure only" in out


def test_importing_analysis_does_not_import_jax():
    code = "import sys, core.analysis, core.commands.analyze; print('jax' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ---- the performance half, on a really trained run ----------------------------------------

#: A small network trained long enough by the real engine to fly (val loss ~5e-4 in ~15 s).
TRAIN_SETTINGS = ["samples=16000", "nets=1", "hidden=[96,96]", "max_steps=8000", "epochs_per_level=1000",
                  "learning_rate=3e-3", "schedule=[0.5]", "early_stop_window=2000",
                  "early_stop_every=2000", "early_stop_ratio=1.0", "batch=256", "steps_per_call=2000"]
FLIGHT = AnalysisParams(eval_samples=0, flight_samples=128, noise=(0.0, 0.03))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(runs dir, trained run, untrained run) sharing one simulated dataset.

    The trained run comes from `mothtui train` in a subprocess with one CPU device (the engine
    would otherwise pad one network to the 4 forced test devices). The untrained run holds the
    seed's initialisation (weights N(0, init_std), biases 0) on the same dataset, split and scaler.
    """
    from core.dataset import create_dataset
    from core.runstore import Run

    base = tmp_path_factory.mktemp("flight")
    dataset = create_dataset(base / "dataset", samples=16000, seed=0)
    runs = base / "runs"
    settings = [a for s in (*TRAIN_SETTINGS, f"dataset={dataset}") for a in ("--set", s)]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-m", "core", "train", "--preset", "smoke", *settings,
                           "--runs", str(runs), "--id", "trained", "--quiet"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    run = open_run(runs, "trained")
    rng = np.random.default_rng(1)
    sizes = run.config.layer_sizes
    untrained = Run.create(runs / "untrained", run.config, dataset=run.attrs["dataset"],
                           split=run.attrs["split"], scaler=run.attrs["scaler"])
    weights = [rng.normal(0, run.config.init_std, (1, a, b)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    biases = [np.zeros((1, b), np.float32) for b in sizes[1:]]
    nan = {s: np.full(1, np.nan) for s in SPLITS}
    untrained.write_level(0, weights, [np.ones(w.shape, bool) for w in weights], biases,
                          [np.ones(b.shape, bool) for b in biases], nan)
    untrained.complete_level(0)
    untrained.set_status("done")
    return runs, analyze_run(run, FLIGHT), analyze_run(open_run(runs, "untrained"), FLIGHT)


@pytest.mark.slow
def test_trained_network_flies_far_better_than_an_untrained_one(trained):
    runs, good_summary, bad_summary = trained
    good, bad = good_summary.performance.to_dict(), bad_summary.performance.to_dict()
    assert good["replay_position_cm_median"] < 1e-3        # the simulator agrees with its own data
    for key in ("flight_position_cm_median", "flight_theta_rad_median", "flight_phi_rad_median"):
        assert good[key][0] < 0.2 * bad[key][0], (key, good[key][0], bad[key][0])
    assert good["flight_position_cm_median"][0] < 1.0      # cm, after one wing stroke
    assert good["flight_valid_fraction"][0] > 0.9


@pytest.mark.slow
def test_closed_loop_recomputed_from_the_exported_network(trained, tmp_path):
    """The stored flight errors equal flying an exported file's predictions through the simulator."""
    from core.dataset import features, open_dataset
    from core.export import export_run, load
    from core.sim import simulate_checked

    runs, _, _ = trained
    run = open_run(runs, "trained")
    export_run(run, tmp_path / "out", level=1)
    net = load(tmp_path / "out", 0)
    dataset = open_dataset(run.attrs["dataset"])
    start, stop = run.row_ranges["test"]
    valid = np.asarray(dataset.valid[start:stop])
    q0, u, qf = (np.asarray(array[start:stop], np.float64)[valid][:128]
                 for array in (dataset.initial, dataset.controls, dataset.final))
    x, _ = features(q0, u, qf)
    y = net.predict(x)
    controls = np.stack([np.hypot(y[:, 0], y[:, 1]), np.arctan2(y[:, 1], y[:, 0]), y[:, 2]], axis=1)
    reached, ok = simulate_checked(q0, controls, scale=run.config.scale)
    position = np.hypot(reached[:, 0] - qf[:, 0], reached[:, 2] - qf[:, 2])
    stored = read_array(run, "closed_loop/position_cm")[1, 0]
    assert ok.all()
    # float32 forward (stored) vs float64 (export): the same flights to well under a millimetre
    np.testing.assert_allclose(stored, position, rtol=0.05, atol=0.02)
    theta = np.abs(reached[:, 4] - qf[:, 4])
    np.testing.assert_allclose(read_array(run, "closed_loop/theta_rad")[1, 0], theta, rtol=0.05, atol=0.01)


@pytest.mark.slow
def test_per_output_error_and_noise_agree_with_the_engines_losses(trained):
    runs, summary, _ = trained
    run = open_run(runs, "trained")
    mse = read_array(run, "output_mse")                     # (L, N, 7) over the whole test split
    np.testing.assert_allclose(mse.mean(axis=2), run.losses("test"), rtol=2e-3)
    noise = read_array(run, "noise/loss")                   # sigma 0, then 0.03
    np.testing.assert_allclose(noise[0], mse.mean(axis=2), rtol=1e-5)
    assert np.all(noise[1] > 2 * noise[0])
    start, stop = run.row_ranges["test"]
    valid = zarr.open_group(run.attrs["dataset"], mode="r")["valid"][start:stop]
    assert summary.performance.eval_rows == int(np.sum(valid))      # eval_samples=0: the whole split


@pytest.mark.slow
def test_analyze_command_json_reports_chosen_levels(trained, capsys):
    runs, _, _ = trained
    assert main(["analyze", "trained", "--runs", str(runs), "--json", "--eval-samples", "0",
                 "--flight-samples", "128", "--noise", "0.03"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["run"] == "trained" and document["levels"] == 2
    assert document["params"]["noise"] == [0.03]
    assert list(document["summary"]) == STRUCTURE_KEYS + PERFORMANCE_KEYS
    assert AnalysisSummary.from_dict(document["summary"]).to_dict() == document["summary"]
    flights = document["chosen_vs_level0"]
    assert flights and {"position_cm_chosen", "position_cm_level0"} <= set(flights[0])
    # the motifs of the really trained network: counts by matrix products, z against 1,000 random networks
    motifs = document["motifs"]
    assert motifs["names"] == ["edges", "diverging2", "converging2", "chain2", "diverging3", "converging3"]
    assert motifs["samples"] == 1000 and np.asarray(motifs["counts"]).shape == (2, 1, 6)
    run = open_run(runs, "trained")
    for level in range(2):
        masks = [m[0].astype(np.int64) for m in run.level(level).weight_masks]
        # (M^T M)[j, k]: sources feeding both targets j and k, i.e. pairs of connections leaving one unit
        pairs_out = sum((np.sum(m.T @ m) - np.trace(m.T @ m)) // 2 for m in masks)
        pairs_in = sum((np.sum(m @ m.T) - np.trace(m @ m.T)) // 2 for m in masks)
        paths = sum(np.sum(a @ b) for a, b in zip(masks, masks[1:]))
        assert motifs["counts"][level][0][:4] == [sum(m.sum() for m in masks), pairs_out, pairs_in, paths]
    z = np.asarray(motifs["z"], dtype=float)
    assert np.isnan(z[:, :, 0]).all() and np.isfinite(z[1, :, 1:]).all()
