"""Training and evaluation throughput of the engine now and at an earlier commit, in one process.

    python benchmarks/before_after.py --before REV [--nets 8,400] [--hidden 400,400,400,16]
        [--batch 128] [--steps 200,8] [--repeats 3] [--eval-batch 65536]
        [--eval-rows 76800,3072] [--before-activation-bytes 1073741824] [--json]

The earlier commit's `core/engine/{model,train,evaluate}.py` are read from git (`git show
REV:...`) into a private package next to the current ones, so both run in the same process on
the same synthetic ensemble: for each N, the training chunk (`chunk_on_device`, K steps; now with
the engine's automatic network groups) and the evaluation (`split_loss` on whole blocks, about
`--eval-rows` rows, by default 3 x K x batch: the FLOPs of one training call; now with the
engine's block rows and network groups), all four timed alternately, best of `--repeats`, next
to the float32 matmul peak.

The earlier evaluation uses its own `block_rows(eval_batch, ...)`, further capped so one hidden
activation `(N, rows, widest)` takes at most `--before-activation-bytes` (a power of two rows):
on a shared machine with little memory the paper preset's 8,192-row blocks of 400 networks (5.2 GB
per activation, ~16 GB in all) are not safe to run. FLOPs: training 6 x batch x weights per
network and step, evaluation 2 x rows x weights per network.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
MODULES = ("model", "train", "evaluate")


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def load_before(rev: str, where: Path):
    """The engine modules of commit `rev` as the package `before_engine` (imports rewritten)."""
    package = where / "before_engine"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in MODULES:
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:core/engine/{name}.py"], check=True,
                              capture_output=True, text=True).stdout
        for other in MODULES:
            text = text.replace(f"from core.engine.{other} import", f"from before_engine.{other} import")
            text = text.replace(f"from core.engine import {other}", f"from before_engine import {other}")
        (package / f"{name}.py").write_text(text)
    sys.path.insert(0, str(where))
    return {name: importlib.import_module(f"before_engine.{name}") for name in MODULES}


class _Case:
    """One engine version's training chunk and evaluation on N networks, ready to time."""

    def __init__(self, mods, now: bool, nets, sizes, batch, steps, target, eval_batch, cap_bytes, data):
        import dataclasses

        import jax.numpy as jnp
        import numpy as np

        model, train, evaluate = mods["model"], mods["train"], mods["evaluate"]
        self.mods, self.steps, self.calls = mods, steps, 0
        params = model.init_params(sizes, 0.2, 0, range(nets))
        self.params, self.masks = params, model.full_masks(params)
        sc = train.StepConfig(5e-4, window=8, every=2 ** 30, ratio=1.01)
        if now:
            sc = dataclasses.replace(sc, group=train.auto_group(sizes, batch) or nets)
            self.group = train.group_size(sc, nets, sizes, batch)
        else:
            self.group = nets
        self.sc = sc
        self.state = train.init_state(params, jnp.zeros(nets, bool), sc)
        x, y, rows = data
        self.x, self.y, self.rows = jnp.asarray(x), jnp.asarray(y), [jnp.asarray(r) for r in rows]
        widest = max(sizes)
        if now:
            self.block = evaluate.block_rows(eval_batch, target, nets, widest)
            self.eval_group = evaluate.eval_group(self.block, widest)
        else:
            self.block = evaluate.block_rows(eval_batch, target, nets, widest)
            fit = max(1, cap_bytes // (4 * nets * widest))
            self.block = min(self.block, 1 << (fit.bit_length() - 1))
            self.eval_group = None
        self.eval_rows = max(1, round(target / self.block)) * self.block
        rng = np.random.default_rng(2)
        self.ex = rng.uniform(-0.5, 0.5, (self.eval_rows, 10)).astype(np.float32)
        self.ey = rng.uniform(-0.5, 0.5, (self.eval_rows, 7)).astype(np.float32)
        self.train()  # compile
        self.evaluate()

    def train(self) -> float:
        import jax.numpy as jnp
        import numpy as np

        t = time.perf_counter()
        self.state, losses = self.mods["train"].chunk_on_device(
            self.sc, self.state, self.masks, self.x, self.y, self.rows[self.calls % 2],
            jnp.int32(self.calls * self.steps), jnp.int32(2 ** 30))
        np.asarray(losses)
        self.calls += 1
        return time.perf_counter() - t

    def evaluate(self) -> float:
        kw = {} if self.eval_group is None else {"group": self.eval_group}
        t = time.perf_counter()
        self.mods["evaluate"].split_loss(self.params, self.ex, self.ey, self.block, **kw)
        return time.perf_counter() - t


def measure(rev, nets_list, steps_list, eval_rows_list, hidden, batch, repeats, eval_batch, cap_bytes) -> dict:
    import jax
    import numpy as np

    from core.engine import evaluate, model, train
    from core.engine.bench import BENCH_ROWS, matmul_peak

    now_mods = {"model": model, "train": train, "evaluate": evaluate}
    sizes = (10, *hidden, 7)
    weights = model.weight_count(sizes)
    load = os.getloadavg()[0]
    peak = matmul_peak()
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        before_mods = load_before(rev, Path(tmp))
        for nets, steps, eval_rows in zip(nets_list, steps_list, eval_rows_list):
            t0 = time.perf_counter()
            rng = np.random.default_rng(0)
            data = (rng.uniform(-0.5, 0.5, (BENCH_ROWS, 10)).astype(np.float32),
                    rng.uniform(-0.5, 0.5, (BENCH_ROWS, 7)).astype(np.float32),
                    [rng.integers(0, BENCH_ROWS, (steps, batch)).astype(np.int32) for _ in range(2)])
            args = (nets, sizes, batch, steps, eval_rows, eval_batch, cap_bytes, data)
            cases = {"before": _Case(before_mods, False, *args), "now": _Case(now_mods, True, *args)}
            best = {(v, k): float("inf") for v in cases for k in ("train", "eval")}
            for _ in range(repeats):
                for v, case in cases.items():
                    best[v, "train"] = min(best[v, "train"], case.train())
                    best[v, "eval"] = min(best[v, "eval"], case.evaluate())
            row = {"nets": nets, "steps_per_call": steps, "wall_s": None}
            for v, case in cases.items():
                train_flops = 6 * batch * weights * nets * steps / best[v, "train"]
                eval_flops = 2 * weights * nets * case.eval_rows / best[v, "eval"]
                row[v] = {"train": {"flops_per_s": train_flops, "peak_fraction": train_flops / peak,
                                    "network_samples_per_s": nets * batch * steps / best[v, "train"],
                                    "group": case.group},
                          "evaluation": {"flops_per_s": eval_flops, "peak_fraction": eval_flops / peak,
                                         "network_rows_per_s": nets * case.eval_rows / best[v, "eval"],
                                         "block_rows": case.block, "rows": case.eval_rows,
                                         "group": nets if case.eval_group is None else
                                         evaluate._divisor(nets, case.eval_group)}}
            row["wall_s"] = time.perf_counter() - t0
            rows_out.append(row)
            print(f"  N={nets}: {row['wall_s']:.0f} s", file=sys.stderr, flush=True)
            del cases
    peak = max(peak, matmul_peak(repeats=2))
    for row in rows_out:  # fractions of the best peak seen
        for v in ("before", "now"):
            for k in ("train", "evaluation"):
                row[v][k]["peak_fraction"] = row[v][k]["flops_per_s"] / peak
    return {"before": rev, "layers": list(sizes), "batch": batch, "repeats": repeats, "eval_batch": eval_batch,
            "platform": jax.default_backend(), "cpu_count": os.cpu_count(), "jax": jax.__version__,
            "load_average_start": load, "load_average_end": os.getloadavg()[0], "matmul_peak_flops": peak,
            "rows": rows_out}


def table(result: dict) -> str:
    lines = [f"{'-'.join(map(str, result['layers']))}, batch {result['batch']}, {result['platform']} "
             f"({result['cpu_count']} cores), jax {result['jax']}; float32 matmul peak "
             f"{result['matmul_peak_flops'] / 1e9:.1f} GFLOP/s; before = {result['before']}; best of "
             f"{result['repeats']}; 1-min load average {result['load_average_start']:.2f} at start, "
             f"{result['load_average_end']:.2f} at end", "",
             "| N | | training GFLOP/s | of peak | groups | evaluation GFLOP/s | of peak | block rows | groups |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        for v in ("before", "now"):
            t, e = r[v]["train"], r[v]["evaluation"]
            lines.append(f"| {r['nets']} | {v} | {t['flops_per_s'] / 1e9:.1f} | {t['peak_fraction']:.0%} | "
                         f"{t['group']} | {e['flops_per_s'] / 1e9:.1f} | {e['peak_fraction']:.0%} | "
                         f"{e['block_rows']:,} | {e['group']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--nets", default="8,400")
    parser.add_argument("--steps", default="200,8", help="training steps per call, one per N")
    parser.add_argument("--hidden", default="400,400,400,16")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-batch", type=int, default=65_536)
    parser.add_argument("--eval-rows", default="", help="rows evaluated per timed call, one per N "
                        "(default 3 x steps x batch: the FLOPs of one training call)")
    parser.add_argument("--before-activation-bytes", type=int, default=2 ** 30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    nets, steps = _ints(args.nets), _ints(args.steps)
    if len(steps) == 1:
        steps = steps * len(nets)
    eval_rows = _ints(args.eval_rows) or [3 * k * args.batch for k in steps]
    if len(eval_rows) == 1:
        eval_rows = eval_rows * len(nets)
    result = measure(args.before, nets, steps, eval_rows, _ints(args.hidden), args.batch, args.repeats,
                     args.eval_batch, args.before_activation_bytes)
    print(table(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
