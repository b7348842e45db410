"""Branch runs: `mothtui train --from RUN:LEVEL` starts a new run from a stored level of another.

The branch's level 0 is its parent's level as stored: the weights, biases and masks are copied,
not retrained, and evaluated on the branch's own splits (with the parent's scaler, which the
weights were trained against). So the store keeps its meaning: level 0 is the starting point,
`sparsity(0)` is the target the parent pruned that level to, and each later level's entry is the
branch schedule's target, reached by pruning further from the level before, as in any run.
With `optimizer_state = "carried"` the branch goes on with the parent's Adam state of that level
when the parent still stores it (the last two complete levels of a carried parent; docs/science.md).

The new run records its parent in the `parent` attribute: `{"run", "level", "config_digest",
"sparsity", "moments"}`; a branch of a branch is a branch like any other, and `lineage` walks the
chain. Pure Python plus the run store (no JAX): the commands check everything here before
anything is created.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from core.config import PRESETS, Config, from_dict, load_toml, parse_override
from core.errors import ConfigError, StoreError
from core.runstore import Run, open_run

#: Keys a branch must share with its parent: the weights it starts from have this shape.
ARCHITECTURE = ("nets", "hidden")


def config_digest(config: dict[str, Any]) -> str:
    """sha256 of a run's resolved config (canonical JSON), the same text as an export's `config_sha256`."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def parse_from(text: str) -> tuple[str, int]:
    """`RUN:LEVEL` -> (run id, level); StoreError naming the expected form."""
    run_id, sep, level = str(text).rpartition(":")
    if not sep or not run_id or not level.strip().isdigit():
        raise StoreError(f"--from {text!r}: expected RUN:LEVEL, e.g. --from 2026-11-24_091233_quick:6")
    return run_id, int(level)


@dataclass(frozen=True)
class Origin:
    """Where a branch starts: a complete level of a parent run."""

    run_id: str
    level: int
    config_digest: str
    sparsity: float
    """The target the parent pruned that level to: the branch's sparsity(0)."""
    moments_count: int | None
    """Adam's step count at the end of the level when the branch carries the parent's state, else None."""

    def attr(self) -> dict[str, Any]:
        """The branch's `parent` attribute."""
        return {"run": self.run_id, "level": self.level, "config_digest": self.config_digest,
                "sparsity": self.sparsity, "moments": self.moments_count}


def open_parent(runs_dir: Path, text: str) -> tuple[Run, int]:
    """The parent run (read-only) and the level named by `--from RUN:LEVEL`, which must be complete."""
    run_id, level = parse_from(text)
    parent = open_run(runs_dir, run_id)
    if not 0 <= level < parent.levels_complete:
        raise StoreError(f"--from {text}: level {level} of run {run_id!r} is not complete "
                         f"({parent.levels_complete} levels are)")
    parent.level(level)  # intact (weights agree with masks) before anything is created
    return parent, level


def branch_config(parent: Run, level: int, preset: str | None, file: Path | None,
                  overrides: Sequence[str]) -> Config:
    """The branch's config: the parent's, then the preset's keys, the TOML file, the `--set` overrides.

    Unless the file or `--set` name a `schedule`, the branch's is the parent's beyond `level` (so
    `--from RUN:3` alone goes on as the parent did). ConfigError, naming the key, for another
    architecture or a schedule that does not prune beyond the parent level's target.
    """
    stored = dict(parent.attrs["config"])
    values: dict[str, Any] = dict(stored)
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        values.update({k: v for k, v in PRESETS[preset].items() if k not in ("schedule", "bias_schedule")})
    given: dict[str, Any] = dict(load_toml(file)) if file is not None else {}
    for text in overrides:
        key, value = parse_override(text)
        given[key] = value
    values.update(given)
    start = float(parent.sparsity[level])
    if "schedule" not in given:
        values["schedule"] = [s for s in stored["schedule"] if s > start]
        if not values["schedule"]:
            raise ConfigError(f"config key 'schedule': level {level} of run {parent.run_id!r} is its last "
                              f"target ({start:g}); name the branch's targets, e.g. --set schedule=[0.97,0.99]",
                              key="schedule")
        if "bias_schedule" not in given and stored.get("bias_schedule"):
            values["bias_schedule"] = stored["bias_schedule"][-len(values["schedule"]):]
    config = from_dict(values)
    for key in ARCHITECTURE:
        mine, theirs = config.to_dict()[key], stored[key]
        if mine != theirs:
            raise ConfigError(f"config key {key!r}: a branch keeps its parent's architecture "
                              f"({key} = {theirs} in {parent.run_id!r}), got {mine}", key=key)
    if config.schedule[0] <= start:
        raise ConfigError(f"config key 'schedule': a branch prunes beyond its start (level {level} of "
                          f"{parent.run_id!r} is at {start:g}), got {list(config.schedule)}", key="schedule")
    return config


def origin(parent: Run, level: int, config: Config) -> Origin:
    """The branch's record of its parent. The parent's Adam state goes with it when the branch carries
    its optimizer state and the parent still holds that level's (config optimizer_state "carried",
    one of its last two complete levels, and nobody writing the level after next over it)."""
    count = None
    if config.optimizer_state == "carried" and parent.config.optimizer_state == "carried":
        done = parent.levels_complete
        if level == done - 1 or (level == done - 2 and not parent.owner().alive):
            count = int(parent.moments(level)[0])
    return Origin(parent.run_id, level, config_digest(parent.attrs["config"]), float(parent.sparsity[level]),
                  count)


def parent_of(run: Run) -> dict[str, Any] | None:
    """A run's `parent` attribute (None: not a branch)."""
    parent = run.attrs.get("parent")
    return parent if isinstance(parent, dict) else None


def open_origin(run: Run) -> Run:
    """A branch's parent, checked to be the run it was branched from (StoreError, one line, if not)."""
    info = parent_of(run)
    if info is None:
        raise StoreError(f"run {run.run_id!r} is not a branch")
    try:
        parent = open_run(run.path.parent, info["run"])
    except StoreError as err:
        raise StoreError(f"run {run.run_id!r} starts from level {info['level']} of {info['run']!r}, "
                         f"which cannot be read: {err}") from None
    if config_digest(parent.attrs["config"]) != info.get("config_digest"):
        raise StoreError(f"run {run.run_id!r}: its parent {info['run']!r} is not the run it was branched "
                         "from (its config has changed)")
    return parent
