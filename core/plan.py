"""What a config costs before it runs: memory per device, FLOPs and bytes, and time here and on GPUs.

`mothtui plan` builds a `Plan` (`build_plan`) and prints it or its `to_json()`; `mothtui train` runs
`require_fit` before it writes anything. Both refuse a config that does not fit the device with
the same one line (`DoesNotFit`, exit 2).

Where each number comes from:

- **memory**: XLA's memory analysis of the compiled programs (core/engine/measure.py), per
  device: the training chunk (its arguments: state, masks, data kept on the device; its outputs;
  its temporaries), an evaluation block, and the simulator when the dataset is still to be made.
  Each phase adds what the level loop keeps alive beside the program (the level's starting
  parameters; while evaluating, the training split still on the device). The peak is the largest
  phase. The parts (parameters, Adam's state, masks, data) are exact sizes of the arrays; the
  evaluation activations are the block's compiled temporaries.
- **the limit**: `$MOTHTUI_DEVICE_MEMORY` if set (bytes, or with a unit: `512M`, `16G`; `16GiB` in
  powers of 1024), else the accelerator's `bytes_limit`; on a CPU the machine's available RAM, less the host's
  own copy of the data, shared by the local devices.
- **FLOPs and bytes**: XLA's cost analysis of the same programs. It counts a scan's body once, so
  the chunk's numbers are one step's (checked against the analytic 6 x batch x weights x networks;
  a count of every step is divided back); a gather is charged its whole operand, so the data kept
  on the device are replaced by one batch's rows. Where the backend gives no cost analysis the
  analytic model FLOPs are used (`cost.source` says which).
- **time here**: a calibration (timed calls within `calibration_s`, 10 s at most, and at least one
  call) of the compiled programs on random arrays of the config's shapes: seconds per step, per
  evaluation block, per simulated stroke, and a level's set-up; the compile times as measured. When
  one step of the whole ensemble is long (more than `measure.CALL_FLOPS`), a share of the networks
  is timed and scaled up; when one evaluation block is, a smaller block, scaled by its rows. A level runs ceil(cap / chunk)
  calls of `chunk` steps (`loop.budget`), and evaluates every split in blocks. Early stopping can
  only end a level sooner, so the prediction is the full budget: an upper bound. Not counted:
  reading the dataset into memory, pruning and writing each level to the store.
- **GPUs**: a roofline, per step and per evaluation block max(FLOPs / (peak x efficiency), bytes /
  (bandwidth x efficiency)), with the published peaks in `GPU_PEAKS` (the peak of the config's
  `precision`) and the assumed shares of them in `GPU_EFFICIENCY`, and the GPU's own evaluation blocks.
  The FLOPs and bytes are the GPU program's, not the local compile's (a CPU's fusions differ: its
  bytes were 45 % above the GPU's for the paper preset): with `gpu` ("h100"/"h200"), the chunk and
  block compiled for that GPU without one (core/engine/gpu_target.py), whose memory analysis also
  says whether the run fits it; otherwise the analytic model `gpu_cost`, fitted to those compiles,
  and the analytic memory model (`analytic_memory`).
- **parts**: every level's FLOPs and bytes split into its training and each split's evaluation
  (`Level.parts`; `parts_summary`: level 0, a retraining level, the run), on the local programs.

This module imports no JAX at import time (the JAX side is core/engine/measure.py, imported when
a plan is built), so the UI's layer rules hold for whoever formats a plan's JSON.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

from core.config import Config
from core.errors import DoesNotFit, MothError
from core.formatting import fmt_bytes

#: Published peaks (dense, no sparsity) of one GPU: FLOP/s per precision, HBM bandwidth (bytes/s),
#: memory (bytes). H100 SXM5 and H200 SXM share the compute; the H200 has faster and more HBM.
GPU_PEAKS: dict[str, dict[str, Any]] = {
    "H100": {"name": "H100 SXM5", "flops": {"float32": 67e12, "tf32": 495e12, "tf32-emulated": 67e12, "bf16": 989e12},
             "bandwidth": 3.35e12, "memory": 80e9},
    "H200": {"name": "H200 SXM", "flops": {"float32": 67e12, "tf32": 495e12, "tf32-emulated": 67e12, "bf16": 989e12},
             "bandwidth": 4.8e12, "memory": 141e9},
}
#: `plan --gpu` names and the GPU_PEAKS key of each.
GPU_KEYS = {"h100": "H100", "h200": "H200"}
#: Shares of the published peaks the GPU prediction assumes the engine's kernels reach (not measured:
#: no GPU has been lent; benchmarks/device_check.sh measures them). HBM streaming kernels (Adam's update,
#: the activations' elementwise fusions) reach 80-90 % of the bandwidth on Hopper; batched GEMMs of
#: 128 x 400 x 400 per network, a few tens of percent to ~70 % of the matmul peak.
GPU_EFFICIENCY = {"flops": 0.6, "bandwidth": 0.8}
#: The analytic model of the GPU program's bytes (`gpu_cost`), read off XLA's cost analysis of the
#: engine's programs compiled deviceless for an H100 (core/engine/gpu_target.py; 8 and 400 networks
#: 10-400-400-400-16-7, batch 128): per network and step, STEP_BYTES_PER_PARAM bytes per parameter
#: (the forward and backward matmuls' weights, the gradient, Adam's fused update of the parameters, both
#: moments and the mask) plus STEP_BYTES_PER_ACTIVATION per activation (written, read back by the
#: backward pass, its gradient written and read); per network and evaluated row, EVAL_BYTES_PER_ACTIVATION
#: per activation (written and read once: a GPU materialises them whole).
STEP_BYTES_PER_PARAM = 53.6
STEP_BYTES_PER_ACTIVATION = 16.0
EVAL_BYTES_PER_ACTIVATION = 8.2
#: Seconds the calibration may spend by default, and at most.
DEFAULT_CALIBRATION_S = 6.0
MAX_CALIBRATION_S = 10.0
#: `train` compiles for its memory check only when the analytic estimate exceeds this fraction of
#: the limit: below it the compiled peak fits with room (tested: compiled <= analytic / this).
COMPILE_CHECK_FRACTION = 0.5
MEMORY_ENV = "MOTHTUI_DEVICE_MEMORY"
#: The phases of a run whose memory is planned, as the text says them.
PHASES = {"train": "training", "evaluate": "evaluating", "simulate": "simulating the dataset"}
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


# ---- the model ---------------------------------------------------------------------------------

@dataclass
class Memory:
    """Bytes per device."""

    parameters: int
    optimizer_state: int
    masks: int
    device_data: int
    """Data kept on the device while training: the training split (or one chunk's batches from the
    host), and the validation split for the seed's early-stopping signal."""
    eval_activations: int
    phases: dict[str, int]
    """Peak of each phase: `train`, `evaluate`, and `simulate` when the dataset is still to be made."""
    limit: int
    limit_source: str
    analytic_peak: int
    """The analytic model's peak (what `train` checks first, and the GPU estimate)."""

    @property
    def peak(self) -> int:
        return max(self.phases.values())

    @property
    def phase(self) -> str:
        return max(self.phases, key=lambda name: self.phases[name])

    @property
    def fits(self) -> bool:
        return self.peak <= self.limit


