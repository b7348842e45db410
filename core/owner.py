"""Who owns a run: one writer at a time, held by a kernel lock, described by an owner record.

Every command that writes a run (train, resume, analyze, delete, tag, ...) first `claim`s it:
an exclusive `fcntl.flock` on the run directory itself, taken without waiting and held until
the process ends (the kernel releases it if the process dies, even by SIGKILL). Locking the
directory, not a lock file inside it, leaves nothing behind (a refused command changes no byte
of the run) and moves with the run when it is renamed into the trash. The kernel lock excludes
writers on one host; on a shared file system, where another host's lock may not reach, commands
also refuse a run whose record says it is alive elsewhere. The claim is the
first thing the command does, so two commands can never both pass a check and then both write.
A second writer gets a `StoreError` naming the owner, in one line. Readers (the app, `runs`,
`select`, `export`) never take the lock: they read the owner record.

The owner record `<run>/owner.json` says who holds the run: host name, boot id, pid, the
process's start time and its command line, and since when. Liveness (`liveness`) is decided
from it, never from a bare pid:
- on the same host and boot: alive when a process with that pid exists and started at the
  recorded time (so a reused pid, or a record from before a reboot, is recognised as dead);
- on another host (a shared file system): shown as running there, with the age of the run's
  last event; it counts as stale, and the run as interrupted, after `STALE_AFTER_S` without
  events (`$MOTHTUI_STALE_AFTER_S` overrides it).
The record is removed when the owner releases the run; one left by a dead process is stale
and simply overwritten by the next claim.

Pure standard library plus psutil: the UI's runs list reads records through this module.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from core import cmdline, paths
from core.errors import StoreError

#: Files of the ownership protocol: a run directory holding only these has no store yet.
OWNER_FILES = (paths.OWNER_FILE,)
#: Seconds without a new event after which an owner on another host counts as gone. The engine
#: writes a progress event at least every few seconds while it trains; evaluating a level of
#: the paper preset can take several minutes; an hour leaves room for both.
STALE_AFTER_S = 3600.0
#: Two start times within this many seconds are the same process (psutil rounds to 10 ms).
_START_TOLERANCE_S = 0.05
#: Files whose modification time tells when the owner was last heard from.
_ACTIVITY_FILES = (paths.events_file, paths.owner_file)

# Locks this process holds, by run directory: the open file keeps the lock, so it must live on.
_held: dict[Path, "Claim"] = {}


def host_name() -> str:
    return socket.gethostname()


def boot_id() -> str:
    """This boot of this host (Linux's random boot id; the boot time elsewhere)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return f"boot-{psutil.boot_time():.0f}"


def stale_after_s() -> float:
    text = os.environ.get("MOTHTUI_STALE_AFTER_S", "")
    try:
        return float(text) if text else STALE_AFTER_S
    except ValueError:
        raise StoreError(f"$MOTHTUI_STALE_AFTER_S must be a number of seconds, got {text!r}") from None


@dataclass(frozen=True)
class OwnerRecord:
    """The content of `owner.json`."""

    host: str
    boot_id: str
    pid: int
    started: float
    """The owner process's start time (seconds since the epoch, as psutil gives it)."""
    command: str
    since: str
    """When the owner claimed the run (ISO 8601)."""

    @classmethod
    def of_process(cls, pid: int, command: str) -> "OwnerRecord":
        """The record of a live process of this host (this one, or a stand-in in tests)."""
        return cls(host=host_name(), boot_id=boot_id(), pid=pid, started=psutil.Process(pid).create_time(),
                   command=command, since=_dt.datetime.now().astimezone().isoformat(timespec="seconds"))

    @property
    def here(self) -> bool:
        """On this host, in this boot (so its pid can be checked)."""
        return self.host == host_name() and self.boot_id == boot_id()

    def describe(self) -> str:
        return f"{self.command} (pid {self.pid} on {self.host}, since {self.since})"


def read_record(run_dir: Path | str) -> OwnerRecord | None:
    """The owner record of a run directory, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads(paths.owner_file(run_dir).read_text())
        return OwnerRecord(host=str(data["host"]), boot_id=str(data["boot_id"]), pid=int(data["pid"]),
                           started=float(data["started"]), command=str(data["command"]), since=str(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def process_alive(pid: int, started: float) -> bool:
    """A process with this pid exists, started at `started`, and is not a zombie."""
    try:
        process = psutil.Process(pid)
        return abs(process.create_time() - started) <= _START_TOLERANCE_S \
            and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:  # it exists; its start time is all we could not read
        return True


@dataclass(frozen=True)
class Liveness:
    """What the owner record says about a run right now."""

    record: OwnerRecord | None
    alive: bool
    """The owner is (believed) running: checked on this host, by the age of its last event elsewhere."""
    age_s: float | None = None
    """Seconds since the run was last heard from (its last event or the record), where known."""

    @property
    def pid(self) -> int | None:
        """The owner's pid when it is alive on this host (so it can be signalled), else None."""
        return self.record.pid if self.alive and self.record is not None and self.record.here else None

    @property
    def elsewhere(self) -> bool:
        return self.record is not None and not self.record.here

    def where(self) -> str:
        """`pid 123` here, `gpu7 (last event 2m ago)` elsewhere."""
        if self.record is None:
            return "no owner"
        if self.record.here:
            return f"pid {self.record.pid}"
        age = "" if self.age_s is None else f" (last heard from {_age(self.age_s)} ago)"
        return f"{self.record.host}{age}"


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def last_heard(run_dir: Path | str) -> float | None:
    """Seconds since the newest of the run's events and its owner record were written."""
    times = []
    for where in _ACTIVITY_FILES:
        try:
            times.append(where(run_dir).stat().st_mtime)
        except OSError:
            continue
    return time.time() - max(times) if times else None


def liveness(run_dir: Path | str) -> Liveness:
    """Whether the run's owner is alive (see the module docstring for how this is decided)."""
    record = read_record(run_dir)
    if record is None:
        return Liveness(None, False)
    age = last_heard(run_dir)
    if record.here:
        return Liveness(record, process_alive(record.pid, record.started), age)
    if record.host == host_name():  # this host, another boot: it died in the reboot
        return Liveness(record, False, age)
    return Liveness(record, age is not None and age < stale_after_s(), age)


@dataclass
class Claim:
    """This process's hold on a run: the open, locked run directory. `release()` lets go."""

    run_dir: Path
    fd: int
    record: OwnerRecord
    depth: int = 1
    """How many claims of this process share it (a command, then a part of it that claims too)."""

    def release(self) -> None:
        """Remove the record and drop the lock (also done by the kernel when the process ends)."""
        self.depth -= 1
        if self.depth > 0:  # an inner claim ends; the outer one still holds the run
            return
        if _held.get(self.run_dir) is self:
            del _held[self.run_dir]
        try:
            if read_record(self.run_dir) == self.record:
                paths.owner_file(self.run_dir).unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self.fd)  # drops the lock

    def moved_to(self, run_dir: Path) -> None:
        """The run directory was renamed (delete, restore): the open lock moved with it."""
        _held.pop(self.run_dir, None)
        self.run_dir = Path(run_dir).absolute()
        _held[self.run_dir] = self

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *_exc) -> None:
        self.release()


