"""Run `mothtui` in a real pseudo-terminal and read its screen with pyte (a VT100 emulator).

This is how a user meets the app (a tty, escape sequences, a real event loop), minus the
human: the tests press keys, wait for text, and read the exit code. Also used to write the
text captures of docs/app.md (`python tests/tui/terminal.py RUNS_DIR`).
"""

from __future__ import annotations

import os
import pty
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import fcntl
import termios

import pyte

KEYS = {"enter": "\r", "escape": "\x1b", "tab": "\t", "down": "\x1b[B", "up": "\x1b[A",
        "right": "\x1b[C", "left": "\x1b[D", "ctrl+p": "\x10", "question_mark": "?",
        "ctrl+s": "\x13", "space": " "}


class Terminal:
    """A child process on a pty of `cols` x `rows`, its screen emulated by pyte."""

    def __init__(self, argv: list[str], cols: int = 80, rows: int = 24, env: dict | None = None):
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows),
                    **(env or {})}
        full_env.pop("TEXTUAL", None)
        self.started = time.monotonic()
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=full_env,
                                        start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master

    def pump(self, seconds: float = 0.05) -> None:
        """Feed whatever the app wrote in the next `seconds` to the emulator."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            ready, _, _ = select.select([self.master], [], [], max(0.0, left))
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # the child closed the pty
                    return
                if not data:
                    return
                self.stream.feed(data)
            elif left <= 0:
                return

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the app process has used so far (Linux /proc)."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, needle: str, timeout: float = 10.0) -> float:
        """Seconds since start when `needle` appeared on screen; AssertionError with the screen if not."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(0.05)
            if needle in self.text():
                return time.monotonic() - self.started
            if self.process.poll() is not None:
                self.pump(0.1)
                break
        raise AssertionError(f"{needle!r} did not appear; screen:\n{self.text()}")

    def wait_gone(self, needle: str, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while needle in self.text():
            if time.monotonic() > end:
                raise AssertionError(f"{needle!r} is still on screen:\n{self.text()}")
            self.pump(0.05)

    def press(self, *keys: str, pause: float = 0.15) -> None:
        for key in keys:
            os.write(self.master, KEYS.get(key, key).encode())
            self.pump(pause)

    def wait_exit(self, timeout: float = 5.0) -> int | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(0.05)
            code = self.process.poll()
            if code is not None:
                return code
        return None

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.master)


def mothtui_argv(runs_dir: Path) -> list[str]:
    return [sys.executable, "-m", "mothtui", "--runs", str(runs_dir)]


if __name__ == "__main__":  # print the main screens of a run store as text (for docs/app.md)
    runs = Path(sys.argv[1])
    term = Terminal(mothtui_argv(runs), int(os.environ.get("COLS", 80)), int(os.environ.get("ROWS", 24)))
    try:
        term.wait_for("levels")
        time.sleep(1.5)
        term.pump(0.3)
        print(term.text(), "\n" + "=" * 80)
        for keys in sys.argv[2:]:
            term.press(*keys.split())
            time.sleep(1.5)
            term.pump(0.5)
            print(term.text(), "\n" + "=" * 80)
    finally:
        term.press("q", "q", "q")
        term.close()
