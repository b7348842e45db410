"""The level loop: train, evaluate, write, prune, level after level, resumable at any level.

Level 0 trains the unpruned networks; level l >= 1 starts from level l-1's trained weights
pruned to the level's target, with fresh Adam moments (or, with `optimizer_state = "carried"`, the
moments and step count the previous level ended with, stored in the run). Each level's arrays are written to the
run store and only then is `levels_complete` advanced. Because a level's start depends only on
the previous level's stored float32 arrays, and batches and initialisation only on (seed,
network, level, step), a run resumed after SIGKILL is bit-identical to an uninterrupted one.

Progress goes to a list of sinks (callables taking a typed `core.events` record): the run's
events.jsonl writer, and in the CLI the console display (`core.commands.display`). Cancellation
is a `threading.Event` checked between compiled chunks (SIGTERM/SIGINT set it): the level in
progress is abandoned, the run is marked `cancelled`, and `Cancelled` is raised.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from core import cmdline
from core.config import Config
from core.data import N_INPUTS, N_OUTPUTS, BatchPlan, Prepared
from core.distributed import Cluster, LevelSync
from core.engine import evaluate, model, prune, train
from core.engine.eta import LevelTiming, eta_seconds, held
from core.engine.model import Layer, Params
from core.engine.sharding import NetSlice, Placement, make_mesh, process_slice
from core.errors import Cancelled, StoreError
from core.events import Event, EventWriter
from core.branch import open_origin, parent_of
from core.runstore import SPLITS, Checkpoint, Run
from core.status import Outcome

#: Where events go besides events.jsonl (the CLI's console display): a callable taking each typed record.
Sink = Callable[[Event], None]
#: Bytes of training data we are willing to keep on each device; above it, batches come from the host.
DEVICE_DATA_BUDGET = int(os.environ.get("MOTHTUI_DEVICE_DATA_BYTES", 2 << 30))
#: Minimum seconds between two progress events (a fast small run must not flood the UI).
PROGRESS_EVERY_S = 0.5


@dataclass
class LevelResult:
    """One trained level of the ensemble (host arrays, `(N, ...)`)."""

    params: Params
    masks: Params
    steps: np.ndarray
    stopped: np.ndarray
    diverged: np.ndarray
    losses: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    moments: train.Moments | None = None
    """Adam's state at the end of the level, kept when the optimizer state carries across levels."""


