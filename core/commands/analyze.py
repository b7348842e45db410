"""`mothtui analyze RUN_ID [--noise S] [--flight-samples M] [--eval-samples N] [--structure-only]
[--motif-samples N] [--force] [--json]`: compute (or show the stored) per-level analysis of a run.

Refuses while the run's engine is alive; otherwise analyses the completed levels and stores the
results in `<run>/analysis` (see core/analysis/store.py), so the UI shows them instantly.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from core.analysis import AnalysisParams, analyze_run, load_analysis
from core.analysis.store import stored_array
from core.analysis.summary import AnalysisSummary, MotifSummary
from core.analysis.motifs import load_motifs
from core.cli import json_option, resolve_runs, run_id_argument, runs_option
from core.formatting import fmt_value
from core.owner import claim
from core.runstore import open_run, run_path
from core.schema import INPUT_NAMES
from core.select import check_threshold, select_run


def _params(args) -> AnalysisParams:
    values: dict[str, Any] = {}
    if args.noise is not None:
        values["noise"] = (float(args.noise),)
    if getattr(args, "flight_samples", None) is not None:
        values["flight_samples"] = args.flight_samples
    if getattr(args, "eval_samples", None) is not None:
        values["eval_samples"] = args.eval_samples
    if getattr(args, "structure_only", False):
        values["performance"] = False
    if getattr(args, "motif_samples", None) is not None:
        values["motif_samples"] = args.motif_samples
    return AnalysisParams(**values)



def chosen_vs_level0(run, threshold: float | None = None) -> list[dict]:
    """Per chosen network (val split): median closed-loop errors at its chosen level and at level 0."""
    stored = load_analysis(run)
    if stored is None or "closed_loop/position_cm" not in stored.group:
        return []
    group = stored.group
    arrays = {name: stored_array(group, f"closed_loop/{name}")
              for name in ("position_cm", "theta_rad", "phi_rad")}
    rows = []
    analysed = stored.levels or 0
    for choice in select_run(run, threshold).chosen:
        if choice.level is None or choice.level >= analysed:  # level: never None for a chosen network
            continue
        row = {"network": choice.network, "level": choice.level, "sparsity": choice.sparsity}
        for name, a in arrays.items():
            for tag, lvl in (("chosen", choice.level), ("level0", 0)):
                v = a[lvl, choice.network]
                row[f"{name}_{tag}"] = float(np.nanmedian(v)) if np.isfinite(v).any() else None
        rows.append(row)
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_id_argument(parser)
    runs_option(parser)
    parser.add_argument("--noise", type=float, default=None, help="input noise std (scaled units)")
    parser.add_argument("--force", action="store_true", help="recompute even if stored")
    parser.add_argument("--flight-samples", type=int, default=None, metavar="M",
                        help="held-out samples flown closed-loop per network and level (default 256)")
    parser.add_argument("--eval-samples", type=int, default=None, metavar="N",
                        help="held-out rows for per-output error and noise (default 20000; 0: all)")
    parser.add_argument("--structure-only", action="store_true",
                        help="only what survives pruning (no dataset, no simulator)")
    parser.add_argument("--motif-samples", type=int, default=None, metavar="N",
                        help="random networks per network and level for the motif z-scores (default 1000; 0: counts only)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="report flight at the levels chosen at this val loss (default: the run's)")
    json_option(parser)


def run(args) -> int:
    params = _params(args)
    threshold = None if getattr(args, "threshold", None) is None else check_threshold(args.threshold)
    runs_dir = resolve_runs(args)
    with claim(run_path(runs_dir, args.run_id), run_id=args.run_id):  # one writer: never beside training
        run_store = open_run(runs_dir, args.run_id)
        say = None if args.json else (lambda text: print(text, file=sys.stderr, flush=True))
        summary = analyze_run(run_store, params, force=args.force, progress=say)
    flights = chosen_vs_level0(run_store, threshold)
    if args.json:
        stored = load_analysis(run_store)
        assert stored is not None  # analyze_run has just completed it
        print(json.dumps({"run": run_store.run_id, "levels": summary.levels,
                          "params": stored.params, "summary": summary.to_dict(),
                          "chosen_vs_level0": flights, "motifs": load_motifs(run_store)}))
        return 0
    _print_table(run_store, summary, flights)
    return 0


def _print_table(run_store, s: AnalysisSummary, flights: list[dict]) -> None:
    perf = s.performance
    print(f"run {run_store.run_id} · {s.levels} levels analysed"
          + (f" · {perf.eval_rows} held-out rows, {perf.flight_rows} flown" if perf else " · structure only"))
    head = f"{'level':>5} {'target':>6} {'remaining/layer':<24} {'ghosts/hidden':<14}"
    if perf:
        sig = "/".join(f"{x:g}" for x in perf.noise_sigma)
        head += f" {'loss':>8} {'noise ' + sig:>16} {'flight cm':>9} {'theta':>7} {'phi':>7}"
    print(head)
    for lvl in range(s.levels):
        rem = " ".join(f"{x:.2f}" for x in s.remaining_mean[lvl])
        gh = " ".join(f"{x:.1f}" for x in s.ghosts_mean[lvl])
        line = f"{lvl:>5} {s.sparsity[lvl]:>6.2f} {rem:<24} {gh:<14}"
        if perf:
            noise = "/".join(fmt_value(row[lvl], ".2g") for row in perf.noise_loss_median)
            line += (f" {fmt_value(perf.eval_loss_median[lvl]):>8} {noise:>16} "
                     f"{fmt_value(perf.flight_position_cm_median[lvl]):>9} "
                     f"{fmt_value(perf.flight_theta_rad_median[lvl]):>7} {fmt_value(perf.flight_phi_rad_median[lvl]):>7}")
        print(line)
    # Inputs are most telling at the level the pick lands on (at the last level nothing is left).
    chosen = sorted(f["level"] for f in flights)
    level = chosen[len(chosen) // 2] if chosen else s.levels - 1
    kept = s.input_connections_fraction[level]
    names = s.input_names or INPUT_NAMES
    order = sorted(range(len(kept)), key=lambda i: kept[i])
    print(f"first-layer connections left at level {level}"
          + (" (median chosen level)" if chosen else "") + ", fewest first: "
          + ", ".join(f"{names[i]} {kept[i]:.2f}" for i in order))
    if perf:
        print(f"flying the dataset's own controls misses by {fmt_value(perf.replay_position_cm_median)} cm "
              f"(median): the floor of the flight error")
    _print_motifs(s.motifs)
    for f in flights:
        print(f"net {f['network']:>3} chosen level {f['level']} ({f['sparsity']:.2f}): flight "
              f"{fmt_value(f['position_cm_chosen'])} cm / theta {fmt_value(f['theta_rad_chosen'])} rad vs level 0 "
              f"{fmt_value(f['position_cm_level0'])} cm / {fmt_value(f['theta_rad_level0'])} rad")


def _print_motifs(motifs: MotifSummary | None) -> None:
    """Median z-score over the networks of each motif per level (the counts are in --json)."""
    if motifs is None:
        return
    names, z, samples = motifs.names, motifs.z_median, motifs.samples
    if not samples:
        print("motifs: counted without random networks (--motif-samples 0): no z-scores; --json has the counts")
        return
    print(f"motif z-scores, median over networks, against {samples:,} random networks each "
          f"(ghost units removed; edges are fixed by the null model, so no z):")
    print(f"{'level':>5} " + " ".join(f"{n:>11}" for n in names[1:]))
    for lvl, row in enumerate(z):
        print(f"{lvl:>5} " + " ".join(f"{fmt_value(v, '.2f'):>11}" for v in row[1:]))
