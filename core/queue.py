"""The run queue: runs waiting their turn, kept in the run store, run by one detached supervisor.

The queue is `<runs>/.queue/queue.json` (`QueueState`: paused or not, how many runs at once, the
entries in order). Every change is a read-modify-write under an exclusive `flock` on
`<runs>/.queue/queue.lock` (`locked`), written by atomic rename, so the CLI, the app and the
supervisor can change it concurrently and a reader never sees half a file.

The supervisor (`supervise`, run as `python -m core queue supervise`, detached: its own session,
stdin closed) holds `<runs>/.queue/supervisor/` with `core.owner.claim`: the kernel lock makes it
the only one, and its owner record is how a new CLI or app finds it again (`supervisor`). Every
tick it looks at the running entries, records the ones that ended (from the run's own status:
`done`, else `failed` with the reason, and the queue goes on), and starts the next queued entries
while fewer than `parallel` run (one per GPU by default, each with its own `CUDA_VISIBLE_DEVICES`),
one at a time through its set-up (so parallel runs never simulate one missing dataset twice).
It exits when nothing is left to run; any command that gives it work starts it (`ensure_supervisor`).

The queue's state is all in the store, so a killed supervisor loses nothing: the engines it
started run in their own sessions and keep going, and the next supervisor adopts them by pid and
start time (`core.owner.process_alive`), then goes on. Each entry is started as `mothtui train`
if its run does not exist yet, else as `mothtui resume` (a paused or restarted entry continues from
its last complete level); a done run is just recorded as done.

Pause sends SIGTERM to the running engines (they cancel cleanly, resumable) and starts nothing
more; resume puts the paused entries back at their place in the queue. Cancel takes entries out
(SIGTERM to a running one). Pure standard library plus psutil (no JAX): the app reads it too.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import psutil

from core import cmdline, paths
from core.errors import MothError, StoreError
from core.owner import OWNER_FILES, Liveness, claim, liveness, process_alive
from core.runlist import run_path, summarize

#: Seconds between two looks of the supervisor at its engines and the queue.
TICK_S = 0.5
#: How long a command that starts the supervisor waits for it to take the queue.
_START_WAIT_S = 10.0

#: Entry states. `queued` waits; `running` has an engine; `paused` was stopped by `queue pause`
#: and goes back to `queued` on `queue resume`; the rest are final.
STATES = ("queued", "running", "paused", "done", "failed", "cancelled")
FINAL = ("done", "failed", "cancelled")


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass
class Entry:
    """One queued run: its id, `mothtui train`'s arguments for it, and what became of it."""

    run: str
    args: list[str]
    """`mothtui train` arguments (preset, config, --set), without --runs, --id, --sweep."""
    sweep: str | None = None
    state: str = "queued"
    queued: str = field(default_factory=_now)
    started: str | None = None
    ended: str | None = None
    pid: int | None = None
    pid_started: float | None = None
    """The engine's process start time: with the pid, tells it from a later process of that pid."""
    device: str | None = None
    stopping: str | None = None
    """`pause` or `cancel` while a running engine is being stopped for that reason."""
    attempts: int = 0
    exit: int | None = None
    reason: str = ""
    cwd: str = field(default_factory=os.getcwd)
    """Where it was queued: its engine starts there, so relative paths in its arguments mean what they
    meant to the user, whichever supervisor starts it."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Entry":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class QueueState:
    """The whole queue: `queue.json`."""

    paused: bool = False
    parallel: int | None = None
    """Runs at once (None: one per GPU, one without)."""
    entries: list[Entry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"paused": self.paused, "parallel": self.parallel, "entries": [asdict(e) for e in self.entries]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QueueState":
        return cls(bool(data.get("paused", False)), data.get("parallel"),
                   [Entry.from_dict(e) for e in data.get("entries", [])])

    def find(self, run_id: str) -> Entry | None:
        return next((e for e in self.entries if e.run == run_id), None)

    def with_state(self, *states: str) -> list[Entry]:
        return [e for e in self.entries if e.state in states]

    @property
    def needs_supervisor(self) -> bool:
        """Something is running, or waits and the queue is not paused."""
        return bool(self.with_state("running")) or (not self.paused and bool(self.with_state("queued")))


def read_queue(runs_dir: Path | str) -> QueueState:
    """The queue as last written (no lock needed: it is replaced atomically). Empty if none."""
    path = paths.queue_file(runs_dir)
    try:
        return QueueState.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return QueueState()
    except (OSError, ValueError, TypeError) as err:
        raise StoreError(f"queue {path} is unreadable ({err})") from None


def _write(runs_dir: Path | str, state: QueueState) -> None:
    path = paths.queue_file(runs_dir)
    tmp = paths.tmp_sibling(path)
    tmp.write_text(json.dumps(state.to_dict(), indent=1))
    os.replace(tmp, path)


@contextmanager
def locked(runs_dir: Path | str, write: bool = True) -> Iterator[QueueState]:
    """The queue, held exclusively for a read-modify-write; written back when the block ends normally
    (`write=False`: only held, for a decision that must not race a change)."""
    folder = paths.queue_dir(runs_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(paths.queue_lock(runs_dir), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise StoreError(f"cannot open the queue in {folder}: {err.strerror or err}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        state = read_queue(runs_dir)
        yield state
        if write:
            _write(runs_dir, state)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- changes asked by the CLI or the app

def enqueue(runs_dir: Path | str, entries: list[Entry], parallel: int | None = None) -> QueueState:
    """Add entries at the end (StoreError if a run id is already queued or exists) and start the
    supervisor if it is not running."""
    with locked(runs_dir) as state:
        for entry in entries:
            if state.find(entry.run) is not None:
                raise StoreError(f"run {entry.run!r} is already in the queue")
            if run_path(runs_dir, entry.run).exists():
                raise StoreError(f"run {entry.run!r} already exists in {runs_dir}")
        state.entries += entries
        if parallel is not None:
            state.parallel = parallel
    ensure_supervisor(runs_dir)
    return state


def pause(runs_dir: Path | str) -> QueueState:
    """Start nothing more; the supervisor stops the running engines (SIGTERM: resumable)."""
    with locked(runs_dir) as state:
        state.paused = True
        for entry in state.with_state("running"):
            entry.stopping = entry.stopping or "pause"
    if state.with_state("running"):
        ensure_supervisor(runs_dir)
    return state


def resume(runs_dir: Path | str, parallel: int | None = None) -> QueueState:
    """Unpause: paused entries wait again at their place; (re)start the supervisor if there is work."""
    with locked(runs_dir) as state:
        state.paused = False
        if parallel is not None:
            state.parallel = parallel
        for entry in state.with_state("paused"):
            entry.state = "queued"
            entry.stopping = None
    ensure_supervisor(runs_dir)
    return state


def _targets(state: QueueState, names: list[str]) -> list[Entry]:
    """Entries named by run id or sweep name; MothError for a name that matches none."""
    chosen: list[Entry] = []
    for name in names:
        found = [e for e in state.entries if e.run == name or e.sweep == name]
        if not found:
            raise MothError(f"{name!r} is neither a queued run nor a queued sweep")
        chosen += [e for e in found if e not in chosen]
    return chosen


def cancel(runs_dir: Path | str, names: list[str]) -> list[Entry]:
    """Take runs (or whole sweeps) out: waiting ones become `cancelled`, running ones get SIGTERM."""
    with locked(runs_dir) as state:
        chosen = [e for e in _targets(state, names) if e.state not in FINAL]
        for entry in chosen:
            if entry.state == "running":
                entry.stopping = "cancel"
            else:
                entry.state, entry.ended = "cancelled", _now()
    if state.with_state("running"):
        ensure_supervisor(runs_dir)
    return chosen


def retry(runs_dir: Path | str, names: list[str]) -> list[Entry]:
    """Put failed or cancelled entries back in the queue (their runs continue where they stopped)."""
    with locked(runs_dir) as state:
        chosen = [e for e in _targets(state, names) if e.state in ("failed", "cancelled")]
        for entry in chosen:
            entry.state, entry.ended, entry.reason, entry.exit = "queued", None, "", None
    ensure_supervisor(runs_dir)
    return chosen


def move(runs_dir: Path | str, run_id: str, position: int) -> QueueState:
    """Move a waiting entry to `position` (1-based) among the waiting entries."""
    with locked(runs_dir) as state:
        entry = state.find(run_id)
        if entry is None or entry.state not in ("queued", "paused"):
            raise MothError(f"run {run_id!r} is not waiting in the queue")
        if position < 1:
            raise MothError(f"position must be 1 or more, got {position}")
        state.entries.remove(entry)
        waiting = [i for i, e in enumerate(state.entries) if e.state in ("queued", "paused")]
        at = waiting[position - 1] if position <= len(waiting) else len(state.entries)
        state.entries.insert(at, entry)
    return state


# ---------------------------------------------------------------- the supervisor

def supervisor(runs_dir: Path | str) -> Liveness:
    """The supervisor's owner record and whether it is alive (through core.owner)."""
    return liveness(paths.supervisor_dir(runs_dir))


