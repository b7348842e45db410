"""Effect of the matmul precision option on the final losses: the same run in float32, tf32 and bf16.

    python benchmarks/precision.py [--runs DIR] [--samples 40000] [--nets 4] [--hidden 64,64,16]

Trains one small config (real simulated data, a short pruning schedule) once per precision with the
same seed, then reports per level the median over networks of the validation loss as the run stored
it (evaluated in the run's own precision) and re-evaluated from the stored weights in float64 numpy
(the contract's forward pass), so that training effects and evaluation rounding can be told apart.
"tf32" only changes anything on NVIDIA GPUs (Ampere and later); on a CPU it must equal float32.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

PRECISIONS = ("float32", "tf32", "bf16")


def float64_val_loss(run, data) -> np.ndarray:
    """(levels, N) MSE on the val split of the stored weights, in float64 (contract forward pass)."""
    x, y = data.splits["val"].x.astype(np.float64), data.splits["val"].y.astype(np.float64)
    out = np.zeros((run.levels_complete, run.nets))
    for level in range(run.levels_complete):
        arrays = run.level(level)
        for n in range(run.nets):
            h = x
            for k, (w, b) in enumerate(zip(arrays.weights, arrays.biases)):
                h = h @ w[n].astype(np.float64) + b[n].astype(np.float64)
                if k < len(arrays.weights) - 1:
                    h = np.tanh(h)
            out[level, n] = np.mean((h - y) ** 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=None, help="run store (default: a temporary one)")
    parser.add_argument("--samples", type=int, default=40_000)
    parser.add_argument("--nets", type=int, default=4)
    parser.add_argument("--hidden", default="64,64,16")
    parser.add_argument("--epochs", type=float, default=3.0, help="epochs_per_level")
    parser.add_argument("--schedule", default="0.5,0.8,0.9,0.95")
    args = parser.parse_args()

    from core.cli import main as cli
    from core.data import prepare
    from core.runstore import open_run

    runs = args.runs or Path(tempfile.mkdtemp(prefix="mothtui-precision-"))
    common = ["--preset", "quick", "--runs", str(runs), "--quiet",
              "--set", f"samples={args.samples}", "--set", f"nets={args.nets}",
              "--set", f"hidden=[{args.hidden}]", "--set", f"schedule=[{args.schedule}]",
              "--set", f"epochs_per_level={args.epochs}"]
    result = {}
    for precision in PRECISIONS:
        run_id = f"precision-{precision}"
        if not (runs / run_id).exists():
            code = cli(["train", *common, "--set", f"precision={precision}", "--id", run_id])
            if code:
                raise SystemExit(code)
        run = open_run(runs, run_id)
        data = prepare(run.attrs["dataset"], run.config.splits, scaler=run.attrs["scaler"])
        result[precision] = {"sparsity": run.sparsity.tolist(),
                             "stored_val": np.median(run.losses("val"), axis=1).tolist(),
                             "float64_val": np.median(float64_val_loss(run, data), axis=1).tolist()}
    ref = result["float32"]
    print(f"median val loss over {args.nets} networks, 10-{args.hidden.replace(',', '-')}-7, "
          f"{args.samples} samples, {args.epochs:g} epochs per level")
    print("\n| sparsity | " + " | ".join(f"{p} (stored / float64)" for p in PRECISIONS) + " | bf16 / float32 |")
    print("|---:|" + "---:|" * (len(PRECISIONS) + 1))
    for level, sparsity in enumerate(ref["sparsity"]):
        cells = [f"{result[p]['stored_val'][level]:.3e} / {result[p]['float64_val'][level]:.3e}" for p in PRECISIONS]
        ratio = result["bf16"]["float64_val"][level] / ref["float64_val"][level]
        print(f"| {sparsity:.2f} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