def command_line() -> str:
    """This process's command as a user would type it (`mothtui resume X --runs runs`), shell-quoted."""
    argv = list(sys.argv)
    if not argv or argv[0].endswith(("__main__.py", "-m")):  # python -m core ...
        return cmdline.shell(argv[1:])
    return shlex.join([Path(argv[0]).name, *argv[1:]])


def claim(run_dir: Path | str, command: str | None = None, *, run_id: str | None = None) -> Claim:
    """Take the run exclusively, now or never; StoreError naming the owner if it is taken.

    Claiming a run this process already holds returns the same claim, counted: the run is let go
    when the outermost claim is released (a command that calls a part that claims too).
    """
    run_dir = Path(run_dir).absolute()  # one key per run, however the caller spelled its path
    name = run_id or run_dir.name
    if run_dir in _held:
        _held[run_dir].depth += 1
        return _held[run_dir]
    try:
        fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        from core.runlist import no_run  # (runlist reads records through this module)

        raise no_run(run_dir.parent, name) from None
    except OSError as err:
        raise StoreError(f"cannot claim run {name!r}: {err.strerror or err}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = _live_record(run_dir)
        owner = holder.describe() if holder else "another process (its record is not written yet)"
        raise StoreError(f"run {name!r} is in use by {owner}") from None
    except OSError as err:  # a file system without locks
        os.close(fd)
        raise StoreError(f"cannot lock run {name!r}: {err.strerror or err}") from None
    previous = liveness(run_dir)
    if previous.alive and previous.elsewhere:  # another host's lock may not reach this one: its record does
        os.close(fd)
        raise StoreError(f"run {name!r} is running on {previous.where()}")
    record = OwnerRecord.of_process(os.getpid(), command or command_line())
    try:
        write_record(run_dir, record)
    except OSError as err:
        os.close(fd)
        raise StoreError(f"cannot claim run {name!r}: {err.strerror or err}") from None
    held = Claim(run_dir, fd, record)
    _held[run_dir] = held
    return held


#: How long a refused claimer waits for the winner's record (written just after it takes the lock).
_RECORD_WAIT_S = 2.0


def _live_record(run_dir: Path) -> OwnerRecord | None:
    """The record of whoever holds the lock: the winner writes it a moment after locking, so a record
    left by a dead earlier owner is waited out briefly rather than named."""
    deadline = time.monotonic() + _RECORD_WAIT_S
    while True:
        owner = liveness(run_dir)
        if owner.alive or time.monotonic() > deadline:
            return owner.record if owner.alive else None
        time.sleep(0.02)


def claim_new(run_dir: Path | str, command: str | None = None) -> Claim:
    """Create the run directory and claim it, atomically: exactly one of several creators wins.

    A directory left by a creator that died before writing its store (nothing but a dead owner's
    record) is taken over instead of refused: it holds no run, only the id.
    """
    run_dir = Path(run_dir)
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(run_dir)
    except FileExistsError:
        abandoned = _take_over_abandoned(run_dir, command)
        if abandoned is not None:
            return abandoned
        holder = liveness(run_dir)
        owner = f" (in use by {holder.record.describe()})" if holder.alive and holder.record else ""
        raise StoreError(f"run {run_dir.name!r} already exists in {run_dir.parent}{owner}") from None
    except OSError as err:
        raise StoreError(f"cannot create run at {run_dir}: {err.strerror or err}") from None
    try:
        return claim(run_dir, command)
    except StoreError as err:  # a taker claimed our fresh, still empty directory first: it won
        raise StoreError(f"run {run_dir.name!r} already exists in {run_dir.parent} ({err})") from None


def store_less(run_dir: Path | str) -> bool:
    """A directory that holds nothing but the ownership protocol's files (the record, or the temporary
    file it is written through): claimed by a creator that has not written its store yet (or died first)."""
    try:
        names = [p.name for p in Path(run_dir).iterdir()]
    except OSError:
        return False
    return all(n in OWNER_FILES or paths.is_tmp_of(n, paths.OWNER_FILE) for n in names)


def _take_over_abandoned(run_dir: Path, command: str | None) -> Claim | None:
    """Claim a directory whose creator died before writing its store (only ownership files, owner dead),
    so `train --id X` can start X again; None if it is not such a directory or someone else got it.

    Atomic like `claim_new`: the kernel lock lets exactly one of several takers in, and the taker checks
    again, under the lock, that no store was written in the meantime.
    """
    if not store_less(run_dir) or liveness(run_dir).alive:
        return None
    try:
        taken = claim(run_dir, command)
    except StoreError:  # another taker (or the creator, alive after all) holds it
        return None
    if not store_less(run_dir):
        taken.release()
        return None
    return taken


def held(run_dir: Path | str) -> Claim | None:
    """This process's claim on a run, if it holds one."""
    return _held.get(Path(run_dir).absolute())


def write_record(run_dir: Path | str, record: OwnerRecord) -> None:
    """Atomically (temporary file, then rename): a reader never sees half a record."""
    target = paths.owner_file(run_dir)
    tmp = paths.tmp_sibling(target)
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, target)
