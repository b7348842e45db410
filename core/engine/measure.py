"""The engine's own programs, compiled on shapes alone, read by XLA, and timed on random arrays.

`mothtui plan` (core/plan.py) asks here what a config costs before anything is trained:

- `compile_chunk`, `compile_eval`, `compile_sim` lower and compile, for this process's devices and
  on `jax.ShapeDtypeStruct`s only (no data, nothing allocated), the very functions a run calls:
  `train.chunk_on_device` (or `train.chunk_from_host` when the training split does not stay on
  the device, `loop.train_split_on_device`), `evaluate._block_sse` at the run's block rows, and the
  simulator's batch function (`core.sim.api.batch_function`). They go through the functions'
  public signatures, so the plan follows whatever those compile to.
- `Program.memory` is XLA's memory analysis (argument, output, alias and temp bytes, per device);
  `Program.cost` its cost analysis (FLOPs and bytes accessed), or None where the backend gives none.
- `time_training`, `time_evaluation`, `time_simulation` run the compiled programs on random arrays
  of the config's shapes the way the level loop and the dataset writer do (host batches, pulls,
  per-level set-up), within a time budget, so the prediction carries this machine's real overheads.
  Training is timed through the level loop's own calls (`loop.Chunks`, `loop.level_state`), not a
  copy of them.

The run's set-up (networks, split rows, level budget, data placement, layout) is the engine's own
`loop.Setup`, so what is compiled and timed here is what `loop.Engine` would run.

Why some programs are compiled smaller than the run's: a compiled call of 200 steps of 400
full-size networks takes minutes on a CPU, so the chunk is compiled with fewer steps per call
(`planned_chunk`, from the config's FLOPs alone) when one call would exceed CALL_FLOPS; the memory
of the run's chunk is then the compiled one plus the per-step arguments of the missing steps
(batch indices in, losses out), which is all that depends on the scan's length. When even one step
of the ensemble exceeds it, a share of the networks is timed (`timing_nets`). The simulator compiles once, for one block
per device (its compile is the slow one), and its memory is scaled to the rows of one dataset write.
"""

from __future__ import annotations

import dataclasses

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core.config import Config
from core.data import N_INPUTS, N_OUTPUTS, BatchPlan
from core.engine import evaluate, loop, train
from core.engine.model import Layer, weight_count
from core.engine.sharding import Placement

#: Bytes of one training row (inputs and outputs, float32).
ROW_BYTES = 4 * (N_INPUTS + N_OUTPUTS)
S = jax.ShapeDtypeStruct


#: A run's set-up on this process's devices: the engine's own description (`loop.Setup`).
Setup = loop.Setup


class Program(NamedTuple):
    """One compiled program: the executable, the seconds it took (trace, lower, compile), XLA's analyses."""

    compiled: Any
    seconds: float
    memory: dict[str, int]
    """Per device: `argument`, `output`, `alias` (outputs that reuse donated arguments), `temp`, and
    `peak` = argument + output - alias + temp (what the program holds while it runs)."""
    cost: dict[str, float] | None
    """Per device, as XLA counts them: `flops`, `bytes` (bytes accessed); None if not available."""


def grouped(setup: Setup, place: Placement) -> bool:
    """Whether the engine runs this setup's training or evaluation in groups of networks."""
    cfg = setup.config
    train_group = train.group_size(setup.step_config(place), setup.nets, cfg.layer_sizes, cfg.batch)
    eval_group = evaluate._divisor(setup.nets, setup.eval_group) if setup.eval_group else setup.nets
    return train_group < setup.nets or eval_group < setup.nets


def memory_of(compiled) -> dict[str, int]:
    stats = compiled.memory_analysis()
    parts = {name: int(getattr(stats, f"{name}_size_in_bytes", 0) or 0) for name in ("argument", "output", "alias", "temp")}
    parts["peak"] = parts["argument"] + parts["output"] - parts["alias"] + parts["temp"]
    return parts


def cost_of(compiled) -> dict[str, float] | None:
    """FLOPs and bytes accessed from XLA's cost analysis; it is a dict, a list of one dict per
    program (older JAX), or missing on some backends: None then (the caller falls back)."""
    try:
        analysis = compiled.cost_analysis()
    except Exception:  # not implemented on this backend
        return None
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else None
    if not isinstance(analysis, dict) or not analysis.get("flops"):
        return None
    return {"flops": float(analysis["flops"]), "bytes": float(analysis.get("bytes accessed", 0.0))}


