"""Cancellation by signal: SIGTERM (the UI's cancel, sent to the process group) and SIGINT set an
Event that the level loop checks between compiled chunks. No JAX here, so commands can install
it before anything slow starts."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def stop_on_signals(signals=(signal.SIGTERM, signal.SIGINT)) -> Iterator[threading.Event]:
    """An Event set by SIGTERM/SIGINT while the block runs (previous handlers restored after)."""
    stop = threading.Event()
    previous = {}
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    except ValueError:  # not the main thread: no signal handling, the caller's event only
        pass
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
