"""Text of the screens: dates, run stores, statuses. Standard library only, and core.status (itself
standard library): imported at start-up.

Durations, rates, sizes, losses and thresholds are `core.formatting`'s (the console shares them).
"""

from __future__ import annotations

import datetime as _dt

from core.status import RUN_STATUSES, RunStatus

_SYMBOLS: dict[RunStatus, str] = {"running": "●", "done": "✓", "cancelled": "✗", "failed": "✗",
                                  "interrupted": "◌", "damaged": "⚠", "starting": "…"}
#: Every status of a run (core.status) and the symbol shown with the word (never colour alone, ux.md);
#: built from core.status's list, so a status without a symbol fails at import, not on screen.
STATUS_SYMBOLS: dict[str, str] = {status: _SYMBOLS[status] for status in RUN_STATUSES}


def fmt_created(created: str | None) -> str:
    """ISO 8601 `created` as `2026-11-24 09:12` (absolute, so screens stay reproducible; the year
    in full, so it cannot be read as a day)."""
    if not created:
        return "–"
    try:
        return _dt.datetime.fromisoformat(created).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return created[:16]


def fmt_store(path) -> str:
    """A run store's path as the screens name it: absolute, the home directory as `~`."""
    import os

    text = os.path.abspath(os.fspath(path))
    home = os.path.expanduser("~")
    if home not in ("", "/") and (text == home or text.startswith(home.rstrip("/") + "/")):
        return "~" + text[len(home.rstrip("/")):]
    return text


def status_label(status: str) -> str:
    return f"{STATUS_SYMBOLS.get(status, '?')} {status}"


def end_line(status: str, message: str | None) -> str:
    """How a run ended, its status said once: `✗ cancelled: 0 levels complete, resume with …`
    (the engine's message repeats the status word: `cancelled; 0 levels complete`)."""
    text = (message or "").strip()
    for sep in (";", ":", ","):
        if text.lower().startswith(status.lower() + sep):
            text = text[len(status) + 1:].strip()
            break
    if text.lower() == status.lower():
        text = ""
    return status_label(status) + (f": {text}" if text else "")