def _compile(fn, *args, **kwargs) -> Program:
    t0 = time.perf_counter()
    compiled = fn.lower(*args, **kwargs).compile()
    return Program(compiled, time.perf_counter() - t0, memory_of(compiled), cost_of(compiled))


# ---- shapes --------------------------------------------------------------------------------------

def param_shapes(config: Config, nets: int, dtype, sharding=None) -> list[Layer]:
    sizes = config.layer_sizes
    return [Layer(S((nets, a, b), dtype, sharding=sharding), S((nets, b), dtype, sharding=sharding))
            for a, b in zip(sizes, sizes[1:])]


def _state_shapes(setup: Setup, place: Placement, sc: train.StepConfig):
    params = param_shapes(setup.config, setup.nets, jnp.float32, place.by_network)
    state = jax.eval_shape(lambda p, d: train.init_state(p, d, sc), params, S((setup.nets,), jnp.bool_))
    return jax.tree.map(lambda a: S(a.shape, a.dtype, sharding=place.by_network if a.ndim else place.replicated),
                        state)


def _data(rows: int, width: int, place: Placement) -> S:
    return S((rows, width), jnp.float32, sharding=place.replicated)


def compile_chunk(setup: Setup, place: Placement, steps: int, all_at_once: bool = False) -> Program:
    """The training chunk of `steps` steps, as `loop.Engine.train_level` calls it (`all_at_once`:
    without network groups, as an accelerator runs it; XLA's cost analysis counts a grouped
    program's loop body once, and charges each group's slice its whole operand)."""
    cfg = setup.config
    sc = setup.step_config(place)
    if all_at_once:
        sc = dataclasses.replace(sc, group=setup.nets)
    state = _state_shapes(setup, place, sc)
    masks = param_shapes(cfg, setup.nets, jnp.bool_, place.by_network)
    scalar = S((), jnp.int32)  # jnp.int32(step): uncommitted, as the loop passes it
    val = None
    if setup.seed_signal:
        val = (_data(setup.split_rows["val"], N_INPUTS, place), _data(setup.split_rows["val"], N_OUTPUTS, place))
    data: tuple[S, ...]
    batches: tuple[S, ...]
    if setup.on_device:
        rows = setup.split_rows["train"]
        data = (_data(rows, N_INPUTS, place), _data(rows, N_OUTPUTS, place))
        batches = (S((steps, cfg.batch), jnp.int32, sharding=place.replicated),)
    else:
        data = ()
        batches = (S((steps, cfg.batch, N_INPUTS), jnp.float32, sharding=place.replicated),
                   S((steps, cfg.batch, N_OUTPUTS), jnp.float32, sharding=place.replicated))
    return _compile(loop.chunk_function(setup.on_device), sc, state, masks, *data, *batches, scalar, scalar, val)


def per_step_of_chunk(setup: Setup, steps: int) -> dict[str, int]:
    """Argument and output bytes one more step of a chunk adds (its batch in, its losses out)."""
    batch_in = setup.config.batch * (4 if setup.on_device else ROW_BYTES)
    return {"argument": batch_in, "output": 4 * setup.nets}


def compile_eval(setup: Setup, place: Placement, rows: int, all_at_once: bool = False) -> Program:
    """One evaluation block of `rows` rows, as `evaluate.split_loss` calls it (`all_at_once`: as
    `compile_chunk`)."""
    params = param_shapes(setup.config, setup.nets, jnp.float32, place.by_network)
    return _compile(evaluate._block_sse, params, _data(rows, N_INPUTS, place), _data(rows, N_OUTPUTS, place),
                    S((rows,), jnp.float32, sharding=place.replicated), precision=setup.config.precision,
                    group=0 if all_at_once else setup.eval_group)