@dataclass
class Level:
    """One level of the run, with the full budget (no early stop)."""

    level: int
    sparsity: float
    steps: int
    """The level's step cap."""
    computed_steps: int
    """Steps the compiled calls run: whole chunks (steps past the cap are computed and discarded)."""
    eval_blocks: int
    flops: float
    bytes: float
    seconds_here: float
    seconds_gpu: dict[str, float] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)
    """`train` ({steps, flops, bytes}: the computed steps) and `eval` (per split: {rows, blocks, flops,
    bytes}), on this machine's programs; they add up to `flops` and `bytes`."""


@dataclass(frozen=True)
class TimeHere:
    """Seconds of the run on this machine, from the calibration (`plan --json`'s `time.here`)."""

    compile_s: float
    simulate_s: float
    run_s: float
    """The levels: what the run's `train/seconds` sum to."""
    total_s: float
    """Simulation and levels."""
    step_s: float
    """One training step of every network."""
    eval_block_s: float
    sample_s: float
    """One simulated stroke."""
    steps_per_timed_call: int
    nets_timed: int
    calibration_s: float
    """All of the calibration, with the random arrays it made."""
    timed_s: float
    """Seconds of timed calls: within the budget, plus the one call that crosses it."""
    load: list[float]
    """os.getloadavg at the start."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    """What `mothtui plan` reports; `to_json()` is its `--json` document."""

    preset: str
    config: Config
    nets: int
    devices: int
    device_kind: str
    platform: str
    split_rows: dict[str, int]
    """Valid rows of each split: counts (`core.data.split_ranges` gives the row ranges)."""
    dataset: dict[str, Any]
    """`path`, `simulate` (it must be simulated first), `samples`."""
    budget: dict[str, int]
    """`level0_steps`, `max_steps`, `chunk` (steps per compiled call)."""
    memory: Memory
    cost: dict[str, Any]
    """`source` ("compiled" or "analytic"), `step` and `eval_block` ({flops, bytes}, the whole
    ensemble on this process's devices), `eval_rows`."""
    levels: list[Level]
    here: TimeHere
    gpus: dict[str, dict[str, Any]]
    notes: list[str]

    @property
    def run_flops(self) -> float:
        return sum(level.flops for level in self.levels)

    @property
    def run_bytes(self) -> float:
        return sum(level.bytes for level in self.levels)

    def to_json(self) -> dict[str, Any]:
        memory = {**asdict(self.memory), "peak": self.memory.peak, "phase": self.memory.phase,
                  "fits": self.memory.fits}
        return {
            "preset": self.preset,
            "config": self.config.to_dict(),
            "nets": self.nets, "levels_count": len(self.levels),
            "devices": {"count": self.devices, "kind": self.device_kind, "platform": self.platform},
            "split_rows": self.split_rows, "dataset": self.dataset, "budget": self.budget,
            "memory": memory,
            "cost": {**self.cost, "run": {"flops": self.run_flops, "bytes": self.run_bytes}},
            "levels": [asdict(level) for level in self.levels],
            "parts": parts_summary(self.levels),
            "time": {"here": self.here.to_json(), "gpus": self.gpus, "upper_bound": True},
            "peaks": GPU_PEAKS,
            "notes": self.notes,
        }


def parts_summary(levels: list[Level]) -> dict[str, Any]:
    """Where a run's FLOPs and bytes go: level 0, one retraining level (level 1: all alike), and the run
    (training of every level; evaluation per split over every level)."""
    def total(parts: list[dict]) -> dict[str, float]:
        return {"flops": sum(p["flops"] for p in parts), "bytes": sum(p["bytes"] for p in parts)}

    out: dict[str, Any] = {"level0": levels[0].parts if levels else {}}
    if len(levels) > 1:
        out["retraining_level"] = levels[1].parts
    run: dict[str, Any] = {"train": total([lv.parts["train"] for lv in levels]), "eval": {}}
    for split in (levels[0].parts["eval"] if levels else {}):
        run["eval"][split] = total([lv.parts["eval"][split] for lv in levels])
    run["level0_train"] = levels[0].parts["train"] if levels else {}
    out["run"] = run
    return out


# ---- memory: the analytic model, the limit, the check ------------------------------------------

def param_count(config: Config) -> int:
    """Weights and biases of one network."""
    sizes = config.layer_sizes
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


#: Bytes per simulated row the analytic model allows the simulator (states, controls, results, padding
#: and the integrator's temporaries; XLA's analysis of the CPU compile says about 480).
SIM_ROW_BYTES = 640


def analytic_memory(config: Config, nets: int, *, train_rows: int, on_device: bool, chunk: int,
                    eval_rows: int, val_rows: int = 0, simulate_rows: int = 0) -> dict[str, int]:
    """Bytes one device holds for `nets` networks, from the array sizes alone (docs/cluster.md's table).

    Training: parameters, two Adam moments, bool masks, gradients and updates (transient), the
    level's starting copy, the loss history, a step's activations (kept for the backward pass),
    the data on the device (the training split, or one chunk's batches) and the batch indices.
    Evaluation: parameters and masks, the data still on the device, three `(nets, rows, widest)`
    activations alive at once, and the block itself. Simulation (when `simulate_rows`, the rows of
    one write of the dataset writer, `sim_write_rows`): SIM_ROW_BYTES a row.
    """
    p = 4 * param_count(config) * nets
    masks = param_count(config) * nets
    data = train_rows * 68 if on_device else chunk * config.batch * 68
    data += val_rows * 68 if config.early_stop_signal == "seed" else 0
    activations = 3 * 4 * nets * config.batch * sum(config.hidden)
    history = 4 * nets * 2 * config.early_stop_window
    train = p + 2 * p + masks + 2 * p + p + history + activations + data + 4 * chunk * config.batch
    evaluate = p + masks + p + data + 3 * 4 * nets * eval_rows * max(config.layer_sizes) + 72 * eval_rows
    phases = {"train": train, "evaluate": evaluate}
    if simulate_rows:
        phases["simulate"] = SIM_ROW_BYTES * simulate_rows
    return phases


def parse_bytes(text: str) -> int:
    """`123456`, `512M`, `16G`, `80GB` (powers of 1000, as the sizes are printed), `16GiB` (of 1024) -> bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(?:([kKmMgGtT])(i?)[bB]?)?\s*", text)
    if not match:
        raise MothError(f"${MEMORY_ENV}={text!r}: expected bytes, e.g. 16G or 512M")
    base = 1024 if match.group(3) else 1000
    return int(float(match.group(1)) * base ** _POWERS[(match.group(2) or "").lower()])


def memory_limit(platform: str, device_limit: int | None, local_devices: int, host_bytes: int) -> tuple[int, str]:
    """The bytes one device may use, and where that number comes from."""
    if os.environ.get(MEMORY_ENV):
        return parse_bytes(os.environ[MEMORY_ENV]), f"${MEMORY_ENV}"
    if device_limit:
        return device_limit, "the device's bytes_limit"
    import psutil

    available = psutil.virtual_memory().available
    share = max(0, available - host_bytes) // max(1, local_devices)
    where = "available RAM" + (f" less {fmt_bytes(host_bytes)} of host data" if host_bytes else "")
    return share, where + (f", shared by {local_devices} devices" if local_devices > 1 else "")


def fit_problem(memory: Memory, eval_rows: int, nets: int) -> str | None:
    """The one line that refuses a config that does not fit (None if it fits): what, by how much, what to change."""
    if memory.fits:
        return None
    over = memory.peak - memory.limit
    phase = memory.phase
    advice = []
    if phase == "simulate":
        advice.append("simulating the dataset where it fits (`mothtui simulate`) and --set dataset=PATH")
    elif phase == "evaluate" and memory.eval_activations > over and eval_rows > 1:
        rows = max(1, int(eval_rows * (memory.eval_activations - over) / memory.eval_activations * 0.9))
        advice.append(f"--set eval_batch={_round_down(rows)}")
    smaller = max(1, int(nets * memory.limit / memory.peak * 0.9))
    if smaller < nets and phase != "simulate":
        advice.append(f"--set nets={smaller}")
    if memory.device_data > over and phase != "simulate":
        advice.append("fewer samples")
    return (f"the config does not fit the device: it needs {fmt_bytes(memory.peak)} per device "
            f"while {PHASES[phase]}, {fmt_bytes(over)} more than the {fmt_bytes(memory.limit)} there are "
            f"({memory.limit_source}); try " + (" or ".join(advice) if advice else "a smaller config")
            + " (`mothtui plan` shows the parts)")


def _round_down(n: int) -> int:
    """Down to a power of two (block sizes the user would type)."""
    return 1 << (max(1, n).bit_length() - 1)


# ---- the data a run will see ------------------------------------------------------------------

def data_plan(config: Config, runs_dir: Path | None) -> tuple[dict[str, int], dict[str, Any]]:
    """Valid rows per split and where the data come from, as `mothtui train` would find them: the
    config's `dataset`, or the cached simulated one in the run store, or one still to simulate (its
    rows then all counted valid: the simulator rejects very few)."""
    import numpy as np

    from core.data import split_ranges
    from core.dataset import dataset_path, open_dataset
    from core.errors import StoreError
    from core.paths import DEFAULT_RUNS

    path = dataset_path(config, runs_dir or Path(DEFAULT_RUNS))
    if config.dataset:
        dataset, simulate = open_dataset(path), False
    else:
        try:
            dataset, simulate = open_dataset(path), False
        except StoreError:
            dataset, simulate = None, True
    n = dataset.n if dataset is not None else config.samples
    ranges = split_ranges(n, config.splits)
    if dataset is None:
        rows = {name: b - a for name, (a, b) in ranges.items()}
    else:  # the valid flags are small (1 byte a row): read them
        rows = {name: int(sum(int(np.asarray(dataset.valid[s:min(b, s + 1_000_000)]).sum())
                              for s in range(a, b, 1_000_000)))
                for name, (a, b) in ranges.items()}
    return rows, {"path": str(path), "simulate": simulate, "samples": n}


# ---- building a plan ---------------------------------------------------------------------------

def require_fit(config: Config, nets: int | None = None, runs_dir: Path | None = None) -> None:
    """`mothtui train`'s check before it writes anything: DoesNotFit (one line, exit 2) if the config's
    compiled peak exceeds the device's memory, as `mothtui plan` would say.

    Compiling the chunk costs seconds on a CPU, so it is done only when the analytic estimate
    comes within COMPILE_CHECK_FRACTION of the limit; well below it the config fits anyway.
    """
    start = _start(config, runs_dir, nets)
    limit, _ = _limit(start.place, start.data)
    analytic = start.analytic
    if max(analytic.values()) <= COMPILE_CHECK_FRACTION * limit:
        return
    _fitting(start, compile_sim=analytic.get("simulate", 0) > COMPILE_CHECK_FRACTION * limit)


class _Start(NamedTuple):
    """What `require_fit` and `build_plan` both start from (`_start`): one derivation, so `train`'s fit
    check and `mothtui plan` judge the same set-up."""

    data: dict[str, Any]
    """Where the data come from (`data_plan`)."""
    setup: Any
    """The run's set-up on this process's devices (`core.engine.loop.Setup`)."""
    place: Any
    """The engine's placement of the networks (`core.engine.loop.placement`)."""
    analytic: dict[str, int]
    """The analytic memory model of each phase (`_analytic`)."""


