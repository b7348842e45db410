"""One-shot check of mothtui on a GPU machine: every measurement the README's GPU table needs.

Run through `benchmarks/device_check.sh DIR` (it installs the project without dependencies and
checks the modules a CUDA JAX image may lack). Each step is one `mothtui` command with `--json`,
run as its own process under one overall deadline (default 8 minutes), so a step that hangs or
fails costs its own result only. The steps, most important first:

1. the devices (`jax.devices()`, `nvidia-smi`);
2. `plan --preset paper` and the plan of the capped two-level run of step 6;
3. `bench engine` at 400 full-size networks in float32, tf32 and bf16 (training and evaluation);
4. `bench engine` at 8 networks in float32 (the CPU table's other end);
5. `bench sim` on 10M strokes;
6. two levels of `paper` on its full 10M strokes (simulated by the run), each capped at
   `--steps` training steps, timed level by level from the run's `level_end` events and set
   against its plan.

Results go to DIR/device_check.json (everything, raw) and DIR/device_check.md (the tables for
the README). `--tiny` shrinks every step so that the whole script runs in under a minute on a
CPU (the test suite runs it so; the numbers then mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

#: Default overall budget (seconds): the issue's "at most 8 minutes on one H100 or H200".
DEADLINE_S = 480


def _sizes(tiny: bool) -> dict:
    """The sizes of every step: the real check, or a CPU-sized rehearsal of the same commands."""
    if tiny:
        return dict(nets=4, hidden="32,32,16", small_nets=2, sim=20_000, bench_steps=20,
                    preset="smoke", train_sets=["schedule=[0.5]"], steps=20)
    return dict(nets=400, hidden="400,400,400,16", small_nets=8, sim=10_000_000, bench_steps=200,
                preset="paper", train_sets=["schedule=[0.15]"], steps=2000)


class Steps:
    """Runs `mothtui` subcommands as processes against one deadline and keeps every result."""

    def __init__(self, mothtui: list[str], deadline_s: float, log: Path):
        self.mothtui, self.end, self.log = mothtui, time.monotonic() + deadline_s, log
        self.results: list[dict] = []

    def left(self) -> float:
        return self.end - time.monotonic()

    def run(self, name: str, args: list[str], budget_s: float, parse_json: bool = True) -> dict:
        """One step: its command, seconds, exit code, and its JSON (last stdout line) if any."""
        timeout = min(budget_s, self.left())
        record = {"step": name, "command": " ".join(shlex.quote(a) for a in [*self.mothtui, *args])}
        if timeout < 5:
            record.update(status="skipped", reason="the overall deadline was reached")
            self.results.append(record)
            return record
        start = time.perf_counter()
        try:
            done = subprocess.run([*self.mothtui, *args], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            record.update(status="timeout", seconds=round(time.perf_counter() - start, 1),
                          stderr=(err.stderr or b"")[-2000:].decode(errors="replace")
                          if isinstance(err.stderr, bytes) else (err.stderr or "")[-2000:])
            self.results.append(record)
            return record
        record.update(seconds=round(time.perf_counter() - start, 1), rc=done.returncode,
                      status="ok" if done.returncode == 0 else "failed")
        if done.returncode != 0:
            record["stderr"] = done.stderr[-2000:]
        if parse_json and done.returncode == 0:
            lines = [line for line in done.stdout.splitlines() if line.strip().startswith("{")]
            try:
                record["result"] = json.loads(lines[-1])
            except (IndexError, json.JSONDecodeError):
                record.update(status="failed", stderr="no JSON on stdout: " + done.stdout[-500:])
        with self.log.open("a") as f:
            f.write(f"{record['step']}: {record['status']} in {record.get('seconds', 0)} s: {record['command']}\n")
            if record.get("stderr"):
                f.write(record["stderr"] + "\n")
        self.results.append(record)
        print(f"[{self.left():5.0f} s left] {name}: {record['status']} ({record.get('seconds', 0)} s)", flush=True)
        return record


def _devices() -> dict:
    """What the machine has: jax's devices (in a subprocess, so this process stays light) and nvidia-smi."""
    info: dict = {"host": platform.node(), "python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    probe = ("import json, jax; d = jax.devices(); "
             "print(json.dumps({'jax': jax.__version__, 'backend': jax.default_backend(), "
             "'devices': [x.device_kind for x in d], "
             "'memory': [(x.memory_stats() or {}).get('bytes_limit') for x in d]}))")
    try:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
        info.update(json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0
                    else {"jax_error": out.stderr[-500:]})
    except (subprocess.TimeoutExpired, IndexError, json.JSONDecodeError) as err:
        info["jax_error"] = repr(err)
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        info["nvidia_smi"] = smi.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        info["nvidia_smi"] = "not found"
    return info