def compile_sim(samples: int, scale: float) -> tuple[Program, int, Any]:
    """The simulator's batch function for one block on every device (the smallest batch it runs);
    returns the program, its padded row count and its input sharding."""
    from core.sim import api

    fn, sharding, n_pad = api.batch_function(min(samples, _sim_block_rows()), scale=scale)
    program = _compile(fn, S((n_pad, 8), jnp.float32, sharding=sharding), S((n_pad, 3), jnp.float32, sharding=sharding))
    return program, n_pad, sharding


def _sim_block_rows() -> int:
    """One full block of the simulator on every local device."""
    from core.sim import api

    devices = jax.local_devices()
    return api._default_block(devices) * len(devices)


# ---- timing ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingTiming:
    """What `time_training` measured, seconds (its docstring says of what)."""

    place_s: float
    first_setup_s: float
    setup_s: float
    step_s: float
    finish_s: float
    timed_s: float
    calls: int
    """Timed calls of the chunk."""
    spent_s: float
    """All of the calibration, with the random arrays it made."""

    def scaled(self, share: float) -> "TrainingTiming":
        """The seconds of `share` times as many networks as were timed (a step's time grows with them);
        `timed_s` and `spent_s` stay what this machine spent."""
        return dataclasses.replace(self, place_s=self.place_s * share, first_setup_s=self.first_setup_s * share,
                                   setup_s=self.setup_s * share, step_s=self.step_s * share,
                                   finish_s=self.finish_s * share)


@dataclass(frozen=True)
class EvalTiming:
    """What `time_evaluation` measured: the median seconds of a block, over `blocks` calls."""

    block_s: float
    blocks: int
    timed_s: float
    spent_s: float


@dataclass(frozen=True)
class SimTiming:
    """What `time_simulation` measured: seconds per simulated stroke, over `batches` calls."""

    sample_s: float
    batches: int
    timed_s: float
    spent_s: float


def _median_time(run, budget_s: float, at_most: int = 7) -> tuple[float, int]:
    """Median seconds of `run()` after a first, warm-up call (allocations, thread pools: it can take
    twice as long), over as many calls as fit `budget_s`. The first call alone is the answer only
    when it took the whole budget; so the timed calls end within the budget plus one call."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < at_most:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
        if len(times) == 1 and times[0] >= budget_s:
            break
        if len(times) >= 2 and time.perf_counter() - start + times[-1] > budget_s:
            break
    return float(np.median(times[1:] or times)), len(times)


def _noise(shape, dtype, seed: int) -> np.ndarray:
    """A host array: true booleans, or normal floats (std 0.05) from one block of at most a million
    draws tiled over the shape (quick for the 132 M parameters of 400 full-size networks; timing
    does not care that the values repeat)."""
    if dtype == np.bool_:
        return np.ones(shape, bool)
    size = int(np.prod(shape))
    block = 0.05 * np.random.default_rng(seed).standard_normal(min(size, 1 << 20), np.float32)
    return np.resize(block, shape)


def host_params(setup: Setup, dtype=np.float32, seed: int = 0) -> list[Layer]:
    """Random parameters (or, with dtype bool, masks) of this process's networks, on the host."""
    return [Layer(*(_noise(x.shape, dtype, seed + i) for x in layer))
            for i, layer in enumerate(param_shapes(setup.config, setup.nets, dtype))]


def random_params(setup: Setup, place: Placement, dtype=np.float32, seed: int = 0):
    """`host_params` placed as the engine places them."""
    return place.sharded(host_params(setup, dtype, seed))


#: Rows above which the stand-in data are zeros made on the device, not random rows copied from the
#: host (a float's value does not change the time of the arithmetic; a copy of millions of rows to every
#: device would take longer than the calls timed).
RANDOM_ROWS = 1_000_000


def _device_rows(rows: int, width: int, place: Placement, seed: int):
    if rows <= RANDOM_ROWS:
        return place.data(_host_rows(rows, width, seed))
    return jnp.zeros((rows, width), jnp.float32, device=place.replicated)


def _host_rows(rows: int, width: int, seed: int) -> np.ndarray:
    """Random rows in [-0.5, 0.5) (scaled units); one block drawn and tiled, so it is quick for millions."""
    block = np.random.default_rng(seed).uniform(-0.5, 0.5, (min(rows, 65_536), width)).astype(np.float32)
    return np.resize(block, (rows, width))


