"""Progress events: JSON lines in `<run>/events.jsonl`, appended by the engine, tailed by the UI.

One event per line, each a JSON object with `t` (unix seconds), `event` (its kind) and the fields
of its kind. Each kind is one frozen record type here, and every reader and writer goes through
them, so the file format has one owner:

- `RunStart`      `run_start`   : `run`, `nets`, `levels`, `pid`, `resumed_from` (level or null)
                                  (the engine adds `max_steps`: the step cap of every level, `devices`: how many,
                                  and `device_kind`: "cpu" or the accelerator's name)
- `LevelStart`    `level_start` : `level`, `sparsity`, `max_steps`
- `StepProgress`  `progress`    : `level`, `step`, `max_steps`, `active` (networks still training), `loss`
                                  (per-network mean training loss since the last event; null for a network
                                  that did not train since then: diverged or stopped early),
                                  `samples_per_s` (network-samples per second), `eta_s` (seconds left in
                                  the run, or null)
- `LevelEnd`      `level_end`   : `level`, `sparsity`, `steps` (per network), `stopped_early`, `diverged`
                                  (counts), `loss` (`{"train": [N], "val": [N], "test": [N]}`), `seconds`
- `RunEnd`        `run_end`     : `status` (`done` | `cancelled` | `failed`), `message`

Readers skip lines they cannot parse (a line being written, a future event kind, a field of the
wrong type) and never trust a final line without its newline; fields they do not know are kept in
`extra` and written back in place, so `parse_line(record.to_json())` round-trips.

`RunProgress` and `reduce` turn the events into the state of a run's progress (level, step,
active networks, rate, ETA, the training curve of the level in training, each finished level's
losses, ended or not): the one reducer that the
CLI's console display, the app and the tests share.

Standard library only: the app's runs list imports this module for its first paint.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import math
import os
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Mapping, Union

from core import paths
from core.status import OUTCOMES

EVENTS_FILE = paths.EVENTS_FILE  # the name tests and tools import
#: Events that are fsync'ed as they are written (a crash must not lose a level's or the run's end).
DURABLE = ("level_end", "run_end")


# ---- the records -------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event has: its time. Subclasses add their kind's fields, in file order."""

    KIND: ClassVar[str] = ""
    t: float
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Fields this version does not know (written by a newer engine): kept, and written back."""

    @property
    def event(self) -> str:
        """The kind, as the file's `event` field spells it."""
        return self.KIND

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the file: `t`, `event`, the kind's fields in order, then `extra`."""
        out: dict[str, Any] = {"t": self.t, "event": self.KIND}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("t", "extra") or (value is None and f.default is None):
                continue  # an optional field (one the engine adds) is written only when known
            out[f.name] = _jsonable(value)
        out.update(self.extra)
        return out

    def to_json(self) -> str:
        """One line of the file, without its newline."""
        return json.dumps(self.to_dict(), separators=(",", ":"))


@dataclass(frozen=True, kw_only=True)
class RunStart(Event):
    KIND: ClassVar[str] = "run_start"
    run: str
    nets: int
    levels: int
    pid: int | None
    resumed_from: int | None
    max_steps: int | None = None
    devices: int | None = None
    device_kind: str | None = None
    layout: dict[str, int] | None = None
    """How the work is cut (`core.engine.loop.Layout`): training group, evaluation rows and group."""


@dataclass(frozen=True, kw_only=True)
class LevelStart(Event):
    KIND: ClassVar[str] = "level_start"
    level: int
    sparsity: float
    max_steps: int
    step: int | None = None
    """The step the level continues from when it resumes from a checkpoint (None: from 0)."""


@dataclass(frozen=True, kw_only=True)
class CheckpointSaved(Event):
    """The level in progress was saved after `step` steps (`Run.write_checkpoint`)."""

    KIND: ClassVar[str] = "checkpoint"
    level: int
    step: int


@dataclass(frozen=True, kw_only=True)
class StepProgress(Event):
    """A throttled report from inside a level (at most every 0.5 s)."""

    KIND: ClassVar[str] = "progress"
    level: int
    step: int
    max_steps: int
    active: int
    loss: tuple[float | None, ...]
    samples_per_s: float | None
    eta_s: float | None


