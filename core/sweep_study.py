"""A sweep compared as a whole: the chosen sparsity (median, p10-p90 over networks) against the swept keys.

`mothtui compare SWEEP` (and the app's compare) name a sweep where they name runs: `expand_names`
turns each sweep name into its member runs that have a completed level. `sweep_view` then reads
the chosen sparsities off `core.study`'s comparison (the same selection as `select`) and groups
them by each swept key's value, pooling the networks of the runs that share it (several seeds of
one width make one point with a wider band). No plotting library: numbers, and the text view
draws its bars in characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.errors import MothError
from core.runlist import list_runs, run_path
from core.sweep import SweepRecord, read_sweep, toml_value


def expand_names(runs_dir: Path | str, names: Sequence[str]) -> tuple[list[str], list[SweepRecord]]:
    """Run ids for `names` (a run id stays; a sweep becomes its members with at least one level),
    and the sweeps named. MothError for a sweep none of whose runs has a completed level yet."""
    ids: list[str] = []
    sweeps: list[SweepRecord] = []
    for name in names:
        if run_path(runs_dir, name).is_dir():
            ids.append(name)
            continue
        record = read_sweep(runs_dir, name)
        if record is None:
            ids.append(name)  # neither: open_run says "no run ..." in its own words
            continue
        levels = {s.run_id: s.levels_complete or 0 for s in list_runs(runs_dir)}  # members: the record's
        members = [r for r in record.run_ids if levels.get(r, 0) >= 1]
        if not members:
            raise MothError(f"sweep {name!r}: none of its {len(record.run_ids)} runs has a completed level yet")
        sweeps.append(record)
        ids += [r for r in members if r not in ids]
    return ids, sweeps


def _bands(values: list[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    p10, med, p90 = np.percentile(np.asarray(values, np.float64), [10, 50, 90])
    return float(p10), float(med), float(p90)


def _chosen(run) -> list[float]:
    """The chosen sparsity of each chosen network of one `core.study.RunComparison`."""
    return [s for s, n in run.histogram.items() for _ in range(n)]


@dataclass(frozen=True)
class KeyPoint:
    """The networks of the runs where the swept key has this value."""

    value: Any
    runs: list[str]
    nets: int
    chosen: int
    p10: float | None
    median: float | None
    p90: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "runs": self.runs, "nets": self.nets, "chosen": self.chosen,
                "chosen_sparsity": {"p10": self.p10, "median": self.median, "p90": self.p90}}


def sweep_view(record: SweepRecord, comparison) -> dict[str, Any]:
    """Per member and per swept key value: the chosen sparsity's median and p10-p90 band."""
    sides = {r.run_id: r for r in comparison.runs}
    members = [p for p in record.points if p.run in sides]
    points = []
    for p in members:
        p10, med, p90 = _bands(_chosen(sides[p.run]))
        points.append({"run": p.run, "values": p.values, "nets": sides[p.run].nets,
                       "chosen": sides[p.run].chosen,
                       "chosen_sparsity": {"p10": p10, "median": med, "p90": p90}})
    by_key: dict[str, list[dict[str, Any]]] = {}
    for key in record.keys:
        groups: dict[str, list] = {}
        for p in members:
            if key in p.values:
                groups.setdefault(toml_value(p.values[key]), []).append(p)
        rows = []
        for group in groups.values():
            pooled = [s for p in group for s in _chosen(sides[p.run])]
            rows.append(KeyPoint(group[0].values[key], [p.run for p in group],
                                 sum(sides[p.run].nets for p in group), len(pooled), *_bands(pooled)).to_dict())
        by_key[key] = rows
    return {"name": record.name, "keys": record.keys, "members": len(record.points),
            "compared": len(members), "points": points, "by_key": by_key}


def sweep_lines(view: dict[str, Any], width: int = 40) -> list[str]:
    """The text view: for each swept key, one line per value with a p10-p90 bar and the median."""
    lines = [f"sweep {view['name']}: {view['compared']}/{view['members']} runs with a completed level"]
    for key, rows in view["by_key"].items():
        lines.append(f"chosen sparsity against {key} (median, p10–p90 over networks; 0 … 1)")
        for row in rows:
            band = row["chosen_sparsity"]
            bar = [" "] * (width + 1)
            if band["median"] is not None:
                lo, hi, mid = (round(band[k] * width) for k in ("p10", "p90", "median"))
                for i in range(lo, hi + 1):
                    bar[i] = "─"
                bar[mid] = "●"
                text = f"{band['median']:.3f} [{band['p10']:.3f}–{band['p90']:.3f}]"
            else:
                text = "no network chosen"
            label = toml_value(row["value"])
            lines.append(f"  {label:>14} |{''.join(bar)}| {text} · {row['chosen']}/{row['nets']} nets, "
                         f"{len(row['runs'])} run(s)")
    return lines
