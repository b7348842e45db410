"""Do the engine's real programs compile for an H100 and an H200, and fit? Answered without a GPU.

    pip install -e '.[gpu-plan]'      # the CUDA plugin (jaxlib's version) and ptxas; no GPU, no driver
    python benchmarks/gpu_compile.py [--preset paper] [--set k=v ...] [--gpu h100 --gpu h200]
                                     [--target-config FILE] [--json OUT.json]

For each GPU: the run's training chunk (its steps per call) and evaluation block, compiled deviceless
for that GPU as the engine runs them there (every network at once; core/engine/gpu_target.py), with
XLA's memory analysis (argument, output, temporaries; the phases' peaks with what the level loop keeps
beside them, against 75 % of the GPU's memory, JAX's default share) and the module's FLOPs and bytes,
set against `plan`'s analytic model of the GPU program (core.plan.gpu_cost). The dataset is not read:
the splits are the config's `samples` cut by `splits`.

`--target-config FILE` compiles for XLA's own spec of the GPU instead of the built-in one, e.g.
xla/backends/gpu/target_config/specs/h100_sxm.txtpb or h200.txtpb from https://github.com/openxla/xla
(fields this jaxlib does not know are dropped). Measured here (2-core CPU, jaxlib 0.10.2): the paper
preset compiles for an H100 in ~20 s, the same analyses with the built-in config and XLA's spec.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("JAX_SKIP_CUDA_CONSTRAINTS_CHECK", "1")  # the plugin registers without a GPU


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--gpu", action="append", choices=("h100", "h200"))
    parser.add_argument("--target-config", default=None, metavar="FILE", help="with one --gpu: XLA's spec file")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    from core.config import resolve
    from core.data import split_ranges
    from core.engine import gpu_target
    from core.errors import MothError
    from core.plan import GPU_KEYS, _costs, gpu_cost, param_count
    from core.formatting import fmt_bytes

    config = resolve(args.preset, None, args.overrides)
    rows = {name: b - a for name, (a, b) in split_ranges(config.samples, config.splits).items()}
    gpus = args.gpu or ["h100", "h200"]
    if args.target_config and len(gpus) != 1:
        parser.error("--target-config goes with exactly one --gpu")
    results, ok = {}, True
    for key in gpus:
        target = gpu_target.TARGETS[key]
        try:
            text = gpu_target.load_target_config(args.target_config) if args.target_config else None
            setup, chunk, block = gpu_target.compile_for(config, rows, target, text)
        except MothError as err:
            print(f"{key}: {err}")
            results[key], ok = {"error": str(err)}, False
            continue
        cost = _costs(setup, chunk, block, setup.budget.chunk, 1, [])
        model = gpu_cost(config, setup.nets, rows, GPU_KEYS[key])
        params = 4 * param_count(config) * setup.nets
        train = chunk.memory["peak"] + params
        evaluate = (block.memory["peak"] + (68 * rows["train"] if setup.on_device else 0)
                    + params + param_count(config) * setup.nets)
        limit = int(target.memory * gpu_target.ALLOCATOR_FRACTION)
        fits = max(train, evaluate) <= limit
        ok &= fits
        results[key] = {"device": target.name, "nets": setup.nets, "eval_rows": setup.eval_rows,
                        "steps_per_call": setup.budget.chunk, "compile_s": chunk.seconds + block.seconds,
                        "chunk_memory": chunk.memory, "eval_block_memory": block.memory,
                        "phases": {"train": train, "evaluate": evaluate}, "limit": limit, "fits": fits,
                        "compiled": {"step": cost["step"], "eval_block": cost["eval_block"]},
                        "analytic": {"step": model["step"], "eval_block": model["eval_block"]}}
        r = results[key]
        print(f"{target.name}: {config.nets} nets {'-'.join(map(str, config.layer_sizes))}, compiled in "
              f"{r['compile_s']:.1f} s; peak {fmt_bytes(max(train, evaluate))} (training {fmt_bytes(train)}, "
              f"evaluating {fmt_bytes(evaluate)}) of {fmt_bytes(limit)}: {'fits' if fits else 'does NOT fit'}")
        for part in ("step", "eval_block"):
            c, m = r["compiled"][part], r["analytic"][part]
            print(f"  {part:<10} XLA {c['flops']:.4g} FLOP, {c['bytes']:.4g} B · analytic model "
                  f"{m['flops']:.4g} FLOP, {m['bytes']:.4g} B ({m['bytes'] / c['bytes']:.2f}x)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