#: Parameters up to which a later level's set-up is timed on its own; above, copying the arrays is
#: what takes the time and the first level's set-up (with its small compiles) stands for it.
SECOND_SETUP_BYTES = 64 * 2 ** 20


def param_bytes(setup: Setup) -> int:
    sizes = setup.config.layer_sizes
    return 4 * setup.nets * sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def time_training(setup: Setup, place: Placement, program: Program, steps: int,
                  budget_s: float) -> tuple[TrainingTiming, Any]:
    """Seconds per step of the compiled chunk (`steps` steps per call), and a level's set-up; and the
    random parameters it placed on the devices (the evaluation's timing reuses them).

    Through the engine's own pieces (core.engine.loop): the level's state from `loop.level_state`, the
    calls from `loop.Chunks` (`Engine.train_level` runs the same: one call per chunk, the next chunk's
    batches prepared after it is dispatched, the losses and flags pulled once per chunk), the state
    pulled at the end. `first_setup_s` is the first level's set-up (it compiles the small eager
    operations), `setup_s` a later level's (the first one's for big ensembles, SECOND_SETUP_BYTES:
    copies then dominate), `place_s` one copy of the parameters from the host (the loop places a level's
    parameters for training and for evaluation), `finish_s` pulling the state back, `timed_s` the
    timed calls.
    """
    cfg = setup.config
    sc = setup.step_config(place)
    t_start = time.perf_counter()
    host = host_params(setup)
    t0 = time.perf_counter()
    params = jax.block_until_ready(place.sharded(host))
    place_s = time.perf_counter() - t0
    del host
    masks = jax.block_until_ready([Layer(*(jnp.ones(x.shape, bool, device=place.by_network) for x in layer))
                                   for layer in param_shapes(cfg, setup.nets, jnp.bool_)])

    def new_state():
        return jax.block_until_ready(loop.level_state(place, sc, params, jnp.zeros(setup.nets, bool)))

    t0 = time.perf_counter()
    state = new_state()
    first_setup_s = setup_s = time.perf_counter() - t0
    if param_bytes(setup) <= SECOND_SETUP_BYTES:  # a later level's set-up, without the first one's compiles
        t0 = time.perf_counter()
        state = new_state()
        setup_s = time.perf_counter() - t0

    train_rows = setup.split_rows["train"]
    batch_plan = setup.batch_plan()
    val = None
    if setup.seed_signal:
        n_val = setup.split_rows["val"]
        val = (_device_rows(n_val, N_INPUTS, place, 3), _device_rows(n_val, N_OUTPUTS, place, 4))
    host_split = None
    data: tuple = ()
    if setup.on_device:
        data = (_device_rows(train_rows, N_INPUTS, place, 5), _device_rows(train_rows, N_OUTPUTS, place, 6))
    else:  # batches gathered on the host, from a smaller stand-in split (a gather's cost barely depends on it)
        host_rows = min(train_rows, 1_000_000)
        host_split = (_host_rows(host_rows, N_INPUTS, 5), _host_rows(host_rows, N_OUTPUTS, 6))
        batch_plan = BatchPlan(host_rows, cfg.batch, cfg.seed)
    # level 0's calls with no step cap in reach: every call trains, however many fit the budget
    chunks = loop.Chunks(program.compiled, state, masks, loop.chunk_batches(place, batch_plan, 0, steps, host_split),
                         0, NO_CAP, steps, data, val)
    t0 = time.perf_counter()
    seconds_per_call, calls = _median_time(lambda: next(chunks), budget_s)
    timed_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.device_get(chunks.state)
    finish_s = time.perf_counter() - t0
    return TrainingTiming(place_s=place_s, first_setup_s=first_setup_s, setup_s=setup_s,
                          step_s=seconds_per_call / steps, finish_s=finish_s, timed_s=timed_s, calls=calls,
                          spent_s=time.perf_counter() - t_start), params


#: The step cap of the timed calls: beyond any step a calibration reaches.
NO_CAP = 2 ** 30


