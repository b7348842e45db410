"""Every run keeps its engine's output: `<run>/engine.log`, wherever the engine was started.

`keep_output(run_dir)` wraps the engine's work (`core.commands.train.execute`, which train and
resume both call). While it is open, whatever the process writes on its stdout and stderr
(file descriptors 1 and 2: Python, JAX/XLA's C++ logging, warnings) still goes where it went,
and a copy goes to the log. A descriptor that is a terminal is replaced by a pseudo-terminal, so
the progress display still sees a terminal and draws as before; the log gets the text without
the terminal's control sequences, and a line redrawn in place (a progress bar) only as it
finally stands. An exception leaving the block (a crash) is written to the log with its
traceback. Each start appends (`resume` adds to the same file), under a dated header line.

In a job of several processes (`--distributed`) process i > 0 writes `engine.<i>.log`.
Standard library only.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import os
import re
import sys
import termios
import threading
import traceback
from pathlib import Path

from core import paths

LOG_FILE = paths.ENGINE_LOG  # the name tests import
#: CSI and OSC escape sequences, and other escapes of two characters.
_ESCAPE = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_ERASE_LINE = re.compile(rb"\x1b\[[0-2]?K")


def log_name() -> str:
    """`engine.log`, or `engine.<i>.log` for process i > 0 of a distributed job (jax already imported)."""
    jax = sys.modules.get("jax")
    try:
        index = jax.process_index() if jax is not None else 0
    except Exception:  # noqa: BLE001 - no backend yet: a single process
        index = 0
    return paths.engine_log_name(index)


class _Cleaner:
    """Terminal output to log text: control sequences dropped, `\\r` and erase-line restart the line."""

    def __init__(self) -> None:
        self.line = b""

    def feed(self, data: bytes) -> bytes:
        out = []
        for piece in re.split(rb"(\r\n|\n|\r|\x1b\[[0-2]?K)", data):
            if piece in (b"\n", b"\r\n"):
                out.append(self.line + b"\n")
                self.line = b""
            elif piece == b"\r" or _ERASE_LINE.fullmatch(piece or b"-"):
                self.line = b""
            elif piece:
                self.line += _ESCAPE.sub(b"", piece).replace(b"\x07", b"").replace(b"\b", b"")
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self.line = self.line, b""
        return rest + b"\n" if rest.strip() else b""


class _Tee:
    """Descriptors 1 and 2 copied to a log file by a thread (see the module docstring)."""

    def __init__(self, path: Path):
        self.log = open(path, "ab", buffering=0)
        self.lock = threading.Lock()
        self.saved: dict[int, int] = {}     # fd -> duplicate of what it was
        self.readers: dict[int, int] = {}   # reading end -> fd it serves
        self.cleaners: dict[int, _Cleaner] = {}
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        channels: dict[tuple[int, int], int] = {}  # (device, inode) of a destination -> its writer
        for fd in (1, 2):
            try:
                where = os.fstat(fd)
            except OSError:
                continue  # closed: nothing to copy
            self.saved[fd] = os.dup(fd)
            key = (where.st_dev, where.st_ino)
            if key in channels:  # stderr goes where stdout goes (a terminal, a log file): one channel
                os.dup2(channels[key], fd)  # keeps the order of their lines
                continue
            if os.isatty(fd):
                reader, writer = os.openpty()
                attrs = termios.tcgetattr(writer)
                attrs[1] &= ~termios.OPOST  # pass the bytes through as written (no \n -> \r\n)
                termios.tcsetattr(writer, termios.TCSANOW, attrs)
                with contextlib.suppress(OSError):  # the same size as the real terminal
                    fcntl.ioctl(writer, termios.TIOCSWINSZ, fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
            else:
                reader, writer = os.pipe()
            os.dup2(writer, fd)
            channels[key] = writer
            self.readers[reader] = fd
            self.cleaners[reader] = _Cleaner()
        for writer in channels.values():
            os.close(writer)  # fds 1 and 2 hold them now
        self.thread = threading.Thread(target=self._pump, name="runlog", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        import select

        open_readers = set(self.readers)
        while open_readers:
            ready, _, _ = select.select(list(open_readers), [], [], 1.0)
            for reader in ready:
                try:
                    data = os.read(reader, 65536)
                except OSError:  # a pty whose other end closed
                    data = b""
                if not data:
                    open_readers.discard(reader)
                    self._write_log(self.cleaners[reader].flush())
                    continue
                with contextlib.suppress(OSError):
                    _write_all(self.saved[self.readers[reader]], data)
                self._write_log(self.cleaners[reader].feed(data))

    def _write_log(self, text: bytes) -> None:
        if text:
            with self.lock, contextlib.suppress(OSError):
                self.log.write(text)

    def note(self, text: str) -> None:
        self._write_log(text.encode("utf-8", errors="replace"))

    def stop(self, last: str = "") -> None:
        """Restore the descriptors, copy what is still in flight, then write `last` (why it ended)."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, saved in self.saved.items():
            os.dup2(saved, fd)  # the last writer of the pipe or pty goes: the reader sees its end
        if self.thread is not None:
            self.thread.join(timeout=5)
        for saved in self.saved.values():
            os.close(saved)
        for reader in self.readers:
            with contextlib.suppress(OSError):
                os.close(reader)
        self.note(last)
        self.log.close()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


@contextlib.contextmanager
def keep_output(run_dir: Path | str):
    """Copy this process's stdout and stderr into the run's log while the block runs (module docstring)."""
    path = Path(run_dir) / log_name()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        tee = _Tee(path)
    except OSError:  # a read-only run store: run without a log rather than not at all
        yield None
        return
    tee.note(f"--- {_dt.datetime.now().astimezone().isoformat(timespec='seconds')} "
             f"pid {os.getpid()}: {' '.join(sys.argv[1:]) or 'engine'}\n")
    tee.start()
    last = ""
    try:
        yield path
    except BaseException as err:
        from core.errors import MothError

        if isinstance(err, MothError):
            last = f"mothtui: {err}\n"
        elif isinstance(err, KeyboardInterrupt):
            last = "mothtui: interrupted\n"
        else:
            last = "".join(traceback.format_exception(err))
        raise
    finally:
        tee.stop(last)