def _level_seconds(run_dir: Path) -> list[dict]:
    """Per level: seconds, training steps and the level's losses, from the run's events."""
    levels = []
    events = run_dir / "events.jsonl"
    if not events.exists():
        return levels
    for line in events.read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("event") == "level_end":
            val = [v for v in event.get("loss", {}).get("val", []) if v is not None]
            levels.append({"level": event["level"], "seconds": event.get("seconds"),
                           "max_steps": max(event.get("steps") or [0]),
                           "median_val": sorted(val)[len(val) // 2] if val else None})
    return levels


def commands(tiny: bool, runs: Path) -> list[tuple[str, list[str], float, bool]]:
    """Every step as (name, mothtui arguments, seconds allowed, prints JSON), in the order they run."""
    size = _sizes(tiny)
    sets = [a for s in [*size["train_sets"], f"max_steps={size['steps']}"] for a in ("--set", s)]
    engine = ["bench", "engine", "--hidden", size["hidden"], "--steps", str(size["bench_steps"])]
    return [
        ("plan paper", ["plan", "--preset", size["preset"], "--json"], 90, True),
        ("plan two levels", ["plan", "--preset", size["preset"], *sets, "--runs", str(runs), "--json"], 90, True),
        *[(f"engine {size['nets']} nets {p}", [*engine, "--nets", str(size["nets"]), "--precision", p, "--json"],
           60, True) for p in ("float32", "tf32", "bf16")],
        (f"engine {size['small_nets']} nets float32", [*engine, "--nets", str(size["small_nets"]), "--json"], 60, True),
        (f"sim {size['sim']:,} strokes", ["bench", "sim", "--samples", str(size["sim"]), "--json"], 120, True),
        ("train two levels", ["train", "--preset", size["preset"], *sets, "--runs", str(runs), "--id", "device-check",
                              "--quiet"], 300, False),
    ]


def check(out: Path, tiny: bool, deadline_s: float, mothtui: list[str]) -> dict:
    """Run every step into `out`; returns the report (also written as JSON and Markdown)."""
    out.mkdir(parents=True, exist_ok=True)
    steps = Steps(mothtui, deadline_s, out / "device_check.log")
    report: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "tiny": tiny, "deadline_s": deadline_s,
                    "machine": _devices()}
    runs = out / "runs"
    for name, args, budget, parse_json in commands(tiny, runs):
        steps.run(name, args, budget, parse_json)
    _result(report | {"steps": steps.results}, "train")["levels"] = _level_seconds(runs / "device-check")
    report["steps"] = steps.results
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    (out / "device_check.json").write_text(json.dumps(report, indent=2))
    (out / "device_check.md").write_text(markdown(report))
    return report


def _result(report: dict, prefix: str) -> dict:
    for step in report["steps"]:
        if step["step"].startswith(prefix):
            return step
    return {}


def _fmt(value, unit: str = "", scale: float = 1.0, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value / scale:,.{digits}f}{unit}"


def _planned_seconds(plan: dict) -> float | None:
    """The plan's predicted wall time on this machine for the whole run (see core/plan.py)."""
    time_ = plan.get("time") or {}
    here = time_.get("here") if isinstance(time_.get("here"), dict) else None
    if here:
        return here.get("run_s") or here.get("total_s")
    return time_.get("here_s") or time_.get("run_s")


def gpu_prediction_lines(report: dict, paper: dict) -> list[str]:
    """The GPU prediction `plan` makes without a GPU (`time.gpus`: the roofline of the GPU program at the
    assumed efficiency) against what this GPU measured: a step and an evaluation block of the paper's 400
    networks in float32 (`bench engine`), and the whole run as `plan` calibrates it on this GPU
    (`time.here`). The measured/predicted ratios say how far the assumed efficiencies are off."""
    kinds = " ".join(report["machine"].get("devices", [])).upper()
    key = next((k for k in ("H200", "H100") if k in kinds), None)
    gpu = ((paper.get("time") or {}).get("gpus") or {}).get(key) if key else None
    engine = _result(report, "engine 400 nets float32").get("result") or {}
    lines = ["", "## The GPU prediction made without a GPU, against this GPU", ""]
    if not gpu:
        return lines + [f"- not comparable: the devices are not an H100 or H200 ({kinds or 'unknown'}), "
                        "or the paper plan did not run"]
    nets, batch = engine.get("nets", 400), engine.get("batch", 128)
    step = nets * batch / engine["network_samples_per_s"] if engine.get("network_samples_per_s") else None
    rows = (gpu.get("cost") or {}).get("eval_rows")
    ev = engine.get("evaluation") or {}
    block = nets * rows / ev["network_rows_per_s"] if ev.get("network_rows_per_s") and rows else None
    here = (paper.get("time") or {}).get("here") or {}
    lines += [f"Basis of the prediction: {gpu.get('precision')}, {gpu.get('peak_flops', 0) / 1e12:g} TFLOP/s and "
              f"{gpu.get('bandwidth', 0) / 1e12:g} TB/s at {gpu.get('efficiency')} of them, the GPU program's "
              f"FLOPs and bytes from {(gpu.get('cost') or {}).get('source')}.", "",
              "| what | predicted | measured | measured / predicted |", "|---|---:|---:|---:|"]
    for name, predicted, measured in (("training step, 400 nets (s)", gpu.get("step_s"), step),
                                      (f"evaluation block, {rows} rows (s)", gpu.get("eval_block_s"), block),
                                      ("the paper run (s; measured = plan calibrated here)", gpu.get("run_s"),
                                       here.get("run_s"))):
        ratio = measured / predicted if measured and predicted else None
        lines.append(f"| {name} | {_fmt(predicted, digits=4)} | {_fmt(measured, digits=4)} | {_fmt(ratio, digits=2)} |")
    return lines


def markdown(report: dict) -> str:
    """The report as the Markdown tables that go into the README's scaling section."""
    m = report["machine"]
    lines = [f"# mothtui device check, {report['started']}", "",
             f"- devices: {', '.join(m.get('devices', [])) or m.get('jax_error', '?')} "
             f"(jax {m.get('jax', '?')}, backend {m.get('backend', '?')}); nvidia-smi: {m.get('nvidia_smi')}",
             f"- host: {m.get('host')}, {m.get('cpu_count')} CPUs, Python {m.get('python')}"
             + (" — **tiny rehearsal, numbers mean nothing**" if report["tiny"] else ""), "",
             "## Engine throughput", "",
             "| what | network-samples/s | training TFLOP/s | of matmul peak | evaluation network-rows/s "
             "| evaluation TFLOP/s |", "|---|---:|---:|---:|---:|---:|"]
    for step in report["steps"]:
        if not step["step"].startswith("engine"):
            continue
        r = step.get("result") or {}
        ev = r.get("evaluation") or {}
        lines.append(f"| {step['step']} | {_fmt(r.get('network_samples_per_s'), digits=0)} | "
                     f"{_fmt(r.get('flops_per_s'), scale=1e12, digits=2)} | {_fmt(r.get('peak_fraction'), scale=0.01)} % | "
                     f"{_fmt(ev.get('network_rows_per_s'), digits=0)} | {_fmt(ev.get('flops_per_s'), scale=1e12, digits=2)} |"
                     if r else f"| {step['step']} | {step['status']} | | | | |")
    sim = (_result(report, "sim").get("result") or {})
    lines += ["", "## Simulator", "",
              f"- {_fmt(sim.get('trajectories_per_s'), digits=0)} trajectories/s: {_fmt(sim.get('samples'), digits=0)} "
              f"strokes in {_fmt(sim.get('seconds'), ' s')} after a {_fmt(sim.get('warmup_seconds'), ' s')} warm-up, "
              f"{sim.get('invalid', '–')} invalid" if sim else "- not measured: " + _result(report, "sim").get("status", "?")]
    train, plan = _result(report, "train"), (_result(report, "plan two levels").get("result") or {})
    lines += ["", "## Two levels of the full run, measured against the plan", "",
              f"`{train.get('command', '')}`: {train.get('status', '?')} in {_fmt(train.get('seconds'), ' s')} "
              f"(simulating its data included); planned {_fmt(_planned_seconds(plan), ' s')} for the levels.", "",
              "| level | seconds | steps | median val MSE |", "|---:|---:|---:|---:|"]
    for level in train.get("levels", []):
        lines.append(f"| {level['level']} | {_fmt(level['seconds'])} | {level['max_steps']:,} | "
                     f"{_fmt(level['median_val'], digits=6) if level['median_val'] is not None else '–'} |")
    paper = (_result(report, "plan paper").get("result") or {})
    lines += gpu_prediction_lines(report, paper)
    lines += ["", "## The paper preset's plan", "", "```", json.dumps(paper, indent=1)[:4000], "```", "",
              "## Steps", "", "| step | status | seconds |", "|---|---|---:|"]
    lines += [f"| {s['step']} | {s['status']} | {s.get('seconds', '–')} |" for s in report["steps"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory for device_check.json, device_check.md and the runs")
    parser.add_argument("--tiny", action="store_true", help="a CPU-sized rehearsal of the same steps")
    parser.add_argument("--deadline", type=float, default=DEADLINE_S, help="overall seconds (default 480)")
    parser.add_argument("--mothtui", default=f"{sys.executable} -m core.cli",
                        help="how to run mothtui (default: this Python's core.cli)")
    args = parser.parse_args(argv)
    report = check(args.out, args.tiny, args.deadline, shlex.split(args.mothtui))
    failed = [s["step"] for s in report["steps"] if s["status"] != "ok"]
    print(f"wrote {args.out / 'device_check.md'} and device_check.json" + (f"; not ok: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
