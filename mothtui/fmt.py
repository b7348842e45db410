"""Text of the screens: losses, thresholds, dates, statuses. Standard library only (imported at start-up).

Durations and rates are `core.formatting`'s (the console display shares them).
"""

from __future__ import annotations

import datetime as _dt
import math

#: Statuses of a run and the symbol shown with the word (never colour alone, ux.md).
STATUS_SYMBOLS = {"running": "●", "done": "✓", "cancelled": "✗", "failed": "✗",
                  "interrupted": "◌", "damaged": "⚠", "starting": "…"}


def fmt_loss(value: float | None) -> str:
    """A loss in compact scientific notation (`4.1e-04` -> `4.1e-4`); `–` when missing."""
    if value is None or not math.isfinite(value):
        return "–"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_threshold(value: float) -> str:
    """A threshold as people type it: `1e-3`, `2.5e-3`, `0.1` -> `1e-1`."""
    m, e = f"{value:.1e}".split("e")
    m = m.rstrip("0").rstrip(".")
    return f"{m}e{int(e)}"


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