@dataclass(frozen=True, kw_only=True)
class LevelEnd(Event):
    KIND: ClassVar[str] = "level_end"
    level: int
    sparsity: float
    steps: tuple[int, ...]
    stopped_early: int
    diverged: int
    loss: Mapping[str, tuple[float | None, ...]]
    seconds: float

    def median_loss(self, split: str = "val") -> float | None:
        """Median of the networks' finite losses on `split` (None if none is finite)."""
        return median(self.loss.get(split, ()))


@dataclass(frozen=True, kw_only=True)
class RunEnd(Event):
    KIND: ClassVar[str] = "run_end"
    status: str
    message: str | None = None


#: Record type of each event kind.
KINDS: dict[str, type[Event]] = {cls.KIND: cls for cls in (RunStart, LevelStart, CheckpointSaved, StepProgress,
                                                             LevelEnd, RunEnd)}


class EventFormatError(ValueError):
    """A JSON object that is not a valid event of a known kind (readers skip it)."""


def from_dict(record: Mapping[str, Any]) -> Event:
    """The typed record of one parsed JSON object; EventFormatError if it is not a known, valid event."""
    cls = KINDS.get(record.get("event"))  # type: ignore[arg-type]
    if cls is None:
        raise EventFormatError(f"unknown event kind {record.get('event')!r}")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name == "extra":
            continue
        if f.name not in record:
            if f.default is dataclasses.MISSING:
                raise EventFormatError(f"{cls.KIND}: field {f.name!r} missing")
            continue
        value = record[f.name]
        if not _fits(value, hints[f.name]):
            raise EventFormatError(f"{cls.KIND}: field {f.name!r} is {value!r}, not {hints[f.name]}")
        values[f.name] = _frozen(value)
    extra = {k: v for k, v in record.items() if k not in hints and k != "event"}
    return cls(**values, extra=extra)


def make(kind: str, t: float, **fields: Any) -> Event:
    """A record of `kind` from the engine's keyword fields (NaN/inf become null, as in the file).

    Unlike parsing, a field the kind does not have is an error (a typo in the engine, not a newer file).
    """
    cls = KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r} (one of {', '.join(KINDS)})")
    unknown = set(fields) - set(_hints(cls)) | ({"t", "extra"} & set(fields))
    if unknown:
        raise TypeError(f"{kind} has no field {', '.join(sorted(unknown))}")
    try:
        return from_dict({"t": t, "event": kind, **_clean(fields)})
    except EventFormatError as err:
        raise TypeError(str(err)) from None


def parse_line(line: bytes | str) -> Event | None:
    """The event of one line of the file, or None for anything a reader skips."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict):
        return None
    try:
        return from_dict(record)
    except EventFormatError:
        return None


_HINTS: dict[type[Event], dict[str, Any]] = {}


def _hints(cls: type[Event]) -> dict[str, Any]:
    """Field name -> declared type (cached: the reader asks for every line).

    A dict, not functools.lru_cache: mypy finds a frozen dataclass's class unhashable as an argument."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the type a record field declares (ints are valid floats, bools are not)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint in (int, str, bool):
        return isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
    if origin is tuple:
        return isinstance(value, (list, tuple)) and all(_fits(v, args[0]) for v in value)
    if origin in (collections.abc.Mapping, dict):
        return isinstance(value, dict) and all(isinstance(k, str) and _fits(v, args[1]) for k, v in value.items())
    return False


def _frozen(value: Any) -> Any:
    """JSON arrays as tuples (records are immutable); objects stay mappings of frozen values."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null. Array scalars and arrays become Python values and lists."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy, without importing it
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


# ---- the file ------------------------------------------------------------------------------------

class EventWriter:
    """Appends events to a run's event file, one flushed line each (a crash loses at most one)."""

    def __init__(self, run_dir: Path | str, *, enabled: bool = True):
        self.path = paths.events_file(run_dir)
        self.enabled = enabled

    def emit(self, event: str, **fields: Any) -> Event:
        """Write an event of kind `event` stamped now (`emit("progress", level=..., ...)`); returns its record."""
        record = make(event, round(time.time(), 3), **fields)
        self.write(record)
        return record

    def write(self, record: Event) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(record.to_json() + "\n")
            f.flush()
            if record.KIND in DURABLE:
                os.fsync(f.fileno())