def time_evaluation(setup: Setup, place: Placement, rows: int, budget_s: float, params=None) -> EvalTiming:
    """Seconds of one evaluation block of `rows` rows through `evaluate.split_loss`, as the loop calls it
    (host slices placed on the device, the sums pulled)."""
    cfg = setup.config
    t_start = time.perf_counter()
    params = random_params(setup, place) if params is None else params
    x, y = _host_rows(rows, N_INPUTS, 7), _host_rows(rows, N_OUTPUTS, 8)

    def block():
        evaluate.split_loss(params, x, y, rows, cfg.precision, put=place.data, group=setup.eval_group)

    t0 = time.perf_counter()
    block_s, blocks = _median_time(block, budget_s)
    timed_s = time.perf_counter() - t0
    return EvalTiming(block_s, blocks, timed_s, spent_s=time.perf_counter() - t_start)


def time_simulation(program: Program, n_pad: int, sharding, scale: float, budget_s: float) -> SimTiming:
    """Seconds per simulated stroke of the compiled simulator batch (sampling, padding, the call, the
    pulls and the checks, as `core.dataset` does per write)."""
    from core.sim.integrate import ERROR_TOLERANCE
    from core.sim.sampling import sample_rows

    t_start = time.perf_counter()

    def batch():
        initial, controls = sample_rows(0, 0, n_pad)
        final, err = program.compiled(jax.device_put(initial.astype(np.float32), sharding),
                                      jax.device_put(controls.astype(np.float32), sharding))
        final, err = np.array(final), np.asarray(err)
        return np.isfinite(final).all(axis=1) & (err < ERROR_TOLERANCE)

    t0 = time.perf_counter()
    seconds, calls = _median_time(batch, budget_s, at_most=4)
    timed_s = time.perf_counter() - t0
    return SimTiming(seconds / n_pad, calls, timed_s, spent_s=time.perf_counter() - t_start)


def model_flops_per_step(setup: Setup) -> float:
    """The analytic model FLOPs of one training step of this process's networks: 6 x batch x weights
    x networks (forward 2, backward 4), as `core.engine.bench` counts them."""
    return 6.0 * setup.config.batch * weight_count(setup.config.layer_sizes) * setup.nets


def model_flops_per_eval_row(setup: Setup) -> float:
    """Analytic FLOPs of one evaluation row of this process's networks (the forward pass: 2 x weights)."""
    return 2.0 * weight_count(setup.config.layer_sizes) * setup.nets


def devices_kind(place: Placement) -> tuple[int, str, str]:
    device = place.mesh.devices.flat[0]
    return place.devices, place.device_kind, device.platform


def device_memory_limit(place: Placement) -> int | None:
    """The accelerator's memory per device (`bytes_limit` of its memory stats); None on a CPU."""
    device = place.mesh.devices.flat[0]
    if device.platform == "cpu":
        return None
    try:
        stats = device.memory_stats() or {}
    except Exception:
        stats = {}
    limit = stats.get("bytes_limit")
    return int(limit) if limit else None


#: Model FLOPs one timed call of the chunk may take: a fraction of a second of a CPU, about a second
#: when it is loaded. An accelerator runs far more in that time.
CALL_FLOPS = {"cpu": 3e10}
ACCELERATOR_CALL_FLOPS = 1e14


def _call_flops(platform: str) -> float:
    return CALL_FLOPS.get(platform, ACCELERATOR_CALL_FLOPS)


def planned_chunk(setup: Setup, platform: str) -> int:
    """Steps per call of the chunk the plan compiles: the run's own (`Budget.chunk`), unless one call
    would exceed CALL_FLOPS model FLOPs, then fewer (at least one). A function of the config and the
    platform only, so `plan` and `train`'s memory check compile the same program."""
    return max(1, min(setup.budget.chunk, int(_call_flops(platform) // model_flops_per_step(setup))))


def timing_nets(setup: Setup, platform: str, devices: int) -> int:
    """Networks the calibration times: all of them, unless one step of all of them exceeds CALL_FLOPS;
    then as many as fit it (a multiple of the devices, at least two on each). A step's time grows
    in proportion to the networks once there are a few dozen (on a CPU within 10 % from 32 to 400
    full-size networks: README, engine throughput), so their time is scaled up by the share."""
    per_net = model_flops_per_step(setup) / setup.nets
    if per_net * setup.nets <= _call_flops(platform):
        return setup.nets
    fit = int(_call_flops(platform) // per_net) // devices * devices
    return min(setup.nets, max(2 * devices, fit))
