"""Announce every run that ends while the app is open, however it was started (app, shell, scheduler).

`RunEndWatcher` compares each look at the store (core.runlist: plain JSON) with the last one and
returns the runs that left `running` (or appeared already ended after the app started).
`Notifier` announces one: a toast, the terminal bell, and a desktop notification through the
terminal (OSC 9 or OSC 777; inside tmux wrapped for its passthrough, which needs
`set -g allow-passthrough on`). All three follow the `[notifications]` settings. No textual import
here: the app hands in its `notify`, `bell` and a `write` of raw bytes to the terminal.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.runlist import RunSummary, list_runs

#: Statuses a running run can end in (`interrupted`: its engine is gone without saying why).
ENDED = ("done", "failed", "cancelled", "interrupted")
SEVERITY = {"done": "information", "cancelled": "warning", "interrupted": "warning", "failed": "error"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class RunEnded:
    run_id: str
    status: str
    levels: str  # "5/5"

    @property
    def title(self) -> str:
        return f"run {self.status}"

    @property
    def body(self) -> str:
        return f"{self.run_id}: {self.status}, {self.levels} levels"


class RunEndWatcher:
    """Which runs of a store ended since the last `poll` (the first poll only learns the state)."""

    def __init__(self, runs_dir: Path, started: float):
        self.runs_dir = Path(runs_dir)
        self.started = started
        self.seen: dict[str, str] | None = None

    def poll(self) -> list[RunEnded]:
        summaries = list_runs(self.runs_dir)
        first = self.seen is None
        seen = self.seen or {}
        ended = []
        for s in summaries:
            before = seen.get(s.run_id)
            if first or s.status not in ENDED or before == s.status:
                continue
            if before == "running" or (before is None and self._created_since_start(s)):
                levels = "–" if s.levels_complete is None else f"{s.levels_complete}/{s.levels}"
                ended.append(RunEnded(s.run_id, s.status, levels))
        self.seen = {s.run_id: s.status for s in summaries}
        return ended

    def _created_since_start(self, s: RunSummary) -> bool:
        """A run that started and ended between two looks (a short run from a shell)."""
        try:
            return _dt.datetime.fromisoformat(s.created or "").timestamp() >= self.started
        except ValueError:
            return False


def desktop_sequence(title: str, body: str, kind: str = "osc9", tmux: bool = False) -> str:
    """The escape sequence of a desktop notification: OSC 9 (iTerm2, WezTerm, kitty, Windows Terminal,
    ghostty, foot) or OSC 777 (urxvt, foot, WezTerm, ghostty, Konsole); "" for `off`.

    Inside tmux the sequence is wrapped in a DCS passthrough (`ESC P tmux; … ESC \\`, every ESC
    doubled), which tmux forwards to the outer terminal when `allow-passthrough` is on.
    """
    title, body = _CONTROL.sub(" ", title), _CONTROL.sub(" ", body)
    if kind == "osc9":
        sequence = f"\x1b]9;{title}: {body}\x07"
    elif kind == "osc777":
        sequence = f"\x1b]777;notify;{title.replace(';', ',')};{body.replace(';', ',')}\x07"
    else:
        return ""
    if tmux:
        sequence = "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return sequence


class Notifier:
    """Announces ended runs as the settings say: toast, bell, desktop notification."""

    def __init__(self, settings, *, toast: Callable[..., None], bell: Callable[[], None],
                 write: Callable[[str], None], in_tmux: bool | None = None):
        self.enabled = settings.notify
        self.bell_on = settings.bell
        self.desktop = settings.desktop
        self.toast, self.ring, self.write = toast, bell, write
        self.in_tmux = bool(os.environ.get("TMUX")) if in_tmux is None else in_tmux

    def announce(self, ended: RunEnded) -> None:
        if not self.enabled:
            return
        self.toast(ended.body, title=ended.title, severity=SEVERITY.get(ended.status, "information"),
                   timeout=10)
        if self.bell_on:
            self.ring()
        sequence = desktop_sequence(f"mothtui: {ended.title}", ended.body, self.desktop, self.in_tmux)
        if sequence:
            self.write(sequence)