def _start(config: Config, runs_dir: Path | None, nets: int | None = None) -> _Start:
    """The data a run of `config` will see, the engine's set-up of `nets` networks (default: all) on this
    process's devices, and its analytic memory."""
    from core.engine import loop

    split_rows, data = data_plan(config, runs_dir)
    place = loop.placement(nets or config.nets)
    setup = loop.Setup.of(config, split_rows, nets, place)
    return _Start(data, setup, place, _analytic(setup, place, data))


def _fitting(start: _Start, compile_sim: bool = True, say=None):
    """`_compiled_memory` of the start, or DoesNotFit (`fit_problem`'s line) when the peak exceeds the limit."""
    memory, *programs = _compiled_memory(start.setup, start.place, start.data, start.analytic,
                                         compile_sim=compile_sim, say=say)
    problem = fit_problem(memory, start.setup.eval_rows, start.setup.nets)
    if problem:
        raise DoesNotFit(problem)
    return (memory, *programs)


def _analytic(setup, place, data: dict[str, Any], one_device: bool = False) -> dict[str, int]:
    """The analytic model for this process's share of each device (or, `one_device`, all its networks on one)."""
    from core.engine import measure

    _, _, platform = measure.devices_kind(place)
    rows = setup.split_rows
    return analytic_memory(setup.config, setup.nets if one_device else setup.nets // place.devices,
                           train_rows=rows["train"], on_device=setup.on_device, chunk=setup.budget.chunk,
                           eval_rows=setup.eval_rows, val_rows=rows["val"],
                           simulate_rows=sim_write_rows(platform, data["samples"]) if data["simulate"] else 0)


