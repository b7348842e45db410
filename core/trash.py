"""Deleting runs recoverably: `delete` moves a run to `<runs>/.trash/`, `restore` brings it back, `purge` empties it.

A trashed run keeps its id as its directory name (`<runs>/.trash/<run_id>`; a second deleted run
of the same id becomes `<run_id>~2`, ...) and a `deleted.json` inside it with the original id and
the time of deletion, which `purge --older-than` reads. Moving is a rename inside the run store,
so it is instant and atomic whatever the run's size. Deleting takes the run's ownership first
(`core.owner`), so a run being trained, analysed or deleted elsewhere is refused, never moved
from under its writer.

Standard library only (plus core.owner): the app calls it directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from core import paths
from core.errors import MothError, StoreError
from core.owner import claim
from core.runlist import did_you_mean, no_run, run_path

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Trashed:
    """One run in the trash."""

    run_id: str
    path: Path
    deleted: float
    """When it was deleted (seconds since the epoch)."""


def delete_run(runs_dir: Path | str, run_id: str) -> Path:
    """Move a run to the trash (refused while another process owns it); returns where it went."""
    path = run_path(runs_dir, run_id)
    if not path.is_dir():
        raise no_run(runs_dir, run_id)
    with claim(path, run_id=run_id) as held:  # refused while another process, here or elsewhere, writes it
        target = _free_name(runs_dir, run_id)
        target.parent.mkdir(exist_ok=True)
        paths.deleted_file(path).write_text(json.dumps({"run": run_id, "deleted": time.time()}))
        os.rename(path, target)
        held.moved_to(target)
    return target


def trashed(runs_dir: Path | str) -> list[Trashed]:
    """Every run in the trash, most recently deleted first."""
    out: list[Trashed] = []
    folder = paths.trash_dir(runs_dir)
    if not folder.is_dir():
        return out
    for path in folder.iterdir():
        try:
            info = json.loads(paths.deleted_file(path).read_text())
            out.append(Trashed(str(info["run"]), path, float(info["deleted"])))
        except (OSError, ValueError, KeyError, TypeError):
            out.append(Trashed(paths.trashed_id(path), path, path.stat().st_mtime))
    return sorted(out, key=lambda t: t.deleted, reverse=True)


def restore_run(runs_dir: Path | str, run_id: str) -> Path:
    """Bring the most recently deleted run of this id back to `<runs>/<run_id>`."""
    target = run_path(runs_dir, run_id)
    candidates = [t for t in trashed(runs_dir) if t.run_id == run_id]
    if not candidates:
        hint = did_you_mean(run_id, sorted({t.run_id for t in trashed(runs_dir)}))
        raise StoreError(f"no run {run_id!r} in the trash of {runs_dir}{hint}")
    if target.exists():
        raise StoreError(f"run {run_id!r} already exists in {runs_dir}: delete or rename it first")
    source = candidates[0].path
    with claim(source, run_id=run_id) as held:
        os.rename(source, target)
        held.moved_to(target)
        paths.deleted_file(target).unlink(missing_ok=True)
    return target


def purgeable(runs_dir: Path | str, older_than_s: float = 0.0) -> list[Trashed]:
    """The trashed runs deleted more than `older_than_s` ago: what `purge` would remove (to ask first)."""
    now = time.time()
    return [t for t in trashed(runs_dir) if now - t.deleted >= older_than_s]


def purge(runs_dir: Path | str, older_than_s: float = 0.0, only: list[Trashed] | None = None) -> list[Trashed]:
    """Remove for good the trashed runs deleted more than `older_than_s` ago (or just `only`, the list
    the user confirmed, those still in the trash); returns them."""
    gone = purgeable(runs_dir, older_than_s)
    if only is not None:
        confirmed = {t.path for t in only}
        gone = [t for t in gone if t.path in confirmed]
    for t in gone:
        shutil.rmtree(t.path)
    return gone


def parse_age(text: str) -> float:
    """`30m`, `12h`, `7d`, `2w` (or `45s`), in seconds. The unit is required: a bare `7` was once read
    as seconds and purged a run deleted a minute ago, so a number without a unit is refused."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text or "")
    if not match:
        bare = re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", text or "")
        hint = f" ({text.strip()}d for {text.strip()} days?)" if bare else ""
        raise MothError(f"bad age {text!r}: give a number and a unit, e.g. 30m, 12h, 7d, 2w{hint}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _free_name(runs_dir: Path | str, run_id: str) -> Path:
    candidate, n = paths.trash_entry(runs_dir, run_id), 1
    while candidate.exists():
        n += 1
        candidate = paths.trash_entry(runs_dir, run_id, n)
    return candidate
