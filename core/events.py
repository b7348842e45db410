"""Progress events: JSON lines in `<run>/events.jsonl`, appended by the engine, tailed by the UI.

One event per line, each a JSON object with at least `t` (unix seconds) and `event`:

- `run_start`   : `run`, `nets`, `levels`, `pid`, `resumed_from` (level or null)
                  (the engine adds `max_steps`: the step cap of every level, `devices`: how many,
                  and `device_kind`: "cpu" or the accelerator's name)
- `level_start` : `level`, `sparsity`, `max_steps`
- `progress`    : `level`, `step`, `max_steps`, `active` (networks still training), `loss`
                  (per-network mean training loss since the last event; null for a network that did
                  not train since then: diverged or stopped early),
                  `samples_per_s` (network-samples per second), `eta_s` (seconds left in the run, or null)
- `level_end`   : `level`, `sparsity`, `steps` (per network), `stopped_early`, `diverged` (counts),
                  `loss` (`{"train": [N], "val": [N], "test": [N]}`), `seconds`
- `run_end`     : `status` (`done` | `cancelled` | `failed`), `message`

Readers skip lines they cannot parse (a line being written, or a future event kind) and
never trust a final line without its newline. Pure Python, safe to import from the UI.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator

EVENTS_FILE = "events.jsonl"


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class EventWriter:
    """Appends events to a run's event file, one flushed line each (a crash loses at most one)."""

    def __init__(self, run_dir: Path | str, *, enabled: bool = True):
        self.path = Path(run_dir) / EVENTS_FILE
        self.enabled = enabled

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"t": round(time.time(), 3), "event": event, **_clean(fields)}
        if self.enabled:
            line = json.dumps(record, separators=(",", ":")) + "\n"
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno()) if event in ("level_end", "run_end") else None
        return record


class EventTail:
    """Reads new complete events from a run's event file, remembering where it stopped."""

    def __init__(self, run_dir: Path | str):
        self.path = Path(run_dir) / EVENTS_FILE
        self.offset = 0

    def read(self) -> list[dict[str, Any]]:
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
        return list(_parse(data[: end + 1]))


def _parse(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(record, dict) and "event" in record:
            yield record


def read_events(run_dir: Path | str) -> list[dict[str, Any]]:
    """All complete events of a run so far."""
    return EventTail(run_dir).read()
