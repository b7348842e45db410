"""Does evaluating the training split on a fixed subsample (`eval_train_rows`) move the chosen levels?

    python benchmarks/eval_subsample.py OUT_DIR [--preset quick] [--rows 25000] [--set k=v ...]

Trains the same config and seed twice, once with every training row evaluated at each level
(`eval_train_rows = 0`) and once with the first `--rows` of them, then compares:

- everything but `loss/train` (weights, masks, val and test losses, steps): must be identical, since
  the evaluation never feeds back into training;
- the per-network chosen level at the run's threshold on the val split (the selection `mothtui select`
  makes by default) and on the train split (`--split train`, the only selection the cut can touch);
- how far the subsample's train loss is from the whole split's (median and largest relative difference).

Prints one JSON document and writes it to OUT_DIR/eval_subsample.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _mothtui(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise SystemExit(f"mothtui {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--rows", type=int, default=25_000, help="eval_train_rows of the cut run")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from core.runstore import open_run

    runs = args.out / "runs"
    sets = [a for s in args.overrides for a in ("--set", s)]
    for name, rows in (("whole", 0), ("cut", args.rows)):
        if not (runs / name).exists():
            _mothtui("train", "--preset", args.preset, *sets, "--set", f"eval_train_rows={rows}", "--runs", str(runs),
                     "--id", name, "--quiet")
    whole, cut = open_run(runs, "whole"), open_run(runs, "cut")
    same = {}
    for key in ("loss/val", "loss/test", "train/steps", "layer_0/weight", f"layer_{whole.n_layers - 1}/weight"):
        same[key] = bool(np.array_equal(np.asarray(whole.group[key][:]), np.asarray(cut.group[key][:]), equal_nan=True))
    full, part = np.asarray(whole.group["loss/train"][:]), np.asarray(cut.group["loss/train"][:])
    rel = np.abs(part - full) / np.abs(full)
    picks = {}
    for split in ("val", "train"):
        a = json.loads(_mothtui("select", "whole", "--split", split, "--runs", str(runs), "--json"))
        b = json.loads(_mothtui("select", "cut", "--split", split, "--runs", str(runs), "--json"))
        key = next(k for k in ("choices", "networks", "nets") if k in a)
        la = [c.get("level") if isinstance(c, dict) else c for c in a[key]]
        lb = [c.get("level") if isinstance(c, dict) else c for c in b[key]]
        picks[split] = {"whole": la, "cut": lb, "moved": sum(x != y for x, y in zip(la, lb))}
    report = {"preset": args.preset, "overrides": args.overrides, "eval_train_rows": args.rows,
              "identical_but_train_loss": same, "train_loss_relative_difference":
              {"median": float(np.nanmedian(rel)), "max": float(np.nanmax(rel))}, "chosen_levels": picks}
    (args.out / "eval_subsample.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