def supervisor_command(runs_dir: Path | str) -> list[str]:
    return cmdline.argv(["queue", "supervise", "--runs", str(Path(runs_dir).resolve())])


def ensure_supervisor(runs_dir: Path | str) -> int | None:
    """Start the supervisor, detached, unless one is alive or there is nothing to do; its pid (or None).

    Decided under the queue's lock, as the supervisor decides to end (and lets go of its claim)
    under it: work added just as a supervisor ends is seen either by it or by this check."""
    with locked(runs_dir, write=False) as state:
        alive = supervisor(runs_dir)
        if alive.alive:
            return alive.pid
        if not state.needs_supervisor:
            return None
        with open(paths.supervisor_log(runs_dir), "ab") as out:
            process = subprocess.Popen(supervisor_command(runs_dir), stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True, cwd=os.getcwd())
    # Wait until it holds the queue (or lost that to another), so `mothtui queue` right after shows it.
    deadline = time.monotonic() + _START_WAIT_S
    while time.monotonic() < deadline and process.poll() is None:
        owner = supervisor(runs_dir)
        if owner.alive:
            return owner.pid
        time.sleep(0.02)
    return process.pid


def gpus() -> list[str]:
    """This node's GPUs, as `CUDA_VISIBLE_DEVICES` names them ([] without any): `$CUDA_VISIBLE_DEVICES`
    if set, else `nvidia-smi -L` (no JAX: the supervisor must not take a GPU itself)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(l for l in out.splitlines() if l.startswith("GPU "))]


class Supervisor:
    """The loop of `mothtui queue supervise`: adopt, record, start, until nothing is left."""

    def __init__(self, runs_dir: Path | str):
        self.runs_dir = Path(runs_dir)
        self.children: dict[int, subprocess.Popen] = {}
        self.devices = gpus()

    def parallel(self, state: QueueState) -> int:
        return max(1, state.parallel or len(self.devices) or 1)

    def run(self) -> int:
        folder = paths.supervisor_dir(self.runs_dir)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            held = claim(folder, "mothtui queue supervise", run_id="queue supervisor")
        except StoreError as err:  # another supervisor runs this queue: it does the work
            print(f"mothtui: {err}", file=sys.stderr)
            return 0
        try:
            print(f"{_now()} supervisor {os.getpid()} starts", flush=True)
            while True:
                with locked(self.runs_dir) as state:
                    if not self.tick(state):
                        held.release()  # under the queue's lock: see ensure_supervisor
                        break
                time.sleep(TICK_S)
            print(f"{_now()} supervisor {os.getpid()} ends: nothing left to run", flush=True)
        finally:
            if held.depth > 0:
                held.release()
        return 0

    def tick(self, state: QueueState) -> bool:
        """One look at the queue (held locked by the caller); False when the supervisor can end."""
        for entry in state.with_state("running"):
            self.watch(entry, state.paused)
        if not state.paused and not self.setting_up(state):
            free = self.parallel(state) - len(state.with_state("running"))
            for entry in state.with_state("queued"):
                if free <= 0:
                    break
                if self.start(entry, state):
                    free -= 1
        return state.needs_supervisor

    def setting_up(self, state: QueueState) -> bool:
        """A running entry has no run store yet (it simulates or loads its dataset, compiles): start
        nothing beside it, so that parallel runs never simulate one missing cached dataset twice at once."""
        return any(not paths.meta_file(self.runs_dir / e.run).exists() for e in state.with_state("running"))

    def _alive(self, entry: Entry) -> bool:
        child = self.children.get(entry.pid or -1)
        if child is not None:
            if child.poll() is None:
                return True
            entry.exit = child.returncode
            del self.children[child.pid]
            return False
        return entry.pid is not None and entry.pid_started is not None \
            and process_alive(entry.pid, entry.pid_started)

    def watch(self, entry: Entry, paused: bool) -> None:
        """A running entry: stop it if asked (once), record it when its engine has ended."""
        if self._alive(entry):
            if entry.stopping is None and paused:
                entry.stopping = "pause"
            if entry.stopping and entry.reason != "stopping":
                entry.reason = "stopping"
                try:
                    if entry.pid:
                        os.killpg(entry.pid, signal.SIGTERM)  # its own session: the engine and its children
                except (ProcessLookupError, PermissionError):
                    pass
            return
        status = _run_status(self.runs_dir, entry.run)
        entry.ended, entry.pid, entry.pid_started = _now(), None, None  # `device`: where it last ran
        if status == "done":
            entry.state, entry.reason = "done", ""
        elif entry.stopping == "pause":  # resumed again before it stopped: back in line, it resumes next
            entry.state, entry.reason = ("paused", f"paused (run {status})") if paused else ("queued", "")
        elif entry.stopping == "cancel":
            entry.state, entry.reason = "cancelled", f"cancelled (run {status})"
        else:
            entry.state = "failed"
            entry.reason = _failure(self.runs_dir, entry, status)
        entry.stopping = None
        print(f"{_now()} {entry.run}: {entry.state} {entry.reason}".rstrip(), flush=True)

    def start(self, entry: Entry, state: QueueState) -> bool:
        """Start the entry's engine (train, or resume if its run exists); False if nothing was started."""
        if self.setting_up(state):  # one set-up at a time (see setting_up)
            return False
        run_dir = run_path(self.runs_dir, entry.run)
        status = _run_status(self.runs_dir, entry.run)
        if status == "done":
            entry.state, entry.ended, entry.reason = "done", _now(), ""
            return False
        if status in ("running", "starting"):  # someone else (the app, a user) is running it: wait
            return False
        if status == "abandoned":  # a claimed directory left before its store existed: start afresh
            shutil.rmtree(run_dir, ignore_errors=True)
        runs = str(self.runs_dir.resolve())
        if paths.meta_file(run_dir).exists():
            args = cmdline.resume_args(entry.run, runs)
        else:
            args = ["train", *entry.args, "--id", entry.run, *(["--sweep", entry.sweep] if entry.sweep else []),
                    "--runs", runs]
        command = cmdline.argv([*args, "--quiet"])
        env = dict(os.environ)
        entry.device = self.device_for(state)
        if entry.device is not None:
            env["CUDA_VISIBLE_DEVICES"] = entry.device
            if self.parallel(state) > len(self.devices):  # runs share a GPU: none may take most of it
                env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        log = paths.log_file(self.runs_dir, entry.run)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            out.write(f"\n[{_now()}] queue: {' '.join(command[2:])}\n".encode())
            out.flush()
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env,
                                     cwd=entry.cwd if os.path.isdir(entry.cwd) else os.getcwd())
        self.children[child.pid] = child
        try:
            started = psutil.Process(child.pid).create_time()
        except psutil.Error:
            started = None
        entry.state, entry.started, entry.ended = "running", _now(), None
        entry.pid, entry.pid_started, entry.exit, entry.reason = child.pid, started, None, ""
        entry.attempts += 1
        print(f"{_now()} {entry.run}: started pid {child.pid}"
              + (f" on GPU {entry.device}" if entry.device is not None else ""), flush=True)
        return True

    def device_for(self, state: QueueState) -> str | None:
        """The least used GPU (None without GPUs)."""
        if not self.devices:
            return None
        used = [e.device for e in state.with_state("running")]
        return min(self.devices, key=lambda d: (used.count(d), self.devices.index(d)))


def _run_status(runs_dir: Path, run_id: str) -> str:
    """`missing`, `abandoned` (claimed, never written, nobody alive) or the runs list's status."""
    path = run_path(runs_dir, run_id)
    if not path.is_dir():
        return "missing"
    summary = summarize(path)
    if summary.damaged and {p.name for p in path.iterdir()} <= set(OWNER_FILES):
        return "abandoned"
    return summary.status


def _failure(runs_dir: Path, entry: Entry, status: str) -> str:
    """Why an entry failed, in one line: the engine's own `mothtui: ...` line if it wrote one."""
    last = ""
    try:
        with open(paths.log_file(runs_dir, entry.run), "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = [l for l in f.read().decode(errors="replace").splitlines() if l.startswith("mothtui: ")]
            last = lines[-1] if lines else ""
    except OSError:
        pass
    code = "" if entry.exit is None else f", exit {entry.exit}"
    return f"run {status}{code}" + (f": {last[len('mothtui: '):]}" if last else "")


def supervise(runs_dir: Path | str) -> int:
    return Supervisor(runs_dir).run()
