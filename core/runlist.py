"""The runs list: which runs a store holds and what state each is in, read from plain JSON.

Pure standard library (no zarr, no numpy): a run's attributes are plain JSON in its zarr.json, so
the UI paints the runs list from here within a second of starting, and `mothtui runs` answers
without importing the array stack. `core.runstore` re-exports all of it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import cmdline, paths
from core.errors import StoreError
from core.owner import Liveness, liveness, store_less
from core.paths import run_dir as run_path  # noqa: F401  (the name its many callers import)
from core.status import RunStatus

KIND = "mothtui.run"


@dataclass(frozen=True)
class RunSummary:
    """What the runs list shows of one run; `damaged` says why a run cannot be read."""

    run_id: str
    path: Path
    status: RunStatus
    """A stored status, or `interrupted`, `damaged`, `starting` (core.status)."""
    nets: int | None
    levels_complete: int | None
    levels: int | None
    created: str | None
    preset: str | None = None
    damaged: str | None = None
    owner: Liveness | None = None
    """Who holds the run while it is written (None: nobody alive)."""
    tags: tuple[str, ...] = ()
    note: str = ""
    sweep: str | None = None
    """The sweep the run belongs to (`mothtui sweep`, core.sweep), if any."""
    config: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    """The run's config as stored (the runs filter matches its values; the setup column); None if damaged."""
    parent: tuple[str, int] | None = None
    """(run id, level) a branch run started from (`mothtui train --from`, core.branch); None otherwise."""

    @property
    def pid(self) -> int | None:
        """The owner's pid when it runs on this host (so the app can signal it)."""
        return self.owner.pid if self.owner else None

    @property
    def host(self) -> str | None:
        return self.owner.record.host if self.owner and self.owner.record else None

    def to_dict(self) -> dict[str, Any]:
        owner = self.owner
        return {"id": self.run_id, "status": self.status, "nets": self.nets,
                "levels_complete": self.levels_complete, "levels": self.levels,
                "created": self.created, "damaged": self.damaged, "path": str(self.path),
                "owner": None if owner is None or owner.record is None else {
                    "host": owner.record.host, "pid": owner.record.pid, "command": owner.record.command,
                    "since": owner.record.since, "last_heard_s": None if owner.age_s is None else round(owner.age_s, 1)},
                "tags": list(self.tags), "note": self.note, "sweep": self.sweep,
                "parent": None if self.parent is None else {"run": self.parent[0], "level": self.parent[1]}}

    @property
    def lineage(self) -> str:
        """`from RUN:LEVEL` for a branch, "" otherwise (the runs list and the app)."""
        return "" if self.parent is None else f"from {self.parent[0]}:{self.parent[1]}"


def read_engine_pid(run_dir: Path) -> int | None:
    """The pid of the live process that owns this run on this host, else None (see core.owner)."""
    return liveness(run_dir).pid


def live_owner(run_dir: Path) -> Liveness | None:
    """The run's owner if it is alive (here or, by its events, on another host), else None."""
    owner = liveness(run_dir)
    return owner if owner.alive else None


def _short(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:160]


def run_ids(runs_dir: Path | str) -> list[str]:
    """The ids of the runs in a store (its visible directories), sorted; none if it does not exist."""
    try:
        return sorted(p.name for p in Path(runs_dir).iterdir() if p.is_dir() and not paths.is_hidden(p.name))
    except OSError:
        return []


