"""Numbers as people read them: durations, rates, sizes, losses, thresholds; the one formatter of
each, for the console and the app.

The CLI's commands and progress display (`core.commands`), the app's screens (`mothtui`) and the
simulation progress bar all format here, so an ETA, a run's size or a loss reads the same in a
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


def fmt_bytes(size: int | float | None) -> str:
    """`812 B`, `4.0 kB`, `12.3 MB`, `1.2 GB` (powers of 1000, as df -H); `–` when unknown."""
    if size is None:
        return "–"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return "–"


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


def fmt_value(value: float | None, spec: str = ".3g") -> str:
    """A number in `spec` (`format`'s), `–` when missing: the tables of `select` and `analyze`."""
    return "–" if value is None else format(value, spec)
