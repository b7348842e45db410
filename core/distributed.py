"""Several processes, one run: jax.distributed start-up, slices, and the per-level sync through the store.

What it does (and why it is this small): networks are independent, so a distributed run needs no
collective at all. Each process trains a contiguous slice of the network axis on its own local
devices (its own local mesh, never a global one) and writes its own chunks of the one shared run
store (chunks are aligned with the slices at creation, so writers never share a chunk). JAX's
distributed runtime is used only for what it is good at: starting the processes together
(`jax.distributed.initialize`: options, environment, or the cluster scheduler's variables),
detecting a dead peer (heartbeats: the survivors abort, the run is left resumable), and a small
key-value exchange so that one decision (run id, dataset, "the run exists") is taken by process 0
and seen by all.

The durable truth lives in the run store: after writing its slice of level l a process drops a
marker `<run>/slices/level_{l:03d}/nets_{a}-{b}.json`. Process 0 advances `levels_complete` to the
last level whose markers cover every network, and it alone writes the run's attributes. Markers
name network ranges, not process numbers, so a resume may use another process count as long as
its slices fall on chunk boundaries. A process that fails writes `slices/process_{p}.json` so the
others stop waiting for it.

There is one flow: `train`, `resume` and `simulate` (core/commands/) run the same code with one
process or many; a `Cluster` of one just calls the actions, and a `LevelSync` of one completes
each level at once without markers. Decisions ("does the output exist", the run id, the dataset)
are taken once by process 0 and handed to all (`on_main`); a process that fails leaves its reason
in the key-value store, so every peer's wait ends in the same kind of one-line error.

Importing this module does not import JAX (the markers are plain files); `initialize` does.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core import paths
from core.errors import Cancelled, MothError, StoreError

#: Environment variables read when the command line does not name the coordinator.
ENV_COORDINATOR = "MOTHTUI_COORDINATOR"
ENV_NUM_PROCESSES = "MOTHTUI_NUM_PROCESSES"
ENV_PROCESS_ID = "MOTHTUI_PROCESS_ID"
#: Directory of the per-level slice markers and per-process status files inside a run.
SLICES_DIR = paths.SLICES_DIR  # the name tests import
#: How long a process waits for process 0's decision or for its peers' slices (a level can take
#: hours); `$MOTHTUI_DISTRIBUTED_WAIT_S` overrides it. A dead peer is caught sooner by JAX's heartbeat.
DEFAULT_WAIT_S = 7 * 24 * 3600
#: Seconds between two looks at the markers while waiting.
POLL_S = 0.2


def wait_s() -> float:
    """The longest wait for a peer, in seconds (at most 24 days: the runtime takes int32 milliseconds)."""
    text = os.environ.get("MOTHTUI_DISTRIBUTED_WAIT_S", "")
    try:
        value = float(text) if text else DEFAULT_WAIT_S
    except ValueError:
        raise MothError(f"$MOTHTUI_DISTRIBUTED_WAIT_S must be a number of seconds, got {text!r}") from None
    return min(max(value, 1.0), 24 * 24 * 3600)


# ---- the processes ------------------------------------------------------------------------

#: Key-value directory where a failing process leaves its one-line reason for its peers.
FAILED_KEY = "mothtui/failed"
#: Milliseconds of one blocking look at the key-value store before checking for failed peers.
_LOOK_MS = 200


@dataclass
class Cluster:
    """This process's place among the processes of one job; `count == 1` means single-process.

    Every command runs the same flow whatever the count: with one process `on_main`, `on_all`
    and `gather` just call the action, so single-process is the distributed flow with no peers.
    Used as a context manager around a command, a process that fails tells its peers (one line
    each, never a hang): every wait of theirs then ends in a MothError naming it.
    """

    index: int = 0
    count: int = 1
    client: Any = field(default=None, repr=False)
    """jax.distributed's coordination client (key-value store), None when single-process."""

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, kind, error, _tb) -> None:
        if self.count > 1 and error is not None:
            reason = str(error) if isinstance(error, MothError) else f"failed: {kind.__name__}"
            try:
                self.client.key_value_set(f"{FAILED_KEY}/{self.index}", reason.splitlines()[0] if reason else "failed")
            except Exception:  # the coordinator itself is gone: the peers' heartbeats will tell them
                pass

    def net_slice(self, total: int):
        """This process's `NetSlice` of `total` networks (contiguous, near-equal, process order)."""
        from core.engine.sharding import process_slice

        if total < self.count:
            raise MothError(f"{total} networks cannot be split over {self.count} processes "
                            f"(config key 'nets' must be at least the process count)")
        mine = process_slice(total, self.index, self.count)
        if mine.count == 0:
            raise MothError(f"{total} networks over {self.count} processes leaves process {self.index} "
                            f"without networks (slices of {-(-total // self.count)}); use fewer processes")
        return mine

    def rows(self, total: int, block: int = 1) -> tuple[int, int]:
        """This process's row range [start, stop) of `total` rows, cut on multiples of `block`."""
        blocks = -(-total // block)
        per = -(-blocks // self.count)
        start = min(total, self.index * per * block)
        return start, min(total, start + per * block)

    def _failed_peer(self) -> str | None:
        """`process P: reason` of a peer that has failed, else None."""
        for key, reason in self.client.key_value_dir_get(FAILED_KEY):
            process = key.rstrip("/").rsplit("/", 1)[-1]
            if process != str(self.index):
                return f"process {process}: {reason}"
        return None

    def _wait_for(self, key: str) -> dict[str, Any]:
        """The JSON value under `key`, once some process has set it; MothError if a peer failed first."""
        deadline = time.monotonic() + wait_s()
        while True:
            try:
                return json.loads(self.client.blocking_key_value_get(key, _LOOK_MS))
            except Exception as err:  # DEADLINE_EXCEEDED (not yet set), or the runtime is gone
                if "DEADLINE" not in str(err).upper():
                    raise MothError(f"lost the other processes while waiting for {key!r}: "
                                    f"{str(err).splitlines()[0][:120]}") from None
            failed = self._failed_peer()
            if failed is not None:
                try:  # a peer that failed in on_main has set the answer first: prefer its own message
                    return json.loads(self.client.key_value_try_get(key))
                except Exception:
                    raise MothError(failed) from None
            if time.monotonic() > deadline:
                raise MothError(f"no answer about {key!r} after {wait_s():.0f} s")

    def on_main(self, key: str, action: Callable[[], Any]) -> Any:
        """Run `action` on process 0 only and hand its JSON-able result, or its MothError, to all.

        Every process raises the same one-line MothError if process 0's action failed, so a bad
        input stops the whole job cleanly instead of leaving the others waiting.
        """
        if self.count == 1:
            return action()
        key = f"mothtui/{key}"
        if self.is_main:
            try:
                value = action()
            except MothError as err:
                self.client.key_value_set(key, json.dumps({"error": str(err), "code": err.exit_code}))
                raise
            except BaseException as err:
                self.client.key_value_set(key, json.dumps({"error": f"process 0 failed: {type(err).__name__}"}))
                raise
            self.client.key_value_set(key, json.dumps({"value": value}))
            return value
        answer = self._wait_for(key)
        if "error" in answer:
            error = MothError(answer["error"])
            error.exit_code = answer.get("code", MothError.exit_code)
            raise error
        return answer["value"]

    def on_all(self, key: str, action: Callable[[], Any]) -> Any:
        """Run `action` on every process; if it failed anywhere, every process raises that MothError.

        So a process that cannot read the dataset stops the job before anyone trains alone.
        Returns this process's own result (which need not be JSON-able).
        """
        if self.count == 1:
            return action()
        outcome: dict[str, Any]
        try:
            value, outcome = action(), {"ok": True}
        except MothError as err:
            value, outcome = None, {"error": f"process {self.index}: {err}"}
        self._exchange(key, outcome)
        return value

    def gather(self, key: str, value: Any) -> list[Any]:
        """Every process's JSON-able `value`, in process order (a barrier: all must call it)."""
        if self.count == 1:
            return [value]
        return [answer["value"] for answer in self._exchange(key, {"value": value})]

    def _exchange(self, key: str, outcome: dict[str, Any]) -> list[dict[str, Any]]:
        """Publish this process's outcome under `key`, then read every process's; raise the first error."""
        key = f"mothtui/{key}"
        self.client.key_value_set(f"{key}/{self.index}", json.dumps(outcome))
        answers = [self._wait_for(f"{key}/{p}") for p in range(self.count)]
        for answer in answers:
            if "error" in answer:
                raise MothError(answer["error"])
        return answers


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise MothError(f"${name} must be an integer, got {text!r}") from None


def settings(coordinator: str | None = None, num_processes: int | None = None,
             process_id: int | None = None) -> dict[str, Any]:
    """The arguments of `jax.distributed.initialize`: options first, then $MOTHTUI_*, else none.

    None everywhere means "let JAX detect the cluster" (SLURM, Open MPI, Kubernetes, cloud TPU...).
    """
    coordinator = coordinator or os.environ.get(ENV_COORDINATOR) or None
    num_processes = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise MothError("--coordinator, --num-processes and --process-id go together "
                        f"(or ${ENV_COORDINATOR}, ${ENV_NUM_PROCESSES}, ${ENV_PROCESS_ID}); "
                        "give all three, or none to let JAX read the cluster scheduler's variables")
    if coordinator is None or num_processes is None or process_id is None:  # none given (all or none, above)
        return {}
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise MothError(f"coordinator must be HOST:PORT, got {coordinator!r}")
    if num_processes < 1:
        raise MothError(f"the number of processes must be at least 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise MothError(f"process id must be in 0..{num_processes - 1}, got {process_id}")
    return {"coordinator_address": coordinator, "num_processes": num_processes, "process_id": process_id}


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> Cluster:
    """Start jax.distributed (before any other JAX use) and return this process's `Cluster`."""
    kwargs = settings(coordinator, num_processes, process_id)
    import jax
    from jax._src import distributed as jax_distributed  # the coordination client (key-value store)

    try:
        jax.distributed.initialize(**kwargs)
        # Start the backend now, in every process: its start-up exchanges the device topology with
        # all peers, so it must not first happen inside work that only process 0 does (a deadlock).
        jax.devices()
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        where = kwargs.get("coordinator_address", "the cluster scheduler's variables")
        raise MothError(f"cannot start jax.distributed ({where}): {first}") from None
    state = jax_distributed.global_state
    return Cluster(index=int(state.process_id), count=int(state.num_processes), client=state.client)


def from_args(args) -> Cluster:
    """The Cluster of a command: distributed with `--distributed`, single-process otherwise."""
    if not getattr(args, "distributed", False):
        for name in ("coordinator", "num_processes", "process_id"):
            if getattr(args, name, None) is not None:
                raise MothError(f"--{name.replace('_', '-')} needs --distributed")
        return Cluster()
    return initialize(args.coordinator, args.num_processes, args.process_id)


# ---- markers in the run store ----------------------------------------------------------------

def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (temporary file, then rename): a reader never sees half a marker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.tmp_sibling(path)
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def mark_slice(run_path: Path, level: int, net_slice, process: int, seconds: float) -> None:
    """Record that networks `net_slice` (a NetSlice) of `level` are fully written (after their arrays)."""
    _write_json(paths.slice_marker(run_path, level, net_slice.start, net_slice.stop),
                {"nets": [net_slice.start, net_slice.stop], "process": process, "seconds": seconds,
                 "written": time.time()})


def written_slices(run_path: Path, level: int) -> list[dict[str, Any]]:
    """The markers of one level (each `{"nets": [a, b], "process", "seconds", ...}`)."""
    out = []
    for path in paths.slice_markers(run_path, level):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a marker from a crashed writer: the slice counts as not written
    return out


def level_covered(run_path: Path, level: int, total: int) -> bool:
    """True when the markers of `level` cover networks [0, total)."""
    reached = 0
    for a, b in sorted(tuple(m["nets"]) for m in written_slices(run_path, level)):
        if a > reached:
            return False
        reached = max(reached, b)
    return reached >= total


def advance(run) -> int:
    """Process 0: move `levels_complete` up to the last level every slice has written; return it.

    Also records each newly complete level's `train/seconds` (the slowest slice's time).
    """
    done = run.levels_complete
    while done < run.levels and level_covered(run.path, done, run.nets):
        seconds = [m.get("seconds") for m in written_slices(run.path, done)]
        run.complete_level(done, max((s for s in seconds if s is not None), default=float("nan")))
        done += 1
    return done


def report(run_path: Path, process: int, attempt: str, status: str, message: str = "") -> None:
    """Write this process's status (running, done, failed, cancelled) for its peers to see."""
    _write_json(paths.process_marker(run_path, process),
                {"process": process, "attempt": attempt, "status": status, "message": message,
                 "time": time.time()})


def peer_failure(run_path: Path, attempt: str, me: int) -> str | None:
    """The message of a peer of this attempt that failed or was cancelled, else None."""
    for path in paths.process_markers(run_path):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if info.get("attempt") == attempt and info.get("process") != me \
                and info.get("status") in ("failed", "cancelled"):
            return f"process {info['process']} {info['status']}: {info.get('message', '')}".rstrip(": ")
    return None


def check_alignment(run, cluster: Cluster) -> None:
    """Refuse a process count whose slices would share a chunk of the store with another process."""
    chunk_nets = run.chunk_nets
    for p in range(cluster.count):
        s = Cluster(p, cluster.count).net_slice(run.nets)
        if s.start % chunk_nets or (s.stop % chunk_nets and s.stop != run.nets):
            raise StoreError(f"run {run.run_id!r} is stored in chunks of {chunk_nets} networks; "
                             f"{cluster.count} processes would split a chunk (use a process count "
                             f"whose slices of {run.nets} networks are multiples of {chunk_nets})")


# ---- the sync object the level loop uses -------------------------------------------------------

@dataclass
class LevelSync:
    """What the level loop needs to share one run store between processes (see `core.engine.loop`).

    `attempt` tells this start of the job from earlier ones (a resumed run has stale status files).
    """

    cluster: Cluster
    attempt: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def is_main(self) -> bool:
        return self.cluster.is_main

    @property
    def alone(self) -> bool:
        return self.cluster.count == 1

    def start(self, run) -> None:
        if not self.alone:
            report(run.path, self.cluster.index, self.attempt, "running")

    def slice_written(self, run, level: int, net_slice, seconds: float) -> None:
        """After this process wrote its slice of `level`: mark it; process 0 advances the run.

        Raises MothError if a peer has failed meanwhile (no point training on alone). A single
        process completes the level at once (no markers).
        """
        if self.alone:
            run.complete_level(level, seconds)
            return
        mark_slice(run.path, level, net_slice, self.cluster.index, seconds)
        if self.is_main:
            advance(run)
        failure = peer_failure(run.path, self.attempt, self.cluster.index)
        if failure:
            raise MothError(f"run {run.run_id}: {failure}")

    def wait_for_all(self, run, stop=None) -> None:
        """Block until every slice of every level is written (process 0 advancing the run meanwhile).

        Raises MothError if a peer of this attempt failed, Cancelled if `stop` is set.
        """
        if self.alone:
            return
        deadline = time.monotonic() + wait_s()
        while True:
            if self.is_main:
                complete = advance(run)
            else:
                complete = next((lv for lv in range(run.levels) if not level_covered(run.path, lv, run.nets)),
                                run.levels)
            if complete >= run.levels:
                return
            failure = peer_failure(run.path, self.attempt, self.cluster.index)
            if failure:
                raise MothError(f"run {run.run_id}: {failure}")
            if stop is not None and stop.is_set():
                raise Cancelled("cancelled while waiting for the other processes")
            if time.monotonic() > deadline:
                raise MothError(f"run {run.run_id}: level {complete} still incomplete after {wait_s():.0f} s")
            time.sleep(POLL_S)

    def finish(self, run, status: str, message: str = "") -> None:
        if not self.alone:
            report(run.path, self.cluster.index, self.attempt, status, message)
