"""Copy over SSH: OSC 52, wrapped for tmux's passthrough inside tmux; the keys that copy a run's id,
its path, and an export's folder, with a notification that says what was copied."""

import base64

import pytest

from fixture_runs import make_fixture_run
from mothtui.clipboard import osc52
from mothtui.screens.run import RunScreen
from tui.helpers import make_app, settle


def _payload(sequence: str) -> str:
    inner = sequence.split("]52;c;", 1)[1].split("\a", 1)[0]
    return base64.b64decode(inner).decode("utf-8")


def test_osc52_bare_and_wrapped_for_tmux():
    bare = osc52("run-1", tmux=False)
    assert bare.startswith("\x1b]52;c;") and bare.endswith("\a") and _payload(bare) == "run-1"
    wrapped = osc52("run-1", tmux=True)
    # tmux passthrough: DCS tmux; <the sequence with every ESC doubled> ST
    assert wrapped.startswith("\x1bPtmux;\x1b\x1b]52;c;") and wrapped.endswith("\a\x1b\\")
    assert wrapped.count("\x1b") == 4 and _payload(wrapped) == "run-1"


def test_tmux_is_detected_from_the_environment(monkeypatch):
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,123,0")
    assert osc52("x").startswith("\x1bPtmux;")
    monkeypatch.delenv("TMUX")
    assert osc52("x").startswith("\x1b]52;")


@pytest.mark.asyncio
async def test_y_copies_the_run_id_and_Y_its_path(runs_dir, monkeypatch):
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    make_fixture_run(runs_dir, "alpha", nets=2)
    app = make_app(runs_dir)
    written = []
    async with app.run_test(size=(100, 32)) as pilot:
        monkeypatch.setattr(app._driver, "write", lambda data: written.append(data))
        await settle(pilot)
        await pilot.press("y")
        await pilot.pause()
        assert app._clipboard == "alpha"
        assert any(w.startswith("\x1bPtmux;") and _payload(w) == "alpha" for w in written)
        await pilot.press("Y")
        await pilot.pause()
        assert app._clipboard == str((runs_dir / "alpha").resolve())
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunScreen)
        await pilot.press("Y")
        await pilot.pause()
        assert app._clipboard == str((runs_dir / "alpha").resolve())
        notes = [n.message for n in app._notifications]
        assert any(n.startswith("copied run id: alpha") for n in notes)
        assert any(n.startswith("copied run path: ") for n in notes)
