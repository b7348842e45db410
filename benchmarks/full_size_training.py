"""Level 0 at the paper's size: validation loss vs step for candidate initialisations and learning rates.

Trains the dense 10-400-400-400-16-7 networks with the real engine's compiled chunks (early
stopping out of reach) and evaluates the whole validation split every `--every` steps, so the
curves show plateaus as they happen. Used to choose the corrected protocol's defaults
(issue 9, docs/science.md).

    python benchmarks/full_size_training.py --samples 1000000 --steps 20000 --nets 2 \
        --candidates "seed:normal:0.2:5e-4" "narrow:normal:0.05:5e-4" "lecun:lecun:0:5e-4"

Each candidate is NAME:INIT:INIT_STD:LEARNING_RATE. Prints a Markdown table and, with
`--json FILE`, writes the curves.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--nets", type=int, default=2)
    parser.add_argument("--every", type=int, default=2_000)
    parser.add_argument("--data", type=Path, default=Path("runs/.datasets"))
    parser.add_argument("--candidates", nargs="+", default=["seed:normal:0.2:5e-4", "narrow:normal:0.05:5e-4",
                                                             "lecun:lecun:0.2:5e-4"])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import jax.numpy as jnp
    import numpy as np

    from core.config import PRESETS, from_dict
    from core.data import prepare
    from core.dataset import ensure_dataset
    from core.engine import evaluate, train
    from core.engine.loop import Engine
    from core.sim import use_all_cpu_cores

    use_all_cpu_cores()
    path = ensure_dataset(args.data / f"sim_n{args.samples}_seed0_s1", args.samples, 0, 1.0)
    base = {**PRESETS["paper"], "samples": args.samples, "nets": args.nets, "dataset": str(path),
            "early_stop_window": 10 ** 6, "max_steps": args.steps}
    data = None
    curves = {}
    for spec in args.candidates:
        name, init, std, lr = spec.split(":")
        config = from_dict({**base, "init": init, "init_std": float(std), "learning_rate": float(lr)})
        data = data or prepare(str(path), config.splits)
        engine = Engine(config, data)
        params, masks, diverged = engine.initial()
        sc, place = engine.step_config, engine.place
        state = place.state(train.init_state(place.sharded(params), jnp.asarray(diverged), sc))
        masks = place.sharded(masks)
        val = data.splits["val"]
        points, t0 = [], time.perf_counter()
        step, batches = 0, engine.batches(0)
        while step < args.steps:
            state, _ = train.chunk_on_device(sc, state, masks, engine.x_train, engine.y_train, *batches(step),
                                             jnp.int32(step), jnp.int32(args.steps))
            step += engine.chunk
            if step % args.every == 0 or step >= args.steps:
                loss = evaluate.split_loss(state.params, val.x, val.y, engine.eval_rows, config.precision,
                                           put=place.data)
                points.append({"step": step, "val": [float(v) for v in np.asarray(loss)],
                               "seconds": round(time.perf_counter() - t0, 1)})
                print(f"{name:>8} step {step:>6}: val {' '.join(f'{v:.2e}' for v in points[-1]['val'])} "
                      f"({points[-1]['seconds']:.0f} s)", file=sys.stderr, flush=True)
        curves[name] = {"init": init, "init_std": float(std), "learning_rate": float(lr), "points": points}

    names = list(curves)
    print(f"| step | {' | '.join(names)} |")
    print(f"|---:|{'---|' * len(names)}")
    for i, point in enumerate(curves[names[0]]["points"]):
        cells = [" / ".join(f"{v:.1e}" for v in curves[n]["points"][i]["val"]) for n in names]
        print(f"| {point['step']:,} | {' | '.join(cells)} |")
    if args.json:
        args.json.write_text(json.dumps({"samples": args.samples, "nets": args.nets, "curves": curves}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
