"""The runs list's first paint, from each run's `zarr.json` alone (standard library only).

Importing zarr and numpy costs about half a second of CPU, which would break the promise that
the runs list shows within a second of starting. So the first paint reads the run attributes
directly (they are plain JSON in zarr v3), and a worker replaces these rows with
`core.runstore.list_runs` (the authority: engine liveness, damage checks) a moment later.
Everything shown here is marked as preliminary by the `…` the runs screen puts in the slow columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PeekSummary:
    """The fields of `core.runstore.RunSummary` the runs table shows."""

    run_id: str
    path: Path
    status: str
    nets: int | None
    levels_complete: int | None
    levels: int | None
    created: str | None
    damaged: str | None = None


def peek_runs(runs_dir: Path) -> list[PeekSummary]:
    """Every run directory's stored attributes, newest first (hidden directories skipped)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    out = []
    for path in runs_dir.iterdir():
        if not path.is_dir() or path.name.startswith("."):
            continue
        try:
            attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
            status = attrs["status"]
        except (OSError, ValueError, KeyError, AttributeError):
            out.append(PeekSummary(path.name, path, "damaged", None, None, None, None, damaged="checking…"))
            continue
        config = attrs.get("config") or {}
        out.append(PeekSummary(path.name, path, status, attrs.get("nets", config.get("nets")),
                               attrs.get("levels_complete"), attrs.get("levels"), attrs.get("created")))
    return sorted(out, key=lambda s: (s.created or "", s.run_id), reverse=True)