class EventTail:
    """Reads new complete events from a run's event file, remembering where it stopped."""

    def __init__(self, run_dir: Path | str):
        self.path = paths.events_file(run_dir)
        self.offset = 0

    def read(self) -> list[Event]:
        """Events appended since the last call (complete lines only)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return list(_parse(data[: end + 1].splitlines()))


def _parse(lines: Iterable[bytes]) -> Iterator[Event]:
    for line in lines:
        record = parse_line(line)
        if record is not None:
            yield record


def read_events(run_dir: Path | str) -> list[Event]:
    """All complete events of a run so far."""
    return EventTail(run_dir).read()


def _ends(run_dir: Path | str, tail_bytes: int) -> tuple[Event | None, list[Event]]:
    """The first event of a run's event file and the complete events of its last `tail_bytes`
    (oldest first), reading only the file's two ends."""
    path = paths.events_file(run_dir)
    try:
        with open(path, "rb") as f:
            first_line = f.readline()
            size = os.fstat(f.fileno()).st_size
            start = max(0, size - tail_bytes)
            f.seek(start)
            tail = f.read()
    except OSError:
        return None, []
    first = parse_line(first_line) if first_line.endswith(b"\n") else None
    lines = tail[: tail.rfind(b"\n") + 1].splitlines()  # never a final line without its newline
    if start > 0 and lines:
        lines = lines[1:]  # the seek landed inside a line
    return first, [e for e in map(parse_line, lines) if e is not None]


def event_span(run_dir: Path | str, tail_bytes: int = 4096) -> tuple[float | None, float | None, bool]:
    """(first event time, last event time, ended) of a run's event file, reading only its two ends.

    The runs list asks this of every run once a second: a paper run's file has thousands of lines.
    """
    first, tail = _ends(run_dir, tail_bytes)
    if first is None:
        return None, None, False
    last = tail[-1] if tail else None
    return first.t, (last or first).t, isinstance(last, RunEnd)


def latest_eta(run_dir: Path | str, tail_bytes: int = 4096) -> tuple[float, float] | None:
    """(time, eta_s) of the run's latest progress event with an ETA, from the end of its event file;
    None when there is none there (not started training, or ended)."""
    _, tail = _ends(run_dir, tail_bytes)
    if tail and isinstance(tail[-1], RunEnd):
        return None
    last = next((e for e in reversed(tail) if isinstance(e, StepProgress) and e.eta_s is not None), None)
    return None if last is None or last.eta_s is None else (last.t, last.eta_s)


# ---- the reducer -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunProgress:
    """The state of a run's progress as its events tell it (before any event: all unknown).

    `reduce(state, event)` is the only way it changes. `status` is None before `run_start`,
    `running` after it, and `run_end`'s status once the run ended (the store's status is the
    authority on a run whose engine died without a `run_end`).
    """

    run: str | None = None
    nets: int | None = None
    levels: int | None = None
    level: int | None = None
    sparsity: float | None = None
    step: int | None = None
    max_steps: int | None = None
    active: int | None = None
    losses: tuple[float | None, ...] = ()
    """Per-network training loss of the latest progress event of the level in training."""
    samples_per_s: float | None = None
    eta_s: float | None = None
    stopped_early: int | None = None
    """Of the last finished level (as `diverged`)."""
    diverged: int | None = None
    curve: tuple[tuple[int, float, float, float], ...] = ()
    """The level in training's curve: `(step, median, p10, p90)` of the per-network training losses
    of each progress event (networks with no loss left out), thinned to at most CURVE_POINTS."""
    finished: tuple[LevelEnd, ...] = ()
    """Each finished level's `level_end` (losses per split and network), by level."""
    status: str | None = None
    message: str | None = None
    started_t: float | None = None
    last_t: float | None = None
    events: int = 0
    devices: int | None = None
    """Devices the engine uses, and their kind ("cpu", "NVIDIA H200"), as `run_start` says."""
    device_kind: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in OUTCOMES

    def level_end(self, level: int) -> LevelEnd | None:
        return next((e for e in self.finished if e.level == level), None)

    def loss_stats(self) -> tuple[float | None, float | None, float | None]:
        """(median, p10, p90) of the per-network training losses of the latest progress event."""
        stats = _stats(self.losses)
        return (None, None, None) if stats is None else stats


