"""How long the rest of a run will take: the ETA of every progress event, and of a sweep's runs.

A level lasts until its slowest network stops early, or its step cap. So the ETA predicts each
level's steps, times the measured seconds a step, plus an evaluation as long as the completed ones:

- **The level in progress.** If one of its active networks cannot stop yet because its loss is above
  `early_stop_below` (the engine's early-stopping state: such a network keeps its whole budget), the
  level is expected to run to its cap: the level is *held*. Otherwise it is expected to run as long
  as the completed levels of its kind that outlasted the steps it has made already (the mean of
  their lengths; halfway to the cap when it has outlasted every one of them).
- **The levels after it.** Each retraining level runs the mean share of its cap of the latest two
  retraining levels, the one in progress counted with its expected length; level 0 its own. A held
  level counts as its whole cap, so once the losses are above the bound, the sparser levels after
  it (whose losses are higher still) are expected to run to their caps too.

Without a completed level the caps are all there is to go by. Pure Python and numpy on the
engine's numbers, so `benchmarks/eta_accuracy.py --replay` runs it on a stored run's events.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

#: How many of the latest retraining levels predict the later ones (the losses, and with them the
#: steps early stopping lets a level run, drift with the sparsity: recent levels say the most).
RECENT = 2


class LevelTiming(NamedTuple):
    """What a completed level took, for the ETA of the levels after it."""

    level: int
    cap: int
    """Its step cap."""
    steps: int
    """Steps it ran (the slowest network's; fewer than `cap` when every network stopped early)."""
    train_s: float
    eval_s: float


def held(losses: Sequence[float | None], active: Sequence[bool], step: int, below: float, window: int) -> bool:
    """Whether the level in progress is held to its cap: with `early_stop_below` set, an active
    network's recent loss is above it, so it cannot stop early. Only once `2 * window` steps ran
    (the first check; before it, losses are still recovering from the pruning and nothing stops)."""
    if below <= 0 or step < 2 * window:
        return False
    return any(a and loss is not None and loss > below for loss, a in zip(losses, active))


def level_steps(cap: int, step: int, done: Sequence[LevelTiming], held_now: bool) -> float:
    """The expected length in steps of a level now at `step` (`done`: completed levels of its kind)."""
    if held_now:
        return float(cap)
    lengths = [t.steps / t.cap * cap for t in done]
    longer = [n for n in lengths if n >= step]
    if not lengths:
        return float(cap)
    if not longer:  # it has outlasted every level before it
        return (step + cap) / 2
    return max(float(step), float(np.mean(longer)))


def eta_seconds(caps: Sequence[int], level: int, step: int, active: bool, step_s: float,
                done: Sequence[LevelTiming], held_now: bool = False) -> float:
    """Seconds until the run ends: the rest of `level` (now at `step`; `active`: some network still
    trains) and every later level. `caps`: each level's step cap (`Budget.steps_for`)."""
    same_kind = [t for t in done if (t.level == 0) == (level == 0)]
    eval_s = float(np.mean([t.eval_s for t in done])) if done else 0.0
    expected = level_steps(caps[level], step, same_kind, held_now) if active else float(step)
    left = (expected - step) * step_s + eval_s
    retrain = [t.steps / t.cap for t in done if t.level > 0]
    if level > 0:
        retrain.append(expected / caps[level])
    share = float(np.mean(retrain[-RECENT:])) if retrain else 1.0
    for later in range(level + 1, len(caps)):
        left += share * caps[later] * step_s + eval_s
    return left
