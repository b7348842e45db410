"""What gets exported: the selection policy of `mothtui export` on top of `core.select`.

By default every network's pick at the threshold (core.select); `nets` narrows it to some
networks (each must then have a pick), `level` forces one level for them, `overrides` forces
levels network by network (each must be one of `nets`, when given: an override is never dropped
silently). Nothing to export is a MothError.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from core.errors import MothError
from core.select import Selection, require_any, select_run


def choose(run, threshold: float | None = None, split: str = "val", nets: Sequence[int] | None = None,
           level: int | None = None, overrides: Mapping[int, int] | None = None):
    """The selection and the list of choices to export (validated; MothError if nothing to export)."""
    n_nets = run.nets
    if nets is not None:
        nets = sorted(set(int(n) for n in nets))
        bad = [n for n in nets if not 0 <= n < n_nets]
        if bad:
            raise MothError(f"network {bad[0]} is not in run {run.run_id!r} (networks 0..{n_nets - 1})")
    overrides = dict(overrides or {})
    outside = sorted(n for n in overrides if n not in nets) if nets is not None else []
    if outside and nets is not None:  # dropped without a word: the override or --nets has a typo, we cannot tell which
        raise MothError(f"--override {outside[0]}={overrides[outside[0]]} is for network {outside[0]}, "
                        f"which --nets does not export ({','.join(map(str, nets))}): add it to --nets or drop the override")
    if level is not None:
        if not 0 <= level < run.levels_complete:
            raise MothError(f"level {level} is not complete in run {run.run_id!r} "
                            f"(levels 0..{run.levels_complete - 1} are)")
        overrides.update({n: level for n in (nets if nets is not None else range(n_nets))})
    selection = select_run(run, threshold, split, overrides)
    choices = [c for c in selection.choices if nets is None or c.network in nets]
    missing = [c.network for c in choices if c.level is None]
    if nets is not None and missing:
        raise MothError(f"network {missing[0]} has no level with {split} loss <= {selection.threshold:g}; "
                        f"pass --level to export one anyway")
    require_any(Selection(selection.threshold, split, tuple(choices), selection.run))
    return selection, [c for c in choices if c.level is not None]