def did_you_mean(wanted: str, known: list[str]) -> str:
    """`; did you mean 'quick-1'?` for the closest known id (difflib), or "" when none is close."""
    import difflib

    close = difflib.get_close_matches(wanted, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def no_run(runs_dir: Path | str, run_id: str) -> StoreError:
    """The one error for an unknown run id: `no run 'quik-1' in runs; did you mean 'quick-1'?`."""
    return StoreError(f"no run {run_id!r} in {runs_dir}{did_you_mean(run_id, run_ids(runs_dir))}")


def new_run_id(runs_dir: Path | str, preset: str, now: _dt.datetime | None = None) -> str:
    """A fresh run id, `2026-11-24_091233_smoke`, with `-2`, `-3`, ... if that id (or its log) is taken.

    The one generator of default ids: the CLI's `train` and the app's new-run form both use it.
    """
    base = f"{(now or _dt.datetime.now()):%Y-%m-%d_%H%M%S}_{preset}"
    runs_dir = Path(runs_dir)
    candidate, n = base, 1
    while (runs_dir / candidate).exists() or paths.log_file(runs_dir, candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def read_attributes(run_dir: Path | str) -> dict[str, Any]:
    """A run's root attributes as plain JSON from its zarr.json (no zarr): the runs list reads them here
    and `core.runstore` re-reads labels here. OSError / ValueError when missing or unreadable."""
    return json.loads(paths.meta_file(run_dir).read_text()).get("attributes", {})


def levels_complete_valid(done: Any, levels: Any) -> bool:
    """The one damage rule for `levels_complete` (the runs list's and `Run.open`'s): a whole number
    (not a bool) from 0 to `levels`."""
    return isinstance(done, int) and not isinstance(done, bool) and isinstance(levels, int) \
        and 0 <= done <= levels


def summarize(path: Path) -> RunSummary:
    """A RunSummary of one run directory; damaged runs are described, never raised."""
    try:
        attrs = read_attributes(path)
    except FileNotFoundError:
        if store_less(path):  # claimed, its store not yet written
            owner = live_owner(path)
            if owner is not None:
                return RunSummary(path.name, path, "starting", None, None, None, None, owner=owner)
            return RunSummary(path.name, path, "damaged", None, None, None, None,
                              damaged="abandoned before its store was written "
                                      f"(`{cmdline.shell(['train', '--id', path.name])}` starts it again)")
        return RunSummary(path.name, path, "damaged", None, None, None, None,
                          damaged=f"store unreadable: {paths.ZARR_META} missing")
    except (OSError, ValueError) as err:
        return RunSummary(path.name, path, "damaged", None, None, None, None,
                          damaged=f"store unreadable: {paths.ZARR_META} ({_short(err)})")
    if attrs.get("kind") != KIND or "status" not in attrs:
        owner = live_owner(path)
        if owner is not None:  # its engine is writing the store right now (Run.create): not damaged
            return RunSummary(path.name, path, "starting", None, None, None, None, owner=owner)
        return RunSummary(path.name, path, "damaged", None, None, None, attrs.get("created"),
                          damaged="not a mothtui run (attributes missing)")
    problem = _layout_problem(path, attrs)
    if problem:
        return RunSummary(path.name, path, "damaged", attrs.get("nets"), None, attrs.get("levels"),
                          attrs.get("created"), damaged=problem)
    config = attrs.get("config") or {}
    status = attrs["status"]
    owner = live_owner(path)
    if status == "running" and owner is None:
        status = "interrupted"  # the engine died without recording why: resumable
    tags = attrs.get("tags")
    tags = tuple(str(t) for t in tags) if isinstance(tags, list) else ()
    note = attrs["note"] if isinstance(attrs.get("note"), str) else ""
    return RunSummary(path.name, path, status, attrs.get("nets", config.get("nets")),
                      attrs.get("levels_complete"), attrs.get("levels"), attrs.get("created"),
                      preset=attrs.get("preset"), owner=owner, tags=tags, note=note,
                      sweep=attrs["sweep"] if isinstance(attrs.get("sweep"), str) else None,
                      config=config if isinstance(config, dict) else None, parent=_parent(attrs))


def _parent(attrs: dict[str, Any]) -> tuple[str, int] | None:
    """A branch's (parent run, level) from its `parent` attribute (core.branch); None if absent or odd."""
    parent = attrs.get("parent")
    if isinstance(parent, dict) and isinstance(parent.get("run"), str) and isinstance(parent.get("level"), int):
        return parent["run"], parent["level"]
    return None



def disk_usage(path: Path | str) -> int:
    """Bytes of all files under `path` (their sizes, as `du --apparent-size` counts them); 0 if absent.

    Walks the directory (a `paper` run holds a few thousand chunk files): callers cache it per run state.
    """
    total = 0
    stack = [str(path)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:  # removed while we walk
                    continue
    return total


#: What tells runs of a study apart at a glance (the runs list's setup column), in display order.
SETUP_KEYS = ("preset", "hidden", "pruning", "scale", "samples", "schedule", "epochs_per_level")


def _setup(summary: RunSummary) -> dict[str, Any]:
    return {**(summary.config or {}), "preset": summary.preset}


def _schedule_names(schedules: list[Any]) -> dict[str, str]:
    """`sched4` per distinct schedule (its number of levels), with a letter where two distinct
    schedules have the same length (`sched4a`, `sched4b`, in order of first appearance)."""
    distinct: list[Any] = []
    for value in schedules:
        if value not in distinct:
            distinct.append(value)
    by_length: dict[int, list[Any]] = {}
    for value in distinct:
        by_length.setdefault(len(value) if isinstance(value, (list, tuple)) else 0, []).append(value)
    names = {}
    for length, values in by_length.items():
        for i, value in enumerate(values):
            names[repr(value)] = f"sched{length}" + (chr(ord("a") + i) if len(values) > 1 and i < 26 else "")
    return names


def setup_labels(summaries: list[RunSummary], keys: tuple[str, ...] = SETUP_KEYS) -> dict[str, str]:
    """Per run id, the values of those `keys` that differ between the (readable) runs, compactly:
    `quick 128-128-16 global s=2 ep=40`. Empty texts when every run has the same setup. Runs whose
    setups differ get different texts: two schedules of the same length are `sched4a` and `sched4b`."""
    readable = [s for s in summaries if s.config]
    setups = [_setup(s) for s in readable]
    differ = [k for k in keys if any(c.get(k) != setups[0].get(k) for c in setups[1:])]
    schedules = _schedule_names([c.get("schedule") for c in setups])

    def text(key: str, value: Any) -> str:
        if key == "schedule":
            return schedules.get(repr(value), "–")
        if isinstance(value, (list, tuple)):
            return "-".join(str(v) for v in value)
        if key == "scale":
            return f"s={value:g}" if isinstance(value, (int, float)) else f"s={value}"
        if key == "samples" and isinstance(value, int):
            return f"n={value:,}"
        if key == "epochs_per_level":
            return f"ep={value}"
        return "–" if value is None else str(value)

    return {s.run_id: " ".join(text(k, c.get(k)) for k in differ) for s, c in zip(readable, setups)}


def _layout_problem(path: Path, attrs: dict[str, Any]) -> str | None:
    """Why a run's attributes or array layout cannot be right, from cheap file checks (or None).

    The full check (array shapes, readable chunks) happens when the run is opened.
    """
    done, levels = attrs.get("levels_complete"), attrs.get("levels")
    if not levels_complete_valid(done, levels):
        return f"levels_complete is {done!r} of {levels!r} levels"
    folder = os.fspath(path)
    for name in ("sparsity", "loss/val", "layer_0/weight"):  # os.path, not pathlib: 1,000 runs, 3,000 checks
        if not os.path.isfile(os.path.join(folder, name, paths.ZARR_META)):
            return f"array {name} missing"
    return None


def check_runs_dir(runs_dir: Path | str) -> Path:
    """The run store directory; StoreError if the path exists but is not a directory."""
    runs_dir = Path(runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise StoreError(f"run store {runs_dir} is not a directory")
    return runs_dir


def list_runs(runs_dir: Path | str) -> list[RunSummary]:
    """Every run in the store, newest first; hidden directories (dataset cache) are skipped."""
    runs_dir = check_runs_dir(runs_dir)
    if not runs_dir.is_dir():
        return []
    found = [p for p in runs_dir.iterdir() if p.is_dir() and not paths.is_hidden(p.name)]
    summaries = [summarize(p) for p in found]
    return sorted(summaries, key=lambda s: (s.created or "", s.run_id), reverse=True)
