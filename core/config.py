"""Run configuration: one frozen dataclass, its presets, TOML files and `--set` overrides.

The single source of truth for every key's default, meaning and valid range. Validated at
the edge: any bad key or value raises `ConfigError` naming the key. Pure Python (no JAX),
so the UI's new-run form can use it to validate as the user types.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from core.errors import ConfigError

#: The seed's schedule of target sparsities after level 0 (fraction of weights pruned, per layer).
SEED_SCHEDULE = (0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.90,
                 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98)

PRUNING_MODES = ("layer", "global")
INITS = ("normal", "lecun")
PRUNE_COUNTS = ("round", "seed")  # see core.engine.prune.prune_count
OPTIMIZER_STATES = ("fresh", "carried")
EARLY_STOP_SIGNALS = ("train", "seed")
PRECISIONS = ("float32", "tf32", "tf32-emulated", "bf16")


@dataclass(frozen=True)
class Config:
    """Everything that defines a run. The same config gives the same run, bit for bit."""

    seed: int = 0
    """Seed of network initialisation and batch order; network i draws from fold_in(seed, i)."""
    data_seed: int = 0
    """Seed of the simulated dataset (random initial states and controls)."""
    samples: int = 10_000_000
    """Number of simulated wing strokes in the dataset (train+val+test)."""
    scale: float = 1.0
    """Body scale s of the simulated moth."""
    dataset: str = ""
    """Path of an existing dataset store; empty: simulate one (cached under <runs>/.datasets)."""
    splits: tuple[float, float, float] = (0.64, 0.16, 0.20)
    """Fractions of the dataset rows for train, val and test (contiguous row ranges)."""
    nets: int = 400
    """Number of networks trained at once from different initialisations (Monte Carlo)."""
    hidden: tuple[int, ...] = (400, 400, 400, 16)
    """Hidden layer widths; the network is 10-hidden...-7 with tanh hidden units."""
    init_std: float = 0.2
    """Standard deviation of the initial weights with `init = "normal"` (the seed's N(0,1)/5); biases start at 0."""
    init: str = "normal"
    """"normal": N(0, init_std²) in every layer (the seed); "lecun": N(0, 1/fan_in) per layer."""
    batch: int = 128
    """Minibatch size."""
    learning_rate: float = 5e-4
    """Adam learning rate."""
    epochs_per_level: float = 1.0
    """Training budget of each level in passes over the training split (the seed: one pass)."""
    level0_epochs: float = 0.0
    """Training budget of level 0 (the dense networks) in passes; 0: `epochs_per_level`."""
    max_steps: int = 0
    """Hard cap on steps per level; 0 means one budget of `epochs_per_level` passes."""
    optimizer_state: str = "fresh"
    """Adam's state at each new level: "fresh" (new moments, step count 0) or "carried" (moments and step
    count go on from the previous level, as the seed's single optimizer did)."""
    early_stop_window: int = 500
    """Early stopping compares the mean loss of the last window of batches with the one before."""
    early_stop_every: int = 100
    """Check early stopping every this many batches (once two windows have run)."""
    early_stop_ratio: float = 1.01
    """Stop a network when mean(previous window) / mean(last window) < this ratio."""
    early_stop_signal: str = "train"
    """What early stopping watches: "train" (each network's own training batch losses; it stops alone) or
    "seed" (as the seed's code: the ensemble's mean loss on consecutive validation batches, first check
    after 1,100 batches, all networks stop together; once the validation split is used up it never fires)."""
    early_stop_below: float = 0.0
    """Stop early only a network whose mean loss over the last window is at most this (0: any loss),
    so a network on a plateau far above the selection threshold keeps its whole budget."""
    schedule: tuple[float, ...] = SEED_SCHEDULE
    """Target sparsities (fraction of weights pruned) of levels 1, 2, ...; level 0 is unpruned."""
    pruning: str = "layer"
    """"layer": each layer pruned to the target (the seed); "global": one cutoff over all weights."""
    prune_count: str = "round"
    """How many weights a target fraction c of n prunes: "round" (round(c·n), so exactly the target) or
    "seed" (floor(c·n) + 1, as the seed's code did: one more in every layer at every level)."""
    keep_per_output: int = 0
    """Weights each output keeps at least in the output layer while its count leaves room: that many
    largest per output are pruned last, so no output goes dead before the layer's count forces it
    (0: pure magnitude, as the seed; docs/science.md shows dead outputs make the cliff)."""
    prune_first_layer: bool = True
    """Prune the first layer (inputs to the first hidden layer); false keeps its mask as each level
    starts: dense in a new run, the parent's in a branch (`train --from`). Its biases follow it."""
    prune_output_layer: bool = True
    """Prune the output layer (last hidden layer to the 7 outputs); false keeps its mask, as
    `prune_first_layer`. Both false: only the layers between hidden layers are pruned (docs/science.md)."""
    max_layer_sparsity: tuple[float, ...] = ()
    """Cap on each weight layer's sparsity, first layer to output layer (one entry per layer, 1: no cap),
    e.g. [1, 1, 0.8] in a 10-16-16-7 network: the output layer at most 80 % pruned, so floor(0.8·n)
    weights at most; empty: no caps. "layer" mode prunes a capped layer to min(target, cap); "global"
    mode leaves a capped layer's largest weights out of the cutoff, so the others give the count."""
    prune_biases: bool = False
    """Also prune biases by magnitude, with their own schedule."""
    bias_schedule: tuple[float, ...] = ()
    """Target bias sparsities per level after 0 when prune_biases; empty means the weight schedule."""
    threshold: float = 1e-3
    """Loss threshold of the sparse-network selection (on the val split by default)."""
    steps_per_call: int = 200
    """Training steps run inside one compiled call (lax.scan) before control returns to Python."""
    checkpoint_every_s: float = 180.0
    """Seconds between two saves of the level in progress (and one on cancel), so a kill, a cancel
    or a paused queue loses at most this much of a level; 0 saves only on cancel. Speed only: the
    results are the same."""
    eval_batch: int = 65_536
    """Rows per batch when evaluating whole splits."""
    eval_train_rows: int = 0
    """The training split's loss at each level on its first this many rows only (0: all of them). Its rows
    are independent simulated strokes, so these are a fixed random sample, the same at every level; val
    and test are always evaluated whole (selection reads val). Speed only for the selection."""
    precision: str = "float32"
    """Matmul precision: "float32" (exact), "tf32" (a GPU's TensorFloat-32; float32 on a CPU),
    "tf32-emulated" (inputs of every matmul rounded to tf32 on any device, to see its effect on a
    CPU) or "bf16" (inputs, float32 accumulation)."""

    # ---- derived -------------------------------------------------------------------
    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """(10, *hidden, 7): input width, hidden widths, output width."""
        return (10, *self.hidden, 7)

    @property
    def levels(self) -> int:
        """Number of levels including the unpruned level 0."""
        return 1 + len(self.schedule)

    @property
    def sparsities(self) -> tuple[float, ...]:
        """Target sparsity of every level, 0.0 first."""
        return (0.0, *self.schedule)

    @property
    def bias_sparsities(self) -> tuple[float, ...]:
        """Target bias sparsity of every level (all zeros unless prune_biases)."""
        if not self.prune_biases:
            return (0.0,) * self.levels
        return (0.0, *(self.bias_schedule or self.schedule))

    @property
    def pruned_layers(self) -> tuple[bool, ...]:
        """Per weight layer, first to output: whether the schedule prunes it (`prune_first_layer`,
        `prune_output_layer`); the layers between hidden layers always are."""
        n = len(self.hidden) + 1
        return tuple((k > 0 or self.prune_first_layer) and (k < n - 1 or self.prune_output_layer)
                     for k in range(n))

    @property
    def layer_caps(self) -> tuple[float, ...]:
        """Per weight layer, the most of it the schedule may prune (`max_layer_sparsity`; 1: no cap)."""
        return self.max_layer_sparsity or (1.0,) * (len(self.hidden) + 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists), as stored in the run's `config` attribute."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def replace(self, **changes: Any) -> "Config":
        """A validated copy with some keys changed."""
        return from_dict({**self.to_dict(), **changes})


PRESETS: dict[str, dict[str, Any]] = {
    # Seconds on a laptop CPU: used by the tests and the UI's demo.
    "smoke": dict(samples=4_000, nets=2, hidden=(16, 16), schedule=(0.5, 0.8), epochs_per_level=2.0,
                  early_stop_window=50, early_stop_every=10, steps_per_call=50, threshold=0.1),
    # A few minutes on a 2-core CPU (2m17s idle, measured), real enough to show the sparsity cliff
    # at the seed's threshold: 8 passes per level bring 10-128-128-16-7 networks to val MSE
    # ~7e-4, flat up to 85 % pruned, then 4.5e-3 at 90 % and 3.8e-2 at 97 %.
    "quick": dict(samples=200_000, nets=8, hidden=(128, 128, 16),
                  schedule=(0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97),
                  epochs_per_level=8.0, batch=256, learning_rate=3e-3,
                  early_stop_window=1000, early_stop_every=500),
    # 10M samples, 400 networks, full architecture, the seed's schedule. Meant for a GPU.
    # eval_batch: evaluation holds (nets, rows, 400) float32 activations, 42 GB each at 65,536 rows
    # and 400 networks (OOM on an 80 GB GPU); 8,192 rows keep them at 5 GB (docs/cluster.md).
    # The corrected protocol at the paper's size (study is its CPU-sized twin): N(0, 0.05²) and early
    # stopping only below 2e-4, which bring full-size networks to the seed's accuracy, and each output
    # keeping its largest weight while the count allows, so no output dies before 95 % (docs/science.md).
    # eval_train_rows: the training split's loss on its first 1M of 6.4M rows (a fixed random sample; val and
    # test whole): a third less evaluation at every level, the selection (on val) untouched (docs/cluster.md).
    # precision tf32: TensorFloat-32 matmul inputs on NVIDIA GPUs (float32 elsewhere, so a CPU run is
    # unchanged); at the study's size and loss emulated tf32 chose the same level for every network
    # as float32 (docs/cluster.md, "The three precisions at the paper's size and loss").
    "paper": dict(eval_batch=8_192, init_std=0.05, early_stop_below=2e-4, keep_per_output=1,
                  eval_train_rows=1_000_000, precision="tf32"),
    # The paper's network (10-400-400-400-16-7) and schedule at a size a 2-core CPU finishes (docs/science.md):
    # 4 networks on 1M strokes. Level 0 trains up to 10 passes (50,000 steps, as the seed's level 0 did)
    # from N(0, 0.05²), about Glorot's scale for 400-wide layers, so full-size networks train without the
    # seed init's long plateaus; each retraining level up to one pass. A network stops early only once
    # its loss is at most 2e-4, the accuracy the science needs (stopping at the 1e-3 threshold left dense
    # networks at 6e-4 to 1.6e-3: docs/science.md). Each output keeps its largest weight while the
    # layer's count allows (keep_per_output): without it, a network's cliff came when an output lost its
    # last weight, at 85-94 % (median 88.5 %); with it all four networks pass to 94 % and the cliff is
    # at 95 %, the seed's. Evaluation in 2,048-row blocks (cache-sized on a CPU).
    # The seed's protocol as its code ran (model.md section 5), each choice from the seed: the paper's
    # defaults (10M strokes, 400 networks, N(0, 0.2²), Adam 5e-4, batch 128, one pass per level), plus
    # prune_count "seed" (it keeps |w| above the int(c·n)-th smallest: floor(c·n)+1 pruned per layer),
    # optimizer_state "carried" (one Adam state, moments and step count, for the whole run), and
    # early_stop_signal "seed" (the ensemble's mean loss on consecutive validation batches, first check
    # after 1,100 batches; the split runs out after 12,500 batches and it never fires again). Biases are
    # not pruned, as in the paper's era. Not reproduced, being defects: pruned weights coming back under
    # carried moments, the selection loss on one 1,024-row block, bias masks from the weight cutoff.
    "paper-seed": dict(eval_batch=8_192, prune_count="seed", optimizer_state="carried", early_stop_signal="seed"),
    "study": dict(samples=1_000_000, nets=4, init_std=0.05, level0_epochs=10.0, epochs_per_level=1.0,
                  early_stop_below=2e-4, eval_batch=2_048, keep_per_output=1),
}
DEFAULT_PRESET = "quick"

KEYS = {f.name: f for f in fields(Config)}


def key_help(name: str) -> str:
    """The documentation of one key (its docstring in the source), for --help and the UI."""
    import inspect

    source = inspect.getsource(Config)
    marker = f"    {name}:"
    start = source.find(marker)
    if start < 0:
        return ""
    doc_start = source.find('"""', start) + 3
    return source[doc_start: source.find('"""', doc_start)].strip()


# ---- parsing and validation --------------------------------------------------------------

def _coerce(name: str, value: Any) -> Any:
    """Turn a TOML/JSON/--set value into the key's type, or raise ConfigError naming the key."""
    default = KEYS[name].default
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("true", "1", "yes", "on"):
                    return True
                if low in ("false", "0", "no", "off"):
                    return False
                raise ValueError
            if isinstance(value, bool):
                return value
            raise ValueError
        if isinstance(default, int):
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, str):
                value = value.replace("_", "")
                return int(value)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ValueError
            return value
        if isinstance(default, tuple):
            if isinstance(value, str):
                text = value.strip().strip("[]()")
                value = [v for v in (p.strip() for p in text.split(",")) if v]
            if not isinstance(value, (list, tuple)):
                raise ValueError
            item_type = int if name == "hidden" else float
            return tuple(item_type(_strict_number(v, item_type)) for v in value)
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"config key {name!r}: cannot read {value!r} as {_type_name(default)}", key=name)


