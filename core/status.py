"""A run's statuses, defined once: what the store's `status` attribute holds, how a run ends
(`run_end.status` in the events file) and what the runs list shows. Standard library only: the
UI's start-up text (mothtui.fmt) imports it without numpy or zarr.

The strings are the on-disk values (docs/store-format.md, docs/events.md): never rename one.
"""

from __future__ import annotations

from typing import Literal, get_args

#: How a run ends: `run_end.status`, and the store's status once it has ended.
Outcome = Literal["done", "cancelled", "failed"]
#: What the store's `status` attribute holds: the engine writes `running`, then an outcome.
StoredStatus = Literal["running", Outcome]
#: What the runs list shows: a stored status, or one read from the run's state -- `interrupted` (stored
#: `running`, its engine gone), `damaged` (unreadable), `starting` (claimed, its store not written yet).
RunStatus = Literal[StoredStatus, "interrupted", "damaged", "starting"]

OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
STORED_STATUSES: tuple[StoredStatus, ...] = ("running", *OUTCOMES)
RUN_STATUSES: tuple[RunStatus, ...] = (*STORED_STATUSES, "interrupted", "damaged", "starting")