def reduce(state: RunProgress, event: Event) -> RunProgress:
    """The state after one more event (a pure function; unknown record types change only the count)."""
    new = dataclasses.replace
    state = new(state, events=state.events + 1, last_t=event.t,
                started_t=event.t if state.started_t is None else state.started_t)
    if isinstance(event, RunStart):
        # a resumed run starts again at `resumed_from`: levels from there on will be trained anew
        kept = () if event.resumed_from is None else \
            tuple(e for e in state.finished if e.level < event.resumed_from)
        return new(state, run=event.run, nets=event.nets, levels=event.levels,
                   max_steps=event.max_steps if event.max_steps is not None else state.max_steps,
                   finished=kept, status="running", message=None, devices=event.devices,
                   device_kind=event.device_kind, step=None, active=None, losses=(), samples_per_s=None,
                   eta_s=None, curve=())
    if isinstance(event, LevelStart):
        return new(state, level=event.level, sparsity=event.sparsity, step=event.step or 0, max_steps=event.max_steps,
                   active=state.nets, losses=(), curve=())
    if isinstance(event, StepProgress):
        curve = state.curve if event.level == state.level else ()
        stats = _stats(event.loss)
        if stats is not None:
            curve = _thin((*curve, (event.step, *stats)))
        return new(state, level=event.level, step=event.step, max_steps=event.max_steps, active=event.active,
                   losses=event.loss, samples_per_s=event.samples_per_s, eta_s=event.eta_s, curve=curve)
    if isinstance(event, LevelEnd):
        finished = tuple(sorted((*(e for e in state.finished if e.level != event.level), event),
                                key=lambda e: e.level))
        return new(state, stopped_early=event.stopped_early, diverged=event.diverged, finished=finished)
    if isinstance(event, RunEnd):
        # nothing trains any more: keep the last level's numbers, drop the live ones
        return new(state, status=event.status, message=event.message, active=None, samples_per_s=None,
                   eta_s=None)
    return state


#: Points of a level's training curve kept in `RunProgress.curve` (older halves are thinned).
CURVE_POINTS = 400


def _stats(losses: Iterable[float | None]) -> tuple[float, float, float] | None:
    """(median, p10, p90) of the finite values, or None."""
    values = sorted(v for v in losses if v is not None and math.isfinite(v))
    if not values:
        return None
    return percentile(values, 50), percentile(values, 10), percentile(values, 90)


def _thin(curve: tuple) -> tuple:
    """At most CURVE_POINTS points: past the cap, every other point of the older half is dropped
    (the newest points stay dense, the start of the level stays visible)."""
    if len(curve) <= CURVE_POINTS:
        return curve
    half = len(curve) // 2
    return curve[:half:2] + curve[half:]


def fold(events: Iterable[Event], state: RunProgress | None = None) -> RunProgress:
    """`reduce` over events, from `state` (or the empty state)."""
    state = RunProgress() if state is None else state
    for event in events:
        state = reduce(state, event)
    return state


# ---- statistics of per-network losses (numpy's definitions, without numpy) -------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    """The `q`-th percentile of sorted values, linear interpolation (as numpy.percentile's default)."""
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    a, b, frac = sorted_values[lo], sorted_values[hi], pos - lo
    return a + (b - a) * frac if frac < 0.5 else b - (b - a) * (1 - frac)


def median(values: Iterable[float | None]) -> float | None:
    """Median of the finite values (None if there is none)."""
    finite = sorted(v for v in values if v is not None and math.isfinite(v))
    return percentile(finite, 50) if finite else None
