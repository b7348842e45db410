"""Sweeps: a named family of runs, one per point of a grid (and/or a list of points), same protocol.

A sweep is described once, as `SweepSpec` (preset, config file, `--set` overrides shared by every
run, the grid), expanded into points, and each point is checked by resolving its config before
anything is written. The sweep's record `<runs>/.sweeps/<name>.json` names its members and what
each varies (`SweepRecord`); each member run also carries the attribute `sweep` (`train --sweep`).
The local queue (`core.queue`) and a SLURM array script (`core.slurm`) both start the members as
`mothtui train ... --id <member> --sweep <name>`: `train_args` is the one builder of that argv.

Grid values on the command line are split on commas outside brackets, so `--grid hidden=[64,64],[128,128]`
has two values. A TOML file's `[sweep]` table says what a grid cannot: `[sweep.grid]` (key = list of
values, crossed like `--grid`) and `[[sweep.points]]` (explicit points, each a table of keys), the
points crossed with the grid. `core.config` ignores the `[sweep]` table, so the same file is the
members' `--config`.

Pure standard library plus core.config: no JAX, no zarr.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import math
import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core import paths
from core.config import ConfigError, parse_override, resolve
from core.errors import StoreError
from core.runlist import run_path

#: The most runs one sweep may hold (a typo in a grid should not queue a million runs).
MAX_POINTS = 10_000


def toml_value(value: Any) -> str:
    """A config value as the text `--set key=<text>` reads back to the same value (TOML syntax)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} as a config value")


def split_values(text: str) -> list[str]:
    """`1,2,[3,4]` -> `['1', '2', '[3,4]']`: commas inside brackets or quotes belong to the value."""
    values, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    values.append(text[start:].strip())
    return values


def parse_grid(text: str) -> tuple[str, list[Any]]:
    """`--grid key=v1,v2,...` -> (key, typed values); ConfigError naming the key when it is wrong."""
    if "=" not in text:
        raise ConfigError(f"--grid {text!r}: expected key=value1,value2,...")
    key, raw = (part.strip() for part in text.split("=", 1))
    values = [parse_override(f"{key}={v}")[1] for v in split_values(raw) if v != ""]
    if not values:
        raise ConfigError(f"--grid {key}: no values")
    if len({toml_value(v) for v in values}) != len(values):
        raise ConfigError(f"--grid {key}: a value is given twice")
    return key, values


