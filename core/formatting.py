"""Durations and rates as people read them: the one formatter of both, for the console and the app.

The CLI's progress display (`core.commands.display`), the app's screens (`mothtui`) and the
simulation progress bar all format durations and throughputs here, so an ETA reads the same in a
terminal log and on the run screen. Standard library only: the UI imports it at start-up.
"""

from __future__ import annotations

import math

MINUTE, HOUR, DAY = 60, 3600, 86400


def fmt_duration(seconds: float | None) -> str:
    """`38s`, `12m05s`, `2h04m`, `3d02h` (two units, the larger first); `–` when unknown or negative."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    if s < MINUTE:
        return f"{s}s"
    if s < HOUR:
        return f"{s // MINUTE}m{s % MINUTE:02d}s"
    if s < DAY:
        return f"{s // HOUR}h{(s % HOUR) // MINUTE:02d}m"
    return f"{s // DAY}d{(s % DAY) // HOUR:02d}h"


def fmt_rate(per_s: float | None, unit: str = "samples/s") -> str:
    """A throughput with three significant digits and an SI prefix: `61k samples/s`, `2.5M samples/s`.

    `–` for the number when unknown (no progress yet, or nothing measured)."""
    if per_s is None or not math.isfinite(per_s):
        return f"– {unit}"
    value, prefix = float(per_s), ""
    for bigger in ("k", "M", "G"):
        if float(f"{value:.3g}") < 1000:  # 999_999 is `1M`, never `1e+03k`
            break
        value, prefix = value / 1000, bigger
    return f"{value:.3g}{prefix} {unit}" if prefix else f"{value:.0f} {unit}"