class Budget(NamedTuple):
    """The step caps of a run's levels and the steps of one compiled call."""

    level0_steps: int
    """Step cap of level 0 (the dense networks may get a longer budget)."""
    max_steps: int
    """Step cap of a retraining level (1, 2, ...)."""
    chunk: int
    """Steps per compiled call; a level runs ceil(cap / chunk) calls (steps past the cap do nothing)."""

    def steps_for(self, level: int) -> int:
        return self.level0_steps if level == 0 else self.max_steps

    def calls_for(self, level: int) -> int:
        """Compiled calls a level makes when no network stops early."""
        return -(-self.steps_for(level) // self.chunk)


def budget(config: Config, steps_per_epoch: int) -> Budget:
    """The training budget of every level (`epochs_per_level`, `level0_epochs`, `max_steps`) for a
    training split of `steps_per_epoch` batches: what the engine runs, and what `mothtui plan` predicts."""
    def cap(epochs: float) -> int:
        return config.max_steps or max(1, math.ceil(epochs * steps_per_epoch))

    level0, later = cap(config.level0_epochs or config.epochs_per_level), cap(config.epochs_per_level)
    return Budget(level0, later, min(config.steps_per_call, later, level0))


def train_split_on_device(rows: int) -> bool:
    """Whether a training split of `rows` valid rows (float32 inputs and outputs) stays on the device;
    above DEVICE_DATA_BUDGET each chunk's batches are gathered on the host (`train.chunk_from_host`)."""
    return rows * (N_INPUTS + N_OUTPUTS) * 4 <= DEVICE_DATA_BUDGET


class Layout(NamedTuple):
    """How a run's work is cut on the machine that created it: decided once, recorded in the run
    (its `layout` attribute), and reused by every process that continues it.

    Why: XLA's batched matmul kernels may round a network's sums differently for different
    numbers of networks in one call (seen on an AMD EPYC with 512 KiB of L2 per core, not on the
    2 MiB Intel), and the group sizes below are read from the CPU's caches. A resume on a machine
    with other caches would otherwise train with other groups than the levels before it. With the
    layout recorded, a network's computation has the same shapes from the first level to the last,
    wherever the run continues.
    """

    train_group: int
    """Networks per group of a training chunk (at most; `train.group_size` takes a divisor);
    the network count: all at once."""
    eval_rows: int
    """Rows per evaluation block."""
    eval_group: int
    """Networks evaluated at once (0: all)."""

    @classmethod
    def of(cls, config: Config, place: Placement, nets: int, largest_split: int) -> "Layout":
        """The layout this machine chooses for `nets` networks on `place`.

        Networks run in cache-sized groups on one CPU device; all at once when sharded over
        devices (a group would cut across the shards) and on accelerators (`auto_group` gives 0
        there). Evaluation blocks: `evaluate.block_rows` of the whole ensemble, grouped as
        `evaluate.eval_group` says on one device.
        """
        device = place.mesh.devices.flat[0]
        one = place.devices == 1
        widest = max(config.layer_sizes)
        group = train.auto_group(config.layer_sizes, config.batch, device) if one else 0
        rows = evaluate.block_rows(config.eval_batch, largest_split, config.nets, widest, device)
        return cls(group or nets, rows, evaluate.eval_group(rows, widest, device) if one else 0)

    def on(self, place: Placement) -> "Layout":
        """This recorded layout on `place`: as recorded on one device; with the networks sharded over
        several, each device's networks at once (a group would cut across the shards), the
        recorded blocks kept."""
        return self if place.devices == 1 else Layout(self.train_group, self.eval_rows, 0)

    @classmethod
    def from_attrs(cls, value: dict | None) -> "Layout | None":
        """The layout recorded in a run's attributes (None for runs from before it was recorded)."""
        return cls(**{k: int(v) for k, v in value.items()}) if value else None


def step_config(config: Config, place: Placement, nets: int, layout: Layout | None = None) -> train.StepConfig:
    """The compiled step's settings for `nets` networks on `place` (the engine, `mothtui plan` and
    `mothtui bench`), with the training group of `layout` (default: this machine's choice, `Layout.of`)."""
    layout = layout or Layout.of(config, place, nets, 1)
    return dataclasses.replace(train.StepConfig.from_config(config),
                               group=layout.train_group if place.devices == 1 else nets)


def placement(nets: int, devices: list | None = None) -> Placement:
    """Where the engine puts `nets` networks: sharded over `devices` (default: the local ones, as many
    as divide them; `sharding.make_mesh`)."""
    return Placement(make_mesh(nets, devices))


@dataclass(frozen=True)
class Setup:
    """A run's set-up on this process's devices, described once: the networks, the rows of each split,
    the level budget, where the training data live and how the work is cut.

    Why one description: `Engine` trains on it, and `mothtui plan` (core.engine.measure) compiles,
    analyses and times the same programs from it before any data exist (`split_rows` is all it
    needs), so what plan predicts and what the engine runs cannot be derived two ways.
    """

    config: Config
    nets: int
    """Networks of this process (all of them, unless a distributed run gives it a slice)."""
    split_rows: dict[str, int]
    """Valid rows of each split (train, val, test): counts (`core.data.split_ranges` gives the row ranges)."""
    budget: Budget
    on_device: bool
    """The training split stays on the device (else each chunk's batches come from the host)."""
    layout: Layout
    """How the engine cuts the work (training groups, evaluation blocks)."""

    @classmethod
    def of(cls, config: Config, split_rows: dict[str, int], nets: int | None = None,
           place: Placement | None = None, layout: Layout | None = None) -> "Setup":
        """The set-up of `nets` networks (default: the config's) on `place` (default: `placement`),
        with `layout` (a run's recorded one, or a target's; default: this machine's, `Layout.of`)."""
        nets = nets or config.nets
        place = place or placement(nets)
        train_rows = split_rows["train"]
        steps = budget(config, BatchPlan(train_rows, config.batch, config.seed).steps_per_epoch)
        layout = layout.on(place) if layout else Layout.of(config, place, nets, max(split_rows.values()))
        return cls(config, nets, dict(split_rows), steps, train_split_on_device(train_rows), layout)

    def step_config(self, place: Placement) -> train.StepConfig:
        """The compiled step's settings on `place` (`step_config`)."""
        return step_config(self.config, place, self.nets, self.layout)

    def batch_plan(self) -> BatchPlan:
        """Which training rows each step of a level uses."""
        return BatchPlan(self.split_rows["train"], self.config.batch, self.config.seed)

    @property
    def eval_rows(self) -> int:
        """Rows per evaluation block."""
        return self.layout.eval_rows

    @property
    def eval_group(self) -> int:
        """Networks evaluated at once (0: all), as the engine evaluates them."""
        return self.layout.eval_group

    @property
    def seed_signal(self) -> bool:
        """The seed's early-stopping signal keeps the validation split on the device."""
        return self.config.early_stop_signal == "seed"


def chunk_function(on_device: bool) -> Callable:
    """The compiled chunk the engine calls: `train.chunk_on_device` when the training split stays on the
    device, else `train.chunk_from_host`."""
    return train.chunk_on_device if on_device else train.chunk_from_host


def chunk_batches(place: Placement, batch_plan: BatchPlan, level: int, chunk: int,
                  host: tuple[np.ndarray, np.ndarray] | None = None) -> Callable[[int], tuple]:
    """`batches(step)`: the arguments that feed the chunk of `chunk` steps starting at `step` of `level`:
    the batches' row indices (the split is on the device), or with `host` (the split's x and y on the
    host) the rows gathered there, put on the devices."""
    def batches(step: int) -> tuple:
        rows = batch_plan.indices(level, step, chunk)
        if host is None:
            return (place.data(rows),)
        return place.data(host[0][rows]), place.data(host[1][rows])
    return batches


def level_state(place: Placement, sc: train.StepConfig, params: Params, diverged, moments: train.Moments | None = None,
                resume: Checkpoint | None = None) -> train.TrainState:
    """A level's training state on the devices (`params` already there): `train.init_state`, or the
    state saved in `resume`."""
    state = train.init_state(params, jnp.asarray(diverged), sc, moments)
    if resume is not None:
        state = jax.tree.unflatten(jax.tree.structure(state), [jnp.asarray(a) for a in resume.leaves])
    return place.state(state)


class Chunks:
    """The compiled calls of a level's training from `step` to `cap`, one `next()` each: the engine's
    `train_level` runs them, and `mothtui plan` times them (core.engine.measure), so the timed loop
    is the trained one.

    Per call: the chunk program on the state, the masks, the data on the device (`data`), the
    pending batches and the step; then the next chunk's batches prepared while the device works;
    then the losses and the active flags pulled, once. A call returns `(step after it, losses (K, N),
    active (N,))`; `state` is the state after the last call (the previous one was donated to it).
    """

    def __init__(self, program: Callable, state: train.TrainState, masks: Params, batches: Callable[[int], tuple],
                 step: int, cap: int, chunk: int, data: tuple = (), val=None):
        """`program(state, masks, *data, *batches(step), step, max_steps, val)`: `train.chunk_on_device` or
        `train.chunk_from_host` with its StepConfig bound, or its compiled executable."""
        self.program, self.state, self.masks, self.batches = program, state, masks, batches
        self.step, self.cap, self.chunk, self.data, self.val = step, cap, chunk, data, val
        self.max_steps = jnp.int32(cap)
        self.pending = batches(step)

    def __iter__(self) -> "Chunks":
        return self

    def __next__(self) -> tuple[int, np.ndarray, np.ndarray]:
        if self.step >= self.cap:
            raise StopIteration
        self.state, losses = self.program(self.state, self.masks, *self.data, *self.pending, jnp.int32(self.step),
                                          self.max_steps, self.val)
        self.step += self.chunk
        if self.step < self.cap:  # prepare the next batches while the device works
            self.pending = self.batches(self.step)
        return self.step, np.asarray(losses), np.asarray(self.state.active)  # one pull per chunk


class Engine:
    """A config, its prepared data and a placement of the networks on the local devices."""

    def __init__(self, config: Config, data: Prepared, *, devices: list | None = None,
                 net_slice: NetSlice | None = None, host_batches: bool | None = None, layout: Layout | None = None):
        """`layout`: the one recorded in the run being continued; None: this machine's choice.
        `host_batches`: gather each chunk's batches on the host (None: as `Setup.on_device` says)."""
        self.config = config
        self.data = data
        self.net_slice = net_slice or process_slice(config.nets)
        self.place = placement(self.net_slice.count, devices)
        self.setup = Setup.of(config, {name: s.n for name, s in data.splits.items()}, self.net_slice.count, self.place,
                              layout)
        """The run's set-up on these devices: budget, data placement, layout (what `mothtui plan` predicts from)."""
        self.layout = self.setup.layout
        self.step_config = self.setup.step_config(self.place)
        self.batch_plan = self.setup.batch_plan()
        self.budget = self.setup.budget
        """Step caps of the levels and steps per compiled call."""
        tr = data.splits["train"]
        self.host_batches = not self.setup.on_device if host_batches is None else host_batches
        if not self.host_batches:
            self.x_train = self.place.data(tr.x)
            self.y_train = self.place.data(tr.y)
        self.val = None  # the validation split on the device, for the seed's early-stopping signal only
        if self.setup.seed_signal:
            val = data.splits["val"]
            self.val = (self.place.data(val.x), self.place.data(val.y))
        self.eval_rows, self.eval_group = self.layout.eval_rows, self.layout.eval_group

    @property
    def chunk(self) -> int:
        """Steps per compiled call."""
        return self.budget.chunk

    @property
    def max_steps(self) -> int:
        """Step cap of a retraining level (1, 2, ...)."""
        return self.budget.max_steps

    def steps_for(self, level: int) -> int:
        """The step cap of `level` (`Budget.steps_for`)."""
        return self.budget.steps_for(level)

    # ---- the pieces of a level -------------------------------------------------------
    def initial(self) -> tuple[Params, Params, np.ndarray]:
        """Level 0's starting point: initial params, full masks, nobody diverged."""
        params = model.init_params(self.config.layer_sizes, self.config.init_std, self.config.seed, self.net_slice.range,
                                   self.config.init)
        return params, model.full_masks(params), np.zeros(self.net_slice.count, bool)

    def prune_for(self, level: int, params: Params, masks: Params) -> tuple[Params, Params]:
        cfg = self.config
        return prune.prune(params, masks, cfg.sparsities[level], cfg.bias_sparsities[level], cfg.pruning,
                           cfg.prune_count, cfg.keep_per_output, cfg.pruned_layers, cfg.layer_caps)

    @property
    def carries_moments(self) -> bool:
        return self.config.optimizer_state == "carried"

    def train_level(self, level: int, params: Params, masks: Params, diverged: np.ndarray,
                    on_chunk: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
                    stop: threading.Event | None = None, moments: train.Moments | None = None,
                    resume: Checkpoint | None = None,
                    save: Callable[[int, list[np.ndarray]], None] | None = None) -> LevelResult:
        """Train one level to early stop or the step cap; `on_chunk(step, losses (K, N), active)`.

        `moments`: Adam's state to continue from (carried optimizer state); None: fresh moments.
        `resume`: the level's checkpoint, to continue from its step instead of step 0. `save(step,
        leaves)` keeps the state after a chunk: every `checkpoint_every_s` seconds, and when `stop`
        is set (then Cancelled is raised). Checkpoints fall on chunk boundaries, and batches depend
        only on (seed, level, step), so a level continued from one is bit-identical to one that ran
        through.
        """
        t0 = time.perf_counter()
        place = self.place
        params, masks = place.sharded(params), place.sharded(masks)
        cap = self.steps_for(level)
        chunks = self.chunks(level, level_state(place, self.step_config, params, diverged, moments, resume), masks,
                             resume.step if resume is not None else 0, cap)
        saved_step, saved_t = chunks.step, time.monotonic()

        def keep() -> None:
            nonlocal saved_step, saved_t
            if save is not None and chunks.step > saved_step:
                save(chunks.step, [np.asarray(a) for a in jax.tree.leaves(jax.device_get(chunks.state))])
                saved_step, saved_t = chunks.step, time.monotonic()

        every = self.config.checkpoint_every_s
        while chunks.step < cap:
            if stop is not None and stop.is_set():
                keep()
                raise Cancelled(f"cancelled during level {level} at step {chunks.step:,}"
                                + (" (saved)" if save is not None and chunks.step else ""))
            step, losses, active = next(chunks)
            if on_chunk is not None:
                on_chunk(min(step, cap), losses, active)
            if not active.any():
                break
            if every and step < cap and time.monotonic() - saved_t >= every:
                keep()
        host = jax.device_get(chunks.state)
        carried = None
        if self.carries_moments:
            m = train.moments_of(host.opt_state)
            carried = train.Moments(np.asarray(m.count), _to_host(m.mu), _to_host(m.nu))
        return LevelResult(params=_to_host(host.params), masks=_to_host(masks), steps=np.asarray(host.steps),
                           stopped=np.asarray(host.stopped), diverged=np.asarray(host.diverged),
                           seconds=time.perf_counter() - t0, moments=carried)

    def chunks(self, level: int, state: train.TrainState, masks: Params, step: int, cap: int) -> Chunks:
        """The compiled calls of `level` from `step` to `cap` on this engine's data (`Chunks`)."""
        program = functools.partial(chunk_function(not self.host_batches), self.step_config)
        data = () if self.host_batches else (self.x_train, self.y_train)
        return Chunks(program, state, masks, self.batches(level), step, cap, self.chunk, data, self.val)

    def batches(self, level: int) -> Callable[[int], tuple]:
        """`batches(step)`: what feeds the chunk starting at `step` of `level` (`chunk_batches`)."""
        tr = self.data.splits["train"]
        return chunk_batches(self.place, self.batch_plan, level, self.chunk, (tr.x, tr.y) if self.host_batches else None)

    def evaluate(self, params: Params) -> dict[str, np.ndarray]:
        """Loss `(N,)` of every network on the whole train, val and test splits (train: its first
        `eval_train_rows` rows when set)."""
        on_device = self.place.sharded(params)
        rows = {"train": self.config.eval_train_rows or None}
        return {name: evaluate.split_loss(on_device, s.x[:rows.get(name)], s.y[:rows.get(name)], self.eval_rows,
                                          self.config.precision, put=self.place.data, group=self.eval_group)
                for name, s in self.data.splits.items()}


def _to_host(tree: Params) -> Params:
    return [Layer(np.asarray(layer.weight), np.asarray(layer.bias)) for layer in jax.device_get(tree)]


# ---- the run ------------------------------------------------------------------------------

def load_level_start(run: Run, engine: Engine, level: int):
    """The starting point of `level` from the run store (level 0: fresh initialisation, or in a
    branch its parent's level, `core.branch`): params, masks, diverged flags, and Adam's carried
    state (None unless it carries over)."""
    parent = parent_of(run) if level == 0 else None
    if parent is not None:
        return _stored_level(open_origin(run), engine, parent["level"], engine.carries_moments,
                             parent.get("moments"))
    if level == 0:
        return (*engine.initial(), None)
    return _stored_level(run, engine, level - 1, engine.carries_moments)


def _stored_level(run: Run, engine: Engine, level: int, carried: bool, count: int | None = -1):
    """A complete level of `run` as the start of the next: params, masks, diverged and Adam's state.

    `count`: -1 reads the stored state as it is; a number checks that the stored state still has it
    (a branch's parent may have written over it since); None starts fresh moments, as zeros.
    """
    owned = engine.net_slice.slice
    stored = run.level(level, owned)
    params = [Layer(jnp.asarray(w), jnp.asarray(b)) for w, b in zip(stored.weights, stored.biases)]
    masks = [Layer(jnp.asarray(w), jnp.asarray(b)) for w, b in zip(stored.weight_masks, stored.bias_masks)]
    moments = None
    if carried and count is None:  # the same as a fresh optimizer: zero moments at step 0
        zeros = [Layer(np.zeros_like(w), np.zeros_like(b)) for w, b in zip(stored.weights, stored.biases)]
        moments = train.Moments(np.int32(0), zeros, [Layer(*layer) for layer in zeros])
    elif carried:
        found, mu, nu = run.moments(level, owned)
        if count != -1 and found != count:
            raise StoreError(f"run {run.run_id!r} no longer holds the optimizer state of level {level} "
                             f"(step count {found}, not {count}): the branch cannot start from it")
        moments = train.Moments(found, [Layer(*layer) for layer in mu], [Layer(*layer) for layer in nu])
    return params, masks, run.diverged(level, owned), moments


def branch_level(engine: Engine, params: Params, masks: Params, diverged: np.ndarray,
                 moments: train.Moments | None) -> LevelResult:
    """A branch's level 0: its parent's level as stored, not trained (0 steps), evaluated here."""
    t0 = time.perf_counter()
    n = engine.net_slice.count
    result = LevelResult(params=_to_host(params), masks=_to_host(masks), steps=np.zeros(n, np.int32),
                         stopped=np.zeros(n, bool), diverged=np.asarray(diverged, bool),
                         moments=moments if engine.carries_moments else None)
    result.losses = engine.evaluate(result.params)
    result.seconds = time.perf_counter() - t0
    return result


class _ProgressEmitter:
    """Turns per-chunk losses into throttled `progress` events with a rate and an ETA (`eta_seconds`)."""

    def __init__(self, emit: Callable[..., None], engine: Engine, level: int, done: list[LevelTiming],
                 first_step: int = 0):
        self.emit, self.engine, self.level, self.done = emit, engine, level, done
        self.t0 = self.last = time.perf_counter()
        self.sum = np.zeros(engine.net_slice.count)
        self.count = np.zeros(engine.net_slice.count)
        self.first_step = self.steps_done = first_step
        """The step the level starts (or continues) from: rates count the steps made here."""
        self.timed_from: tuple[float, int] | None = None
        """(time, step) after the level's first chunk: the step rate leaves out its compilation."""

    def step_seconds(self, now: float, step: int) -> float:
        """Seconds per step over everything this process trained: the completed levels and this
        level since its first chunk (which holds its compilation). Pooled, so a burst of load on a
        shared machine moves it little; before any of that, the level's whole time so far."""
        seconds = sum(t.train_s for t in self.done)
        steps = sum(t.steps for t in self.done)
        if self.timed_from is not None and step > self.timed_from[1]:
            seconds += now - self.timed_from[0]
            steps += step - self.timed_from[1]
        if steps:
            return seconds / steps
        return (now - self.t0) / max(step - self.first_step, 1)

    def __call__(self, step: int, losses: np.ndarray, active: np.ndarray) -> None:
        finite = np.isfinite(losses)
        self.sum += np.where(finite, losses, 0.0).sum(axis=0)
        self.count += finite.sum(axis=0)
        self.steps_done = step
        now = time.perf_counter()
        if self.timed_from is None:
            self.timed_from = (now, step)
        cap = self.engine.steps_for(self.level)
        if now - self.last < PROGRESS_EVERY_S and step < cap and active.any():
            return
        elapsed = now - self.t0
        rate = (step - self.first_step) * self.engine.config.batch * self.engine.net_slice.count / max(elapsed, 1e-9)
        loss = [float(s / c) if c else None for s, c in zip(self.sum, self.count)]
        cfg = self.engine.config
        hold = held(loss, active.tolist(), step, cfg.early_stop_below, cfg.early_stop_window)
        caps = [self.engine.steps_for(lv) for lv in range(cfg.levels)]
        eta = eta_seconds(caps, self.level, step, bool(active.any()), self.step_seconds(now, step), self.done, hold)
        self.emit("progress", level=self.level, step=step, max_steps=cap,
                  active=int(active.sum()), loss=loss, samples_per_s=round(rate, 1), eta_s=round(eta, 1))
        self.sum[:] = 0.0
        self.count[:] = 0.0
        self.last = now


def run_levels(run: Run, engine: Engine, *, sinks: Sequence[Sink] = (), stop: threading.Event | None = None,
               resumed_from: int | None = None, sync: LevelSync | None = None) -> None:
    """Train and prune from `run.levels_complete` to the last level, writing each level.

    Marks the run `done`, `cancelled` (raising Cancelled) or `failed` (re-raising) at the end.
    `sync` shares the run between the processes of a job (default: this process alone): each
    writes its slice of every level; only process 0 writes events and the attributes. The command
    holds the run (core.owner) while this runs.
    """
    sync = sync or LevelSync(Cluster())
    main = sync.is_main
    writer = EventWriter(run.path, enabled=main)

    def emit(event: str, **fields: Any) -> None:
        record = writer.emit(event, **fields)
        for sink in sinks:
            sink(record)

    cfg = engine.config
    start = run.levels_complete
    if main:
        run.set_status("running")
    sync.start(run)
    emit("run_start", run=run.run_id, nets=cfg.nets, levels=cfg.levels, pid=os.getpid(),
         resumed_from=resumed_from, max_steps=engine.max_steps, devices=engine.place.devices,
         device_kind=engine.place.device_kind, layout=engine.layout._asdict())
    done: list[LevelTiming] = []  # the levels completed in this process, for the ETA
    targets = [float(s) for s in run.sparsity]  # a branch's level 0 is at its parent's target
    branched = parent_of(run) is not None
    try:
        params, masks, diverged, moments = load_level_start(run, engine, start)
        owned = engine.net_slice.slice
        checkpoint = run.checkpoint(owned)  # the level in progress, saved before a kill or a cancel
        for level in range(start, cfg.levels):
            if level > 0:
                params, masks = engine.prune_for(level, params, masks)
            branch = level == 0 and branched
            resume = checkpoint if not branch and checkpoint is not None and checkpoint.level == level else None
            emit("level_start", level=level, sparsity=targets[level],
                 max_steps=0 if branch else engine.steps_for(level), step=resume.step if resume else None)
            if branch:
                result = branch_level(engine, params, masks, diverged, moments)
            else:
                progress = _ProgressEmitter(emit, engine, level, done, resume.step if resume else 0)

                def save(step: int, leaves: list[np.ndarray], level: int = level) -> None:
                    run.write_checkpoint(level, step, owned, leaves)
                    emit("checkpoint", level=level, step=step)

                result = engine.train_level(level, params, masks, diverged, on_chunk=progress, stop=stop,
                                            moments=moments, resume=resume, save=save)
                t_eval = time.perf_counter()
                result.losses = engine.evaluate(result.params)
                eval_s = time.perf_counter() - t_eval
                if resume is None:
                    done.append(LevelTiming(level, engine.steps_for(level), int(result.steps.max(initial=0)),
                                            result.seconds, eval_s))
                result.seconds += eval_s
            write_level(run, engine.net_slice, level, result, sync)
            run.clear_checkpoint(owned)
            emit("level_end", level=level, sparsity=targets[level], steps=result.steps.tolist(),
                 stopped_early=int(result.stopped.sum()), diverged=int(result.diverged.sum()),
                 loss={k: v.tolist() for k, v in result.losses.items()}, seconds=round(result.seconds, 3))
            params, masks, diverged, moments = result.params, result.masks, result.diverged, result.moments
        sync.wait_for_all(run, stop)  # the run is done when every process's slices are written
    except Cancelled as err:
        _end(run, sync, "cancelled", str(err))
        emit("run_end", status="cancelled",
             message=f"cancelled; {run.levels_complete} levels complete, "
                     f"resume with `{cmdline.resume_hint(run.run_id, run.path.parent)}`")
        raise
    except BaseException as err:
        failure = StoreError(write_failure(run, err)) if isinstance(err, OSError) else err
        message = str(failure) if isinstance(failure, StoreError) else f"{type(err).__name__}: {err}"
        try:  # on a full disk these writes may fail too: the run then reads as interrupted, still resumable
            _end(run, sync, "failed", message)
            emit("run_end", status="failed", message=message)
        except OSError:
            pass
        if failure is not err:
            raise failure from None
        raise
    _end(run, sync, "done")
    emit("run_end", status="done", message=f"{cfg.levels} levels complete")


def write_failure(run: Run, err: OSError) -> str:
    """One line for a write the file system refused (ENOSPC, EDQUOT, EIO...): what failed, what resume does."""
    done = run.levels_complete
    return (f"run {run.run_id}: cannot write to the run store ({err.strerror or err}); "
            f"{done} levels are complete and safe, `{cmdline.resume_hint(run.run_id, run.path.parent)}` "
            f"will continue from level {done}")


def _end(run: Run, sync: LevelSync, status: Outcome, message: str = "") -> None:
    """Record how the run ended: process 0 (or the only process) in the run, the others in a status file."""
    sync.finish(run, status, message)
    if sync.is_main:
        run.set_status(status)


def write_level(run: Run, net_slice: NetSlice, level: int, result: LevelResult, sync: LevelSync) -> None:
    """A level's arrays for this process's networks, then the sync completes the level (or marks the slice)."""
    p, m = result.params, result.masks
    run.write_level(level, [x.weight for x in p], [x.weight for x in m], [x.bias for x in p],
                    [x.bias for x in m], {k: result.losses[k] for k in SPLITS}, nets=net_slice.slice,
                    extra={"train/steps": result.steps, "train/stopped_early": result.stopped,
                           "train/diverged": result.diverged})
    if result.moments is not None:  # before the level completes, so a complete level has its moments
        moments = result.moments
        run.write_moments(level, net_slice.slice, int(moments.count) if sync.is_main else None,
                          [(x.weight, x.bias) for x in moments.mu], [(x.weight, x.bias) for x in moments.nu])
    sync.slice_written(run, level, net_slice, result.seconds)