def load_sweep_table(path: Path | None) -> dict[str, Any]:
    """The `[sweep]` table of a TOML config file ({} if none or no file)."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}  # resolve() reports the file's problem in its own words
    table = data.get("sweep", {})
    if not isinstance(table, dict):
        raise ConfigError(f"config file {str(path)!r}: [sweep] must be a table")
    unknown = sorted(set(table) - {"grid", "points"})
    if unknown:
        raise ConfigError(f"config file {str(path)!r}: unknown [sweep] key {unknown[0]!r} (known: grid, points)")
    return table


@dataclass(frozen=True)
class SweepSpec:
    """What `mothtui sweep` was asked: the shared protocol and what varies."""

    preset: str
    config: str | None
    """Absolute path of the TOML file, or None."""
    overrides: tuple[str, ...]
    grid: tuple[tuple[str, tuple[Any, ...]], ...]
    points: tuple[dict[str, Any], ...] = ()
    """Explicit points (the TOML file's [[sweep.points]]), crossed with the grid."""

    @classmethod
    def build(cls, preset: str, config: Path | None, overrides: list[str], grids: list[str]) -> "SweepSpec":
        table = load_sweep_table(config)
        grid: dict[str, list[Any]] = {}
        file_grid = table.get("grid", {})
        if not isinstance(file_grid, dict):
            raise ConfigError("[sweep.grid] must be a table of key = [values]")
        for key, values in file_grid.items():
            grid[key] = list(values) if isinstance(values, list) else [values]
        for text in grids:  # the command line adds keys or replaces the file's values of a key
            key, values = parse_grid(text)
            grid[key] = values
        points = table.get("points", [])
        if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
            raise ConfigError("[[sweep.points]] must be a list of tables of config keys")
        if not grid and not points:
            raise ConfigError("a sweep needs --grid key=v1,v2,... (or [sweep] in the --config file)")
        return cls(preset, str(Path(config).resolve()) if config else None, tuple(overrides),
                   tuple((k, tuple(v)) for k, v in grid.items()), tuple(points))

    @property
    def keys(self) -> list[str]:
        """The swept keys: the points' keys, then the grid's, each once."""
        keys: list[str] = []
        for point in self.points:
            keys += [k for k in point if k not in keys]
        return keys + [k for k, _ in self.grid if k not in keys]

    def expand(self) -> list[dict[str, Any]]:
        """Every point: each explicit point (or one empty one) crossed with the grid, in order."""
        base = list(self.points) or [{}]
        names = [k for k, _ in self.grid]
        combos = list(itertools.product(*(values for _, values in self.grid)))
        if len(base) * len(combos) > MAX_POINTS:
            raise ConfigError(f"the sweep has {len(base) * len(combos):,} points (at most {MAX_POINTS:,})")
        return [{**point, **dict(zip(names, combo))} for point in base for combo in combos]

    def point_overrides(self, values: dict[str, Any]) -> list[str]:
        """The `--set` overrides of one point: the shared ones, then the point's."""
        return list(self.overrides) + [f"{k}={toml_value(v)}" for k, v in values.items()]

    def train_args(self, values: dict[str, Any]) -> list[str]:
        """`mothtui train`'s arguments for one point (without --runs, --id, --sweep)."""
        args = ["--preset", self.preset]
        if self.config:
            args += ["--config", self.config]
        for item in self.point_overrides(values):
            args += ["--set", item]
        return args


@dataclass(frozen=True)
class SweepPoint:
    run: str
    values: dict[str, Any]


@dataclass(frozen=True)
class SweepRecord:
    """`<runs>/.sweeps/<name>.json`: a sweep's definition and its members, in order."""

    name: str
    created: str
    preset: str
    config: str | None
    overrides: list[str]
    keys: list[str]
    points: list[SweepPoint]
    where: str = "queue"
    """`queue` (the local queue runs it) or `slurm:<script>`."""
    parallel: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def run_ids(self) -> list[str]:
        return [p.run for p in self.points]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["points"] = [{"run": p.run, "values": p.values} for p in self.points]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepRecord":
        return cls(name=str(data["name"]), created=str(data.get("created", "")), preset=str(data["preset"]),
                   config=data.get("config"), overrides=list(data.get("overrides", [])),
                   keys=list(data.get("keys", [])),
                   points=[SweepPoint(str(p["run"]), dict(p.get("values", {}))) for p in data["points"]],
                   where=str(data.get("where", "queue")), parallel=data.get("parallel"),
                   extra=dict(data.get("extra", {})))


def member_id(name: str, index: int, count: int) -> str:
    """The run id of a sweep's `index`-th point (0-based): `s1-01`, `s1-02`, ... (`s1-001` past 99)."""
    return f"{name}-{index + 1:0{max(2, len(str(count)))}d}"


def default_name(preset: str, now: _dt.datetime | None = None) -> str:
    return f"{(now or _dt.datetime.now()):%Y-%m-%d_%H%M%S}_{preset}-sweep"


def plan_sweep(runs_dir: Path | str, spec: SweepSpec, name: str, where: str = "queue",
               parallel: int | None = None) -> SweepRecord:
    """Check every point (its config resolves; its run id and the sweep name are free) and return the
    record, writing nothing. ConfigError/StoreError, one line naming the point, if one is wrong."""
    runs_dir = Path(runs_dir)
    path = paths.sweep_file(runs_dir, name)
    if path.exists():
        raise StoreError(f"sweep {name!r} already exists in {runs_dir}")
    points = spec.expand()
    records = []
    for i, values in enumerate(points):
        run_id = member_id(name, i, len(points))
        try:
            resolve(spec.preset, Path(spec.config) if spec.config else None, spec.point_overrides(values))
        except ConfigError as err:
            where_ = ", ".join(f"{k}={toml_value(v)}" for k, v in values.items())
            raise ConfigError(f"sweep point {where_}: {err}", key=err.key) from None
        if run_path(runs_dir, run_id).exists():
            raise StoreError(f"run {run_id!r} already exists in {runs_dir} (choose another --id)")
        records.append(SweepPoint(run_id, values))
    created = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    return SweepRecord(name, created, spec.preset, spec.config, list(spec.overrides), spec.keys, records,
                       where=where, parallel=parallel)


def write_sweep(runs_dir: Path | str, record: SweepRecord) -> Path:
    """Write the record atomically; StoreError if a sweep of that name exists (exclusive create)."""
    path = paths.sweep_file(runs_dir, record.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.tmp_sibling(path)
    tmp.write_text(json.dumps(record.to_dict(), indent=1))
    try:
        os.link(tmp, path)  # fails if it exists: two sweeps of one name, exactly one wins
    except FileExistsError:
        raise StoreError(f"sweep {record.name!r} already exists in {Path(runs_dir)}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_sweep(runs_dir: Path | str, name: str) -> SweepRecord | None:
    """The sweep's record, or None if there is no sweep of that name (or its record is unreadable)."""
    try:
        path = paths.sweep_file(runs_dir, name)
        return SweepRecord.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, StoreError):
        return None


def list_sweeps(runs_dir: Path | str) -> list[SweepRecord]:
    """Every readable sweep record of the store, oldest first."""
    if not paths.sweeps_dir(runs_dir).is_dir():
        return []
    records = [read_sweep(runs_dir, p.stem) for p in paths.sweep_files(runs_dir)]
    return sorted((r for r in records if r is not None), key=lambda r: (r.created, r.name))
