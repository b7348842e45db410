"""Text of the screens: numbers, durations, statuses. Standard library only (imported at start-up)."""

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


def fmt_duration(seconds: float | None) -> str:
    """`38s`, `12m05s`, `2h04m`, `3d02h`; `–` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def fmt_rate(per_s: float | None) -> str:
    """Network-samples per second, `61k samples/s`."""
    if per_s is None or not math.isfinite(per_s):
        return "– samples/s"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_s >= scale:
            return f"{per_s / scale:.3g}{unit} samples/s"
    return f"{per_s:.0f} samples/s"


def fmt_created(created: str | None) -> str:
    """ISO 8601 `created` as `26-11-24 09:12` (absolute, so screens stay reproducible; short for 80 columns)."""
    if not created:
        return "–"
    try:
        return _dt.datetime.fromisoformat(created).strftime("%y-%m-%d %H:%M")
    except ValueError:
        return created[:14]


def status_label(status: str) -> str:
    return f"{STATUS_SYMBOLS.get(status, '?')} {status}"
