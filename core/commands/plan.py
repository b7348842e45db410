"""`mothtui plan [--preset P] [--config F] [--set k=v ...] [--runs DIR] [--calibration S] [--json]`.

Resolves the config as `train` does and, without training, compiles its programs for the local
devices, reads XLA's memory and cost analyses and times them briefly (core/plan.py says how each
number is made). Prints memory per device, FLOPs and bytes per step, level and run, the predicted
time here and on one H100 and one H200. A config that does not fit is refused with one line and
exit 2 (`DoesNotFit`), before anything runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from core.cli import config_options, json_option, parallel_option, resolve_runs, runs_option
from core.config import DEFAULT_PRESET, resolve
from core.errors import ConfigError
from core.formatting import fmt_bytes, fmt_duration
from core.plan import DEFAULT_CALIBRATION_S, GPU_PEAKS, MAX_CALIBRATION_S, PHASES, build_plan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config_options(parser)
    runs_option(parser)
    parser.add_argument("--calibration", type=float, default=None, metavar="S",
                        help="seconds of timed calls on random arrays, at most 10 (default 6: core.plan)")
    parser.add_argument("--gpu", choices=("h100", "h200"), default=None,
                        help="also compile the run's programs for this GPU, without one (needs the CUDA plugin: "
                             "pip install -e '.[gpu-plan]'), and predict from XLA's analyses of them")
    parser.add_argument("--target-config", default=None, metavar="FILE",
                        help="with --gpu: an XLA GPU spec (GpuTargetConfigProto text) to compile for instead of "
                             "the built-in one")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="plan a sweep (as `mothtui sweep`): each distinct config and the total")
    parallel_option(parser)
    json_option(parser)


def run(args) -> int:
    from core.sweep import load_sweep_table

    if getattr(args, "grid", None) or load_sweep_table(args.config):  # a whole sweep (core.commands.sweep)
        from core.commands.sweep import plan as plan_sweep

        return plan_sweep(args)
    preset = args.preset or DEFAULT_PRESET
    config = resolve(preset, args.config, args.overrides)
    calibration = DEFAULT_CALIBRATION_S if args.calibration is None else args.calibration
    if not 0 < calibration <= MAX_CALIBRATION_S:
        raise ConfigError(f"--calibration must be in (0, {MAX_CALIBRATION_S:g}] seconds, got {calibration:g}")
    if getattr(args, "target_config", None) and not getattr(args, "gpu", None):
        raise ConfigError("--target-config needs --gpu h100|h200")
    if getattr(args, "gpu", None):  # the CUDA plugin registers without a GPU (for the compile-only device)
        os.environ.setdefault("JAX_SKIP_CUDA_CONSTRAINTS_CHECK", "1")
    with _Progress() as progress:
        plan = build_plan(config, preset, resolve_runs(args), calibration_s=calibration, progress=progress,
                          gpu=getattr(args, "gpu", None), target_config=getattr(args, "target_config", None))
    if args.json:
        print(json.dumps(plan.to_json()))
    else:
        print("\n".join(text(plan)))
    return 0


class _Progress:
    """What the plan is doing, step k of n, on stderr (stdout keeps the plan, or its one JSON document):
    on a terminal one line rewritten in place and cleared when the plan is ready (or refused, so the
    refusal is the one line left). Elsewhere (a script, a log, the app's form) nothing: a refusal
    stays one line on stderr."""

    def __init__(self):
        self.terminal = sys.stderr.isatty()

    def __call__(self, k: int, n: int, what: str) -> None:
        if self.terminal:
            print(f"\r\x1b[2Kplan {k}/{n}: {what}…", end="", file=sys.stderr, flush=True)

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.terminal:  # the plan (or the error) starts on a clean line
            print("\r\x1b[2K", end="", file=sys.stderr, flush=True)


def _flops(x: float) -> str:
    for unit, size in (("EFLOP", 1e18), ("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if x >= size:
            return f"{x / size:.3g} {unit}"
    return f"{x:.3g} FLOP"


def _seconds(s: float) -> str:
    """Short durations to three digits (`72.6 µs`, `0.88 ms`, `4.2 s`), longer ones as `12m05s`, `3d02h`."""
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    if s < 60:
        return f"{s:.3g} s"
    return fmt_duration(s)


def _bytes_si(x: float) -> str:
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if x >= size:
            return f"{x / size:.3g} {unit}"
    return f"{x:.0f} B"


def text(plan) -> list[str]:
    """The human-readable plan, line by line."""
    cfg, m, here = plan.config, plan.memory, plan.here
    layers = "-".join(map(str, cfg.layer_sizes))
    data = plan.dataset
    lines = [f"plan: {plan.preset} · {plan.nets} nets {layers} · batch {cfg.batch} · {cfg.precision} · "
             f"{len(plan.levels)} levels · {data['samples']:,} samples"
             + (" (to simulate)" if data["simulate"] else ""),
             f"devices: {plan.devices} × {plan.device_kind} · {plan.nets // plan.devices} nets each · "
             f"train rows {plan.split_rows['train']:,} "
             + ("on the device" if m.device_data >= 68 * plan.split_rows["train"] else "batched from the host"),
             "memory per device (XLA's memory analysis of the compiled programs)"]
    parts = [("parameters", m.parameters, ""), ("optimizer state", m.optimizer_state, "Adam's two moments"),
             ("masks", m.masks, "bool"), ("data on the device", m.device_data, ""),
             ("evaluation activations", m.eval_activations,
              f"temporaries of one {plan.cost['eval_rows']:,}-row block")]
    for name, size, why in parts:
        lines.append(f"  {name:<24}{fmt_bytes(size):>12}" + (f"  {why}" if why else ""))
    phases = ", ".join(f"{k} {fmt_bytes(v)}" for k, v in m.phases.items())
    lines.append(f"  {'compiled peak':<24}{fmt_bytes(m.peak):>12}  while {PHASES[m.phase]} ({phases})")
    lines.append(f"  {'limit':<24}{fmt_bytes(m.limit):>12}  {m.limit_source}: "
                 + ("fits" if m.fits else "does NOT fit"))
    step, block = plan.cost["step"], plan.cost["eval_block"]
    lines.append(f"cost ({'XLA cost analysis' if plan.cost['source'] == 'compiled' else 'analytic model'}, "
                 f"the whole ensemble)")
    lines.append(f"  {'per step:':<22}{_flops(step['flops'])} · {_bytes_si(step['bytes'])} accessed")
    lines.append(f"  {'per eval block:':<22}{_flops(block['flops'])} · {_bytes_si(block['bytes'])} accessed "
                 f"({plan.cost['eval_rows']:,} rows)")
    for group in _level_groups(plan.levels):
        first, last = group[0], group[-1]
        name = f"level {first.level}" if first is last else f"levels {first.level}–{last.level}, each"
        lines.append(f"  {name + ':':<22}{first.computed_steps:,} steps · {first.eval_blocks} eval blocks · "
                     f"{_flops(first.flops)} · {_bytes_si(first.bytes)}")
    if plan.levels:
        evals = plan.levels[-1].parts["eval"]
        lines.append(f"  {'evaluation per level:':<22}" + " · ".join(
            f"{name} {e['rows']:,} rows {_flops(e['flops'])}" for name, e in evals.items()))
    lines.append(f"  {'per run:':<22}{_flops(plan.run_flops)} · {_bytes_si(plan.run_bytes)}")
    load = here.load[0]
    lines.append("time (the full budget: early stopping can only make it shorter)")
    lines.append(f"  here ({plan.device_kind}, calibrated in {here.calibration_s:.1f} s at load {load:.1f}): "
                 f"{_seconds(here.total_s)} · step {_seconds(here.step_s)} · "
                 f"eval block {_seconds(here.eval_block_s)} · compile {_seconds(here.compile_s)}"
                 + (f" · simulate {_seconds(here.simulate_s)}" if data["simulate"] else ""))
    for group in _level_groups(plan.levels):
        first = group[0]
        name = f"level {first.level}" if len(group) == 1 else f"levels {first.level}–{group[-1].level}"
        lines.append(f"    {name + ':':<20}{_seconds(first.seconds_here)}" + (" each" if len(group) > 1 else "")
                     + (" (compiles first)" if first.level == 0 else ""))
    for key, gpu in plan.gpus.items():
        fits = "" if gpu["fits"] else f" · needs {fmt_bytes(gpu['memory_needed'])}: does NOT fit"
        cost = gpu["cost"]
        lines.append(f"  one {gpu['name']}: {_seconds(gpu['run_s'])} (training {_seconds(gpu['train_s'])}, "
                     f"evaluation {_seconds(gpu['eval_s'])}) · step {_seconds(gpu['step_s'])} "
                     f"({gpu['bound']}-bound) · eval block {_seconds(gpu['eval_block_s'])}{fits}")
        lines.append(f"    basis: {cfg.precision} at {gpu['peak_flops'] / 1e12:g} TFLOP/s and "
                     f"{gpu['bandwidth'] / 1e12:g} TB/s, {gpu['efficiency']['flops']:.0%} and "
                     f"{gpu['efficiency']['bandwidth']:.0%} of them assumed ({_seconds(gpu['run_s_at_peak'])} at "
                     f"100 %); the GPU program ({cost['source']}): step {_flops(cost['step']['flops'])} · "
                     f"{_bytes_si(cost['step']['bytes'])}, {cost['eval_rows']:,}-row block "
                     f"{_flops(cost['eval_block']['flops'])} · {_bytes_si(cost['eval_block']['bytes'])}")
        if gpu.get("compiled_memory"):
            m = gpu["compiled_memory"]
            lines.append(f"    compiled for the GPU: peak {fmt_bytes(max(m['phases'].values()))} "
                         f"({', '.join(f'{k} {fmt_bytes(v)}' for k, v in m['phases'].items())}) of "
                         f"{fmt_bytes(m['limit'])}: " + ("fits" if gpu["fits"] else "does NOT fit"))
    lines.append("peaks used (dense): " + "; ".join(
        f"{g['name']} {g['flops']['float32'] / 1e12:g}/{g['flops']['tf32'] / 1e12:g}/{g['flops']['bf16'] / 1e12:g} "
        f"TFLOP/s fp32/tf32/bf16, {g['bandwidth'] / 1e12:g} TB/s, {g['memory'] / 1e9:g} GB"
        for g in GPU_PEAKS.values()))
    lines += [f"note: {note}" for note in plan.notes]
    return lines


def _level_groups(levels):
    """Consecutive levels with the same budget, as one line each (levels 1-17 of the paper are alike)."""
    groups: list[list] = []
    for level in levels:
        if groups and (groups[-1][0].computed_steps, groups[-1][0].eval_blocks) == (level.computed_steps,
                                                                                   level.eval_blocks) \
                and groups[-1][0].level != 0:
            groups[-1].append(level)
        else:
            groups.append([level])
    return groups
