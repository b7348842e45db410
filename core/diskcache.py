"""Disk use of many runs, remembered in the store: `<runs>/.cache/disk.json`.

Measuring a run's disk use walks all its files (`core.runlist.disk_usage`: tens of files for a
smoke run, thousands for a paper run); doing that for every run of a store of 1,000 runs takes
seconds, every time `mothtui runs` is asked. A run's files change when it is written, and every
write that adds data (a level, an analysis, a tag) rewrites its `zarr.json` or adds an entry to
its directory: so a measurement stays good while the run's status, the modification times of its
`zarr.json` and of its directory are what they were when it was measured. Runs being written
(`running`, `starting`) are measured afresh each time. The cache file is rewritten atomically and
only when something was measured; a missing or unreadable cache is just remeasured.

Pure standard library.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from core import paths
from core.runlist import RunSummary, disk_usage

#: Statuses whose files are changing: never trusted from the cache.
_LIVE = ("running", "starting")


def _key(summary: RunSummary) -> list | None:
    try:
        store = os.stat(paths.meta_file(summary.path)).st_mtime_ns
    except OSError:
        store = None
    try:
        folder = os.stat(summary.path).st_mtime_ns
    except OSError:
        return None
    return [summary.status, store, folder]


def disk_usages(runs_dir: Path | str, summaries: list[RunSummary]) -> dict[str, int]:
    """Bytes on disk of each run, by run id: from the cache where the run has not changed. The cache
    is rewritten with these runs only: pass the whole store (`list_runs`), as `mothtui runs` does."""
    path = paths.disk_cache_file(runs_dir)
    try:
        cache = json.loads(path.read_text())
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    sizes: dict[str, int] = {}
    fresh: dict[str, list] = {}
    changed = False
    for s in summaries:
        key = _key(s)
        hit = cache.get(s.run_id)
        if key is not None and s.status not in _LIVE and isinstance(hit, list) and len(hit) == 2 \
                and hit[0] == key and isinstance(hit[1], int):
            sizes[s.run_id] = hit[1]
            fresh[s.run_id] = hit
            continue
        sizes[s.run_id] = disk_usage(s.path)
        if key is not None and s.status not in _LIVE:
            fresh[s.run_id] = [key, sizes[s.run_id]]
        changed = True
    if changed or len(fresh) != len(cache):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = paths.tmp_sibling(path)
            tmp.write_text(json.dumps(fresh))
            os.replace(tmp, path)
        except OSError:  # a read-only store: measured, just not remembered
            pass
    return sizes
