"""The desktop notification as a real terminal receives it: the app in a pty, a run started
elsewhere ends, and the OSC sequence is in the bytes the app wrote (wrapped for tmux inside tmux)."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from core.owner import OwnerRecord, write_record
from fixture_runs import make_fixture_run
from tui.terminal import Terminal, mothtui_argv


def bells(data: bytes) -> bytes:
    """The bytes without OSC sequences (Textual ends some, e.g. the pointer shape, with BEL too)."""
    return re.sub(rb"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)", b"", bytes(data))


@pytest.mark.parametrize("tmux", [False, True])
def test_run_end_reaches_the_terminal_as_osc(runs_dir, tmux):
    engine = subprocess.Popen(["sleep", "60"])  # an engine this app did not start
    run = make_fixture_run(runs_dir, "elsewhere", status="running", levels_complete=2)
    write_record(run.path, OwnerRecord.of_process(engine.pid, "mothtui train"))  # the stand-in owns the run
    term = Terminal(mothtui_argv(runs_dir), env={"TMUX": "/tmp/tmux-0/default,1,0"} if tmux else {"TMUX": ""})
    raw = bytearray()
    feed = term.stream.feed
    term.stream.feed = lambda data: (raw.extend(data), feed(data))
    try:
        term.wait_for("elsewhere", timeout=20)
        time.sleep(2.5)  # the app's first look at the store: running
        term.pump(0.1)
        before = len(raw)
        assert b"\x07" not in bells(raw) and b"]9;" not in raw  # nothing rings or notifies while nothing ends
        run.set_status("done")
        (run.path / "owner.json").unlink()  # the engine let go of the run
        expected = b"\x1b]9;mothtui: run done: elsewhere: done, 2/5 levels\x07"
        if tmux:
            expected = b"\x1bPtmux;" + expected.replace(b"\x1b", b"\x1b\x1b") + b"\x1b\\"
        end = time.monotonic() + 10
        while expected not in raw and time.monotonic() < end:
            term.pump(0.1)
        assert expected in raw
        assert b"\x07" in bells(bytes(raw[before:]).replace(expected, b""))  # and the bell
        term.wait_for("elsewhere: done")  # the toast
    finally:
        term.press("q", "q")
        term.close()
        engine.kill()
        engine.wait()