def _limit(place, data: dict[str, Any]) -> tuple[int, str]:
    import jax

    from core.engine import measure

    _, _, platform = measure.devices_kind(place)
    host = data["samples"] * 68 if platform == "cpu" else 0  # core.data.prepare's float32 features
    return memory_limit(platform, measure.device_memory_limit(place), len(jax.local_devices()), host)


def sim_write_rows(platform: str, samples: int) -> int:
    """Rows the dataset writer simulates and writes at a time (what core.dataset calls its chunk)."""
    from core.dataset import ACCELERATOR_CHUNK, CPU_CHUNK

    return min(samples, CPU_CHUNK if platform == "cpu" else ACCELERATOR_CHUNK)


def _compiled_memory(setup, place, data: dict[str, Any], analytic: dict[str, int], compile_sim: bool = True,
                     say=None):
    """Memory from the compiled chunk, evaluation block (and simulator, unless `compile_sim` is False:
    then the analytic estimate); returns it and the programs. `say(what)` is told each step first."""
    from core.engine import measure

    say = say or (lambda what: None)

    cfg = setup.config
    _, _, platform = measure.devices_kind(place)
    per_device = setup.nets // place.devices
    steps = measure.planned_chunk(setup, platform)
    say(f"compiling the training chunk ({setup.nets} networks, {steps} steps a call)")
    chunk = measure.compile_chunk(setup, place, steps)
    say(f"compiling the evaluation block ({setup.eval_rows:,} rows)")
    block = measure.compile_eval(setup, place, setup.eval_rows)
    extra = measure.per_step_of_chunk(setup, steps)
    missing = setup.budget.chunk - steps  # the run's chunk has this many more steps per call
    params = 4 * param_count(cfg) * per_device
    masks = param_count(cfg) * per_device
    on_device_data = 68 * setup.split_rows["train"] if setup.on_device else 0
    val = 68 * setup.split_rows["val"] if setup.seed_signal else 0
    phases = {
        # the chunk, plus the level's starting parameters the loop keeps while the state trains
        "train": chunk.memory["peak"] + missing * (extra["argument"] + extra["output"] // place.devices) + params,
        # a block, plus the split still on the device and the level's starting parameters and masks
        "evaluate": block.memory["peak"] + on_device_data + val + params + masks,
    }
    sim = None
    if data["simulate"] and compile_sim:
        say("compiling the simulator")
        sim = measure.compile_sim(data["samples"], cfg.scale)
        program, n_pad, _ = sim
        phases["simulate"] = int(program.memory["peak"] * max(1.0, sim_write_rows(platform, data["samples"]) / n_pad))
    elif data["simulate"]:
        phases["simulate"] = analytic["simulate"]
    device_data = (on_device_data or cfg.batch * setup.budget.chunk * 68) + val
    limit, source = _limit(place, data)
    memory = Memory(parameters=params, optimizer_state=2 * params + 4, masks=masks, device_data=device_data,
                    eval_activations=block.memory["temp"], phases=phases, limit=limit, limit_source=source,
                    analytic_peak=max(analytic.values()))
    return memory, chunk, block, sim, steps


def build_plan(config: Config, preset: str, runs_dir: Path | None = None,
               calibration_s: float = DEFAULT_CALIBRATION_S, progress: Callable[[int, int, str], None] | None = None,
               gpu: str | None = None, target_config: str | None = None) -> Plan:
    """Compile, analyse and calibrate; DoesNotFit before anything runs if the config does not fit.

    `progress(k, n, what)` is told before each of the n steps (compiling a program, timing one),
    so a caller can show what the minute of work is doing.
    `gpu` ("h100" or "h200"): also compile the run's programs for that GPU without one
    (core/engine/gpu_target.py) and predict its time and memory from XLA's analyses of the GPU program;
    `target_config`: the path of an XLA GPU spec to compile for instead of the built-in one."""
    from core.engine import loop, measure

    compiled_gpu = None
    if gpu:
        compiled_gpu = {GPU_KEYS[gpu]: compile_gpu(config, runs_dir, gpu, target_config)}

    load = os.getloadavg()
    calibration_s = min(max(0.5, calibration_s), MAX_CALIBRATION_S)
    start = _start(config, runs_dir)
    data, setup, place = start.data, start.setup, start.place
    split_rows = setup.split_rows
    devices, kind, platform = measure.devices_kind(place)
    grouped = measure.grouped(setup, place)
    subset = measure.timing_nets(setup, platform, devices) < setup.nets
    simulate = bool(data["simulate"])
    total = 2 + simulate + 2 * grouped + subset + 2 + simulate
    count = {"k": 0}

    def say(what: str) -> None:
        count["k"] += 1
        if progress is not None:
            progress(min(count["k"], total), total, what)

    memory, chunk, block, sim, steps = _fitting(start, say=say)
    notes: list[str] = []
    if grouped:  # costs of the programs as an accelerator runs them (all at once)
        say("compiling the training chunk without network groups (for the GPU's FLOPs)")
        all_chunk = measure.compile_chunk(setup, place, steps, all_at_once=True)
        say("compiling the evaluation block without network groups")
        all_block = measure.compile_eval(setup, place, setup.eval_rows, all_at_once=True)
        cost = _costs(setup, all_chunk, all_block, steps, devices, notes)
        notes.append("FLOPs and bytes from the programs without network groups (as a GPU runs them; "
                     "this CPU runs its networks in cache-sized groups)")
    else:
        cost = _costs(setup, chunk, block, steps, devices, notes)

    # -- calibration: training first (of a share of the networks when one step of all would be long);
    #    its measured rate sizes the evaluation block it times
    t0 = time.perf_counter()
    timed, timed_place, timed_chunk, timed_steps = setup, place, chunk, steps
    nets = measure.timing_nets(setup, platform, devices)
    if nets < setup.nets:
        timed, timed_place = dataclasses.replace(setup, nets=nets), loop.placement(nets)
        say(f"compiling a one-step chunk of {nets} networks to time")
        timed_chunk, timed_steps = measure.compile_chunk(timed, timed_place, 1), 1
        notes.append(f"timed on {nets} of the {setup.nets} networks, one step a call, and scaled up "
                     f"(a step's time grows with the networks)")
    share = setup.nets / nets
    say(f"timing training (about {0.55 * calibration_s:.1f} s)")
    train_t, timed_params = measure.time_training(timed, timed_place, timed_chunk, timed_steps, 0.55 * calibration_s)
    scaled = train_t.scaled(share)
    step_s = scaled.step_s
    rate = cost["step"]["flops"] / max(step_s, 1e-12)
    eval_budget = 0.3 * calibration_s
    rows, guess = setup.eval_rows, cost["eval_block"]["flops"] / share / rate
    if guess > eval_budget / 2:  # too long to time twice: a smaller block, scaled by rows
        rows = max(8, int(setup.eval_rows * eval_budget / 2 / guess))
    say(f"timing evaluation (about {eval_budget:.1f} s)")
    eval_t = measure.time_evaluation(timed, timed_place, rows, eval_budget, params=timed_params)
    del timed_params  # the devices' memory back before the simulator is timed
    block_s = eval_t.block_s * share * setup.eval_rows / rows
    sim_s = sample_s = 0.0
    if sim is not None:
        sim_program, n_pad, sharding = sim
        say(f"timing the simulator (about {0.15 * calibration_s:.1f} s)")
        sim_t = measure.time_simulation(sim_program, n_pad, sharding, config.scale, 0.15 * calibration_s)
        sample_s = sim_t.sample_s
        sim_s = sim_program.seconds + data["samples"] * sample_s
    calibration_spent = time.perf_counter() - t0
    timed_s = train_t.timed_s + eval_t.timed_s + (sim_t.timed_s if sim else 0.0)
    if rows != setup.eval_rows:
        notes.append(f"evaluation timed on {rows:,}-row blocks and scaled to {setup.eval_rows:,} rows "
                     f"(a CPU can be slower per row in larger blocks: then this is low)")
    if timed_steps != setup.budget.chunk:
        notes.append(f"training timed with {timed_steps} step{'s' if timed_steps > 1 else ''} per call "
                     f"(the run makes {setup.budget.chunk})")

    # -- the levels, each with its full budget
    compile_s = chunk.seconds + block.seconds
    per_level_overhead = scaled.setup_s + scaled.finish_s + 2 * scaled.place_s
    evaluated = eval_split_rows(config, split_rows)
    levels = []
    for level in range(config.levels):
        computed = setup.budget.calls_for(level) * setup.budget.chunk
        parts = level_parts(computed, evaluated, setup.eval_rows, cost)
        blocks = sum(p["blocks"] for p in parts["eval"].values())
        seconds = computed * step_s + blocks * block_s + per_level_overhead
        if level == 0:
            seconds += compile_s + scaled.first_setup_s - scaled.setup_s
        flops = parts["train"]["flops"] + sum(p["flops"] for p in parts["eval"].values())
        bytes_ = parts["train"]["bytes"] + sum(p["bytes"] for p in parts["eval"].values())
        levels.append(Level(level, config.sparsities[level], setup.budget.steps_for(level), computed, blocks,
                            flops, bytes_, seconds, parts=parts))
    gpu_costs = {key: (compiled_gpu or {}).get(key) or gpu_cost(config, setup.nets, split_rows, key)
                 for key in GPU_PEAKS}
    gpus = _roofline(config, levels, evaluated, gpu_costs, _analytic(setup, place, data, one_device=True))
    run_s = sum(level.seconds_here for level in levels)
    here = TimeHere(compile_s=compile_s, simulate_s=sim_s, run_s=run_s, total_s=sim_s + run_s, step_s=step_s,
                    eval_block_s=block_s, sample_s=sample_s, steps_per_timed_call=timed_steps, nets_timed=nets,
                    calibration_s=calibration_spent, timed_s=timed_s, load=[round(x, 2) for x in load])
    notes.append("the full budget of every level: early stopping can only make the run shorter")
    notes.append("not counted here: reading the dataset, pruning, writing the levels")
    for key, gpu_plan in gpu_costs.items():
        if gpu_plan["source"] == "analytic model":
            notes.append(f"{key}: FLOPs and bytes from the analytic model of the GPU program (`--gpu "
                         f"{key.lower()}` compiles it for the GPU), memory from the analytic model")
    if config.eval_train_rows and config.eval_train_rows < split_rows["train"]:
        notes.append(f"the training split's loss on its first {config.eval_train_rows:,} rows "
                     f"(`eval_train_rows`; 0: all {split_rows['train']:,})")
    return Plan(preset=preset, config=config, nets=setup.nets, devices=devices, device_kind=kind, platform=platform,
                split_rows=split_rows, dataset=data,
                budget={"level0_steps": setup.budget.level0_steps, "max_steps": setup.budget.max_steps,
                        "chunk": setup.budget.chunk},
                memory=memory, cost=cost, levels=levels, here=here, gpus=gpus, notes=notes)


def eval_split_rows(config: Config, split_rows: dict[str, int]) -> dict[str, int]:
    """Rows each split's loss is computed on at every level: all of them, but the training split's first
    `eval_train_rows` when that is set (`loop.Engine.evaluate` does the same)."""
    rows = dict(split_rows)
    if config.eval_train_rows:
        rows["train"] = min(rows["train"], config.eval_train_rows)
    return rows


def level_parts(steps: int, evaluated: dict[str, int], eval_rows: int, cost: dict[str, Any]) -> dict[str, Any]:
    """FLOPs and bytes of a level's `steps` training steps and of evaluating each split in blocks of
    `eval_rows` rows, from one step's and one block's `cost`."""
    step, block = cost["step"], cost["eval_block"]
    out: dict[str, Any] = {"train": {"steps": steps, "flops": steps * step["flops"], "bytes": steps * step["bytes"]},
                           "eval": {}}
    for split, rows in evaluated.items():
        blocks = -(-rows // eval_rows)
        out["eval"][split] = {"rows": rows, "blocks": blocks, "flops": blocks * block["flops"],
                              "bytes": blocks * block["bytes"]}
    return out


def gpu_cost(config: Config, nets: int, split_rows: dict[str, int], key: str) -> dict[str, Any]:
    """The analytic model of the GPU program's cost (STEP_BYTES_PER_PARAM and its kin, fitted to XLA's
    analysis of the deviceless GPU compile): one step and one evaluation block of `nets` networks on one
    GPU, its block rows as the engine would choose them there."""
    from core.engine import gpu_target

    params = param_count(config)
    activations = config.batch * sum(config.layer_sizes[1:])
    weights = sum(a * b for a, b in zip(config.layer_sizes, config.layer_sizes[1:]))
    rows = gpu_target.eval_rows(config, max(split_rows.values()), gpu_target.TARGETS[_gpu_name(key)])
    return {"source": "analytic model", "eval_rows": rows,
            "step": {"flops": 6.0 * config.batch * weights * nets,
                     "bytes": nets * (STEP_BYTES_PER_PARAM * params + STEP_BYTES_PER_ACTIVATION * activations)
                     + 68 * config.batch},
            "eval_block": {"flops": 2.0 * weights * nets * rows,
                           "bytes": nets * (4 * params + EVAL_BYTES_PER_ACTIVATION * rows * sum(config.layer_sizes[1:]))
                           + 72 * rows}}


def _gpu_name(key: str) -> str:
    return {v: k for k, v in GPU_KEYS.items()}[key]


def compile_gpu(config: Config, runs_dir: Path | None, gpu: str, target_config: str | None) -> dict[str, Any]:
    """`plan --gpu`: the run's chunk and evaluation block compiled for one GPU of kind `gpu` holding every
    network (no GPU needed: core/engine/gpu_target.py); their cost (as `_costs` reads a local compile) and
    the memory of each phase (as `_compiled_memory` adds what the level loop keeps beside them)."""
    from core.engine import gpu_target, measure

    split_rows, _ = data_plan(config, runs_dir)
    text = gpu_target.load_target_config(target_config) if target_config else None
    target = gpu_target.TARGETS[gpu]
    setup, chunk, block = gpu_target.compile_for(config, split_rows, target, text)
    notes: list[str] = []
    cost = _costs(setup, chunk, block, setup.budget.chunk, 1, notes)
    cost["source"] = "compiled for the GPU" if cost["source"] == "compiled" else "analytic (no cost analysis)"
    params = 4 * param_count(config) * setup.nets
    on_device = 68 * split_rows["train"] if setup.on_device else 0
    val = 68 * split_rows["val"] if setup.seed_signal else 0
    phases = {"train": chunk.memory["peak"] + params,
              "evaluate": block.memory["peak"] + on_device + val + params + param_count(config) * setup.nets}
    return {**cost, "memory": {"chunk": chunk.memory, "eval_block": block.memory, "phases": phases,
                               "limit": int(target.memory * gpu_target.ALLOCATOR_FRACTION),
                               "limit_source": f"{gpu_target.ALLOCATOR_FRACTION:.0%} of {target.memory / 1e9:.0f} GB "
                                               "(JAX's default allocator share)"},
            "compile_s": chunk.seconds + block.seconds, "target_config": target_config or "built in",
            "device": target.name}


def _costs(setup, chunk, block, steps: int, devices: int, notes: list[str]) -> dict[str, Any]:
    """FLOPs and bytes of one step and one evaluation block of the whole ensemble (all devices)."""
    from core.engine import measure

    model_step = measure.model_flops_per_step(setup)
    model_block = measure.model_flops_per_eval_row(setup) * setup.eval_rows
    params_bytes = 4 * param_count(setup.config) * setup.nets
    if chunk.cost is None or block.cost is None:
        notes.append("no cost analysis from this backend: analytic model FLOPs (6 x batch x weights per "
                     "network and step) and bytes (parameters and Adam's state, a dozen passes a step)")
        return {"source": "analytic", "eval_rows": setup.eval_rows,
                "step": {"flops": model_step, "bytes": 12.0 * params_bytes},
                "eval_block": {"flops": model_block, "bytes": float(params_bytes + 72 * setup.eval_rows)}}
    flops, bytes_ = chunk.cost["flops"] * devices, chunk.cost["bytes"] * devices
    if steps > 1 and flops > 0.5 * steps * model_step:  # this backend counted every step of the scan
        flops, bytes_ = flops / steps, bytes_ / steps
    block_flops, block_bytes = block.cost["flops"] * devices, block.cost["bytes"] * devices
    # the gather of a batch is charged its whole operand: count one batch's rows instead
    data = 68 * (setup.split_rows["train"] if setup.on_device else steps * setup.config.batch)
    data += 68 * setup.split_rows["val"] if setup.seed_signal else 0
    bytes_ = max(bytes_ - data, 0.0) + 68 * setup.config.batch
    return {"source": "compiled", "eval_rows": setup.eval_rows,
            "step": {"flops": flops, "bytes": bytes_, "model_flops": model_step},
            "eval_block": {"flops": block_flops, "bytes": block_bytes, "model_flops": model_block}}


def _roofline(config: Config, levels: list[Level], evaluated: dict[str, int], costs: dict[str, dict],
              analytic: dict[str, int]) -> dict:
    """Seconds on one GPU of each kind: per step and per evaluation block max(FLOPs / (peak x efficiency),
    bytes / (bandwidth x efficiency)), with that GPU's program cost (`costs[key]`: compiled for it by
    `--gpu`, else the analytic model) and its own evaluation blocks; `run_s_at_peak` at 100 %."""
    out = {}
    for key, gpu in GPU_PEAKS.items():
        peak, bandwidth, cost = gpu["flops"][config.precision], gpu["bandwidth"], costs[key]
        eff = GPU_EFFICIENCY

        def seconds(part: dict[str, float], f: float = eff["flops"], b: float = eff["bandwidth"]) -> float:
            return max(part["flops"] / (peak * f), part["bytes"] / (bandwidth * b))

        step_s, block_s = seconds(cost["step"]), seconds(cost["eval_block"])
        blocks = sum(-(-rows // cost["eval_rows"]) for rows in evaluated.values())
        levels_s = [level.computed_steps * step_s + blocks * block_s for level in levels]
        at_peak = sum(level.computed_steps * seconds(cost["step"], 1, 1) + blocks * seconds(cost["eval_block"], 1, 1)
                      for level in levels)
        for level, s in zip(levels, levels_s):
            level.seconds_gpu[key] = s
        train_s = sum(level.computed_steps for level in levels) * step_s
        compiled = cost.get("memory")
        need = max(compiled["phases"].values()) if compiled else max(analytic.values())
        limit = compiled["limit"] if compiled else gpu["memory"]
        out[key] = {"name": gpu["name"], "peak_flops": peak, "bandwidth": bandwidth, "memory": gpu["memory"],
                    "efficiency": dict(eff), "precision": config.precision,
                    "cost": {k: v for k, v in cost.items() if k != "memory"},
                    "step_s": step_s, "eval_block_s": block_s, "eval_blocks_per_level": blocks,
                    "bound": "compute" if cost["step"]["flops"] / (peak * eff["flops"])
                    >= cost["step"]["bytes"] / (bandwidth * eff["bandwidth"]) else "memory",
                    "run_s": sum(levels_s), "run_s_at_peak": at_peak, "train_s": train_s,
                    "eval_s": sum(levels_s) - train_s,
                    "memory_needed": need, "memory_limit": limit, "fits": need <= limit,
                    "compiled_memory": compiled, "levels_s": levels_s}
    return out
