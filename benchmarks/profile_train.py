"""Where a training step's time goes at N networks: forward, forward+backward, Adam, the whole step.

    python benchmarks/profile_train.py [--nets 8,400] [--hidden 400,400,400,16] [--batch 128]
        [--steps 4] [--repeats 3] [--json]

For each N, in one process: the loss alone (forward), `value_and_grad` (forward and backward),
the masked Adam update with its gating (`train._gate`, `optax.adam`, `apply_updates`: the same
maths as `train._step`), and the engine's compiled chunk (`train.chunk_on_device`, K steps,
per step), each timed alternately, best of `--repeats`. Next to each time: XLA's own count of
FLOPs and bytes accessed of the compiled computation (`cost_analysis()`; it counts a loop's body
once, so the all-at-once chunk's count is one step; for the grouped chunk's nested loops it means
nothing and is left out), so the bytes per step and the rate they imply can be compared with the
matmul FLOP rate. The chunk is timed both
all at once (`group = N`) and with the engine's automatic grouping (`StepConfig.group = 0`),
each also with plain SGD in place of Adam: the difference is Adam's share of a step in the chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


#: The chunk variants timed: name, networks at once ("all" or the engine's automatic groups), optimizer.
VARIANTS = (("step_all_at_once", "all", "adam"), ("step_grouped", "auto", "adam"),
            ("step_all_at_once_sgd", "all", "sgd"), ("step_grouped_sgd", "auto", "sgd"))


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _cost(compiled) -> dict:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return {"flops": float(cost.get("flops", 0.0)), "bytes": float(cost.get("bytes accessed", 0.0))}


def profile(nets: int, hidden, batch: int, steps: int, repeats: int) -> dict:
    import dataclasses

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from core.engine import model, train

    sizes = (10, *hidden, 7)
    params = model.init_params(sizes, 0.2, 0, range(nets))
    masks = model.full_masks(params)
    sc = train.StepConfig(5e-4, window=8, every=2 ** 30, ratio=1.01)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-0.5, 0.5, (65_536, 10)).astype(np.float32))
    y = jnp.asarray(rng.uniform(-0.5, 0.5, (65_536, 7)).astype(np.float32))
    xb, yb = x[:batch], y[:batch]
    ok = jnp.ones(nets, bool)

    def loss(p, xb, yb):
        return model.per_network_mse(p, xb, yb)

    def grads(p, xb, yb):
        return jax.grad(lambda q: jnp.sum(model.per_network_mse(q, xb, yb)))(p)

    def adam(g, opt_state, p, m, ok):
        g = train._gate(g, m, ok)
        u, opt_state = sc.optimizer.update(g, opt_state, p)
        return optax.apply_updates(p, train._gate(u, m, ok)), opt_state

    f_loss = jax.jit(loss).lower(params, xb, yb).compile()
    f_grads = jax.jit(grads).lower(params, xb, yb).compile()
    opt_state = sc.optimizer.init(params)
    g0 = f_grads(params, xb, yb)
    f_adam = jax.jit(adam, donate_argnums=(1, 2)).lower(g0, opt_state, params, masks, ok).compile()

    rows = [jnp.asarray(rng.integers(0, 65_536, (steps, batch)).astype(np.int32)) for _ in range(2)]

    @dataclasses.dataclass(frozen=True)
    class WithSGD(train.StepConfig):  # the same chunk with plain SGD: the difference is Adam's share
        @property
        def optimizer(self):
            return optax.sgd(self.learning_rate)

    chunks = {}
    kinds = {"adam": train.StepConfig, "sgd": WithSGD}
    for name, group, kind in VARIANTS:
        kind = kinds[kind]
        group = nets if group == "all" else 0
        s = kind(**{**dataclasses.asdict(sc), "group": group})
        state = train.init_state(params, jnp.zeros(nets, bool), s)
        compiled = train.chunk_on_device.lower(s, state, masks, x, y, rows[0], jnp.int32(0),
                                               jnp.int32(2 ** 30)).compile()
        chunks[name] = {"sc": s, "state": state, "calls": 0, "cost": _cost(compiled),
                        "group": train.group_size(s, nets, sizes, batch)}

    holder = {"p": jax.tree.map(jnp.copy, params), "o": opt_state}

    def t_loss():
        t = time.perf_counter()
        f_loss(params, xb, yb).block_until_ready()
        return time.perf_counter() - t

    def t_grads():
        t = time.perf_counter()
        jax.block_until_ready(f_grads(params, xb, yb))
        return time.perf_counter() - t

    def t_adam():
        t = time.perf_counter()
        holder["p"], holder["o"] = f_adam(g0, holder["o"], holder["p"], masks, ok)
        jax.block_until_ready(holder["p"])
        return time.perf_counter() - t

    def t_chunk(name):
        c = chunks[name]
        t = time.perf_counter()
        c["state"], losses = train.chunk_on_device(c["sc"], c["state"], masks, x, y, rows[c["calls"] % 2],
                                                   jnp.int32(c["calls"] * steps), jnp.int32(2 ** 30))
        np.asarray(losses)
        c["calls"] += 1
        return (time.perf_counter() - t) / steps

    timers = {"forward": t_loss, "forward_backward": t_grads, "adam": t_adam}
    for name in chunks:
        timers[name] = lambda name=name: t_chunk(name)
    costs = {"forward": _cost(f_loss), "forward_backward": _cost(f_grads), "adam": _cost(f_adam)}
    for name in chunks:  # XLA counts a loop's body once: one step (not meaningful for nested loops)
        nested = chunks[name]["group"] < nets
        costs[name] = {k: float("nan") if nested else v for k, v in chunks[name]["cost"].items()}
    for f in timers.values():
        f()  # warm
    best = {k: float("inf") for k in timers}
    for _ in range(repeats):
        for k, f in timers.items():
            best[k] = min(best[k], f())
    model_flops = {"forward": 2, "forward_backward": 6, "adam": 0, **{name: 6 for name in chunks}}
    weights = model.weight_count(sizes) * nets
    out = {}
    for k in timers:
        out[k] = {"seconds": best[k], "xla_flops": costs[k]["flops"], "xla_bytes": costs[k]["bytes"],
                  "model_flops_per_s": model_flops[k] * batch * weights / best[k],
                  "bytes_per_s": costs[k]["bytes"] / best[k]}
    return {"nets": nets, "group": chunks["step_grouped"]["group"], "step_bytes": train.step_bytes(sizes, batch),
            **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="8,400")
    parser.add_argument("--hidden", default="400,400,400,16")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from core.engine.bench import matmul_peak

    load = os.getloadavg()[0]
    peak = matmul_peak()
    results = [profile(n, _ints(args.hidden), args.batch, args.steps, args.repeats) for n in _ints(args.nets)]
    peak = max(peak, matmul_peak(repeats=2))
    print(f"float32 matmul peak {peak / 1e9:.1f} GFLOP/s; load average {load:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end")
    for r in results:
        print(f"N={r['nets']} (automatic group {r['group']}; the step state of all N: "
              f"{r['step_bytes'] * r['nets'] / 1e6:,.0f} MB):")
        for k in ("forward", "forward_backward", "adam", *(name for name, _, _ in VARIANTS)):
            v = r[k]
            print(f"  {k:20s} {v['seconds'] * 1e3:9.2f} ms/step = {v['seconds'] * 1e3 / r['nets']:6.2f} ms/network  "
                  f"model {v['model_flops_per_s'] / 1e9:6.1f} GFLOP/s "
                  f"({v['model_flops_per_s'] / peak:4.0%} of peak)  XLA bytes {v['xla_bytes'] / 1e6:9.1f} MB "
                  f"-> {v['bytes_per_s'] / 1e9:6.1f} GB/s")
    if args.json:
        print(json.dumps({"matmul_peak_flops": peak, "load_average": load, "results": results}))


if __name__ == "__main__":
    main()