def _strict_number(value: Any, item_type: type) -> Any:
    if isinstance(value, bool):
        raise ValueError
    if item_type is int and isinstance(value, float) and not value.is_integer():
        raise ValueError
    return value


def _type_name(default: Any) -> str:
    if isinstance(default, bool):
        return "true/false"
    if isinstance(default, tuple):
        return "a list of numbers"
    return type(default).__name__


def validate(cfg: Config) -> Config:
    """Check ranges and relations between keys; raise ConfigError naming the key."""
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"config key {key!r}: {why}", key=key)

    if cfg.samples < 10:
        raise bad("samples", f"must be at least 10, got {cfg.samples}")
    if not 0.1 <= cfg.scale <= 10:
        raise bad("scale", f"must be between 0.1 and 10, got {cfg.scale}")
    if len(cfg.splits) != 3 or min(cfg.splits) <= 0 or abs(sum(cfg.splits) - 1) > 1e-6:
        raise bad("splits", f"must be three positive fractions summing to 1, got {list(cfg.splits)}")
    if cfg.nets < 1:
        raise bad("nets", f"must be at least 1, got {cfg.nets}")
    if not cfg.hidden or min(cfg.hidden) < 1:
        raise bad("hidden", f"must be a non-empty list of positive widths, got {list(cfg.hidden)}")
    if cfg.init_std <= 0:
        raise bad("init_std", "must be positive")
    if cfg.init not in INITS:
        raise bad("init", f"must be one of {', '.join(INITS)}, got {cfg.init!r}")
    if cfg.level0_epochs < 0:
        raise bad("level0_epochs", "must be 0 (as epochs_per_level) or positive")
    if cfg.early_stop_below < 0:
        raise bad("early_stop_below", "must be 0 (any loss) or positive")
    if cfg.batch < 1:
        raise bad("batch", f"must be at least 1, got {cfg.batch}")
    if cfg.batch > cfg.samples * cfg.splits[0]:
        raise bad("batch", f"{cfg.batch} is larger than the training split")
    if not 0 < cfg.learning_rate < 1:
        raise bad("learning_rate", f"must be in (0, 1), got {cfg.learning_rate}")
    if cfg.epochs_per_level <= 0:
        raise bad("epochs_per_level", "must be positive")
    if cfg.checkpoint_every_s < 0:
        raise bad("checkpoint_every_s", "must be 0 (only on cancel) or positive")
    if cfg.max_steps < 0:
        raise bad("max_steps", "must be 0 (one budget) or positive")
    if cfg.early_stop_window < 1 or cfg.early_stop_every < 1:
        raise bad("early_stop_window", "window and check interval must be positive")
    if cfg.early_stop_ratio < 1:
        raise bad("early_stop_ratio", "must be at least 1")
    _check_schedule("schedule", cfg.schedule)
    if cfg.pruning not in PRUNING_MODES:
        raise bad("pruning", f"must be one of {', '.join(PRUNING_MODES)}, got {cfg.pruning!r}")
    if cfg.early_stop_signal not in EARLY_STOP_SIGNALS:
        raise bad("early_stop_signal", f"must be one of {', '.join(EARLY_STOP_SIGNALS)}, got {cfg.early_stop_signal!r}")
    if cfg.optimizer_state not in OPTIMIZER_STATES:
        raise bad("optimizer_state", f"must be one of {', '.join(OPTIMIZER_STATES)}, got {cfg.optimizer_state!r}")
    if cfg.prune_count not in PRUNE_COUNTS:
        raise bad("prune_count", f"must be one of {', '.join(PRUNE_COUNTS)}, got {cfg.prune_count!r}")
    if cfg.eval_train_rows < 0:
        raise bad("eval_train_rows", f"must be 0 (all rows) or positive, got {cfg.eval_train_rows}")
    if cfg.keep_per_output < 0:
        raise bad("keep_per_output", f"must be 0 (pure magnitude) or positive, got {cfg.keep_per_output}")
    if cfg.hidden and cfg.keep_per_output > cfg.hidden[-1]:
        raise bad("keep_per_output", f"must be at most the last hidden width {cfg.hidden[-1]}")
    layers = len(cfg.hidden) + 1
    if not (cfg.prune_first_layer or cfg.prune_output_layer) and layers < 3:
        raise bad("prune_output_layer", "with prune_first_layer also false, a network of one hidden layer "
                  "has no layer left to prune")
    if cfg.max_layer_sparsity:
        if len(cfg.max_layer_sparsity) != layers:
            raise bad("max_layer_sparsity", f"needs one cap per weight layer ({layers}), "
                      f"got {len(cfg.max_layer_sparsity)}")
        if any(not 0 <= c <= 1 for c in cfg.max_layer_sparsity):
            raise bad("max_layer_sparsity", f"caps must be in [0, 1], got {list(cfg.max_layer_sparsity)}")
    if cfg.bias_schedule:
        _check_schedule("bias_schedule", cfg.bias_schedule)
        if len(cfg.bias_schedule) != len(cfg.schedule):
            raise bad("bias_schedule", "must have as many entries as schedule")
    if not cfg.threshold > 0:
        raise bad("threshold", f"must be positive, got {cfg.threshold}")
    if cfg.steps_per_call < 1:
        raise bad("steps_per_call", "must be at least 1")
    if cfg.eval_batch < 1:
        raise bad("eval_batch", "must be at least 1")
    if cfg.precision not in PRECISIONS:
        raise bad("precision", f"must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    return cfg


def _check_schedule(key: str, schedule: tuple[float, ...]) -> None:
    if not schedule:
        raise ConfigError(f"config key {key!r}: needs at least one target sparsity", key=key)
    if any(not 0 < s < 1 for s in schedule):
        raise ConfigError(f"config key {key!r}: targets must be in (0, 1), got {list(schedule)}", key=key)
    if any(b <= a for a, b in zip(schedule, schedule[1:])):
        raise ConfigError(f"config key {key!r}: targets must increase, got {list(schedule)}", key=key)


def from_dict(values: dict[str, Any]) -> Config:
    """A validated Config from a dict of keys (unknown keys rejected)."""
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r} (known: {', '.join(KEYS)})", key=unknown[0])
    return validate(Config(**{k: _coerce(k, v) for k, v in values.items()}))


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` from the command line; the value is read as TOML if it parses, else as text."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, raw = (part.strip() for part in text.split("=", 1))
    if key not in KEYS:
        raise ConfigError(f"unknown config key {key!r} (known: {', '.join(KEYS)})", key=key)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def load_toml(path: Path) -> dict[str, Any]:
    """Config keys from a TOML file (top level, or under a [config] table). A `[sweep]` table is
    `mothtui sweep`'s (core.sweep), not a config key: ignored here, so one file serves both."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {str(path)!r}: cannot read ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {str(path)!r}: not valid TOML ({err})") from None
    values = data.get("config", data)
    return {k: v for k, v in values.items() if k != "sweep"} if isinstance(values, dict) else values


def resolve(preset: str | None = None, file: Path | None = None,
            overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Preset, then TOML file, then `--set` overrides, validated once at the end."""
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    values: dict[str, Any] = dict(PRESETS[name])
    if file is not None:
        values.update(load_toml(file))
    for text in overrides:
        key, value = parse_override(text)
        values[key] = value
    return from_dict(values)
