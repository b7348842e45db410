"""`mothtui queue [list|pause|resume|cancel|retry|move|supervise] ... [--json]`: the run queue (core.queue).

`list` (the default) prints the entries in order with their state, and whether the supervisor is
alive; `pause` stops the running engines (resumable) and starts nothing more; `resume` continues;
`cancel RUN|SWEEP ...` takes entries out; `retry RUN|SWEEP ...` puts failed or cancelled ones back;
`move RUN N` puts a waiting run at place N. `supervise` is the detached supervisor itself.
Also `train --queue`, which queues one run instead of training it here (`enqueue_train`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core import queue as q
from core.cli import json_option, parallel_option, resolve_runs, runs_option
from core.config import DEFAULT_PRESET, resolve
from core.errors import MothError
from core.runlist import new_run_id, run_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", default="list",
                        choices=("list", "pause", "resume", "cancel", "retry", "move", "supervise"),
                        help="list (default) | pause | resume | cancel RUN|SWEEP... | retry RUN|SWEEP... | move RUN N")
    parser.add_argument("names", nargs="*", metavar="RUN|SWEEP", help="what cancel, retry and move act on")
    runs_option(parser)
    parallel_option(parser)
    json_option(parser)


def run(args) -> int:
    runs_dir = resolve_runs(args)
    action = args.action or "list"
    if action == "supervise":
        return q.supervise(runs_dir)
    if action == "pause":
        state = q.pause(runs_dir)
        running = len(state.with_state("running"))
        print(f"queue paused" + (f": stopping {running} running run(s); `mothtui queue resume` continues them"
                                 if running else ""))
        return 0
    if action == "resume":
        state = q.resume(runs_dir, args.parallel)
        waiting = len(state.with_state("queued"))
        print(f"queue resumed: {waiting} run(s) waiting" if waiting else "queue resumed: nothing waiting")
        return 0
    if action in ("cancel", "retry"):
        if not args.names:
            raise MothError(f"queue {action}: name runs or sweeps")
        done = (q.cancel if action == "cancel" else q.retry)(runs_dir, args.names)
        verb = "cancelled" if action == "cancel" else "queued again"
        print(f"{verb}: {' '.join(e.run for e in done)}" if done else f"nothing to {action}")
        return 0
    if action == "move":
        if len(args.names) != 2 or not args.names[1].isdigit():
            raise MothError("queue move RUN POSITION (a whole number, 1 = next)")
        q.move(runs_dir, args.names[0], int(args.names[1]))
        print(f"{args.names[0]} is now number {args.names[1]} in the queue")
        return 0
    return _list(runs_dir, args.json)


def _list(runs_dir: Path, as_json: bool) -> int:
    state = q.read_queue(runs_dir)
    owner = q.supervisor(runs_dir)
    sup = None if not owner.alive or owner.record is None else {
        "pid": owner.record.pid, "host": owner.record.host, "since": owner.record.since}
    if as_json:
        print(json.dumps({"runs_dir": str(runs_dir), **state.to_dict(), "supervisor": sup}))
        return 0
    if not state.entries:
        print(f"the queue of {runs_dir} is empty")
        return 0
    counts = {s: len(state.with_state(s)) for s in q.STATES}
    head = " · ".join(f"{n} {s}" for s, n in counts.items() if n)
    print(f"queue of {runs_dir}{' (PAUSED)' if state.paused else ''} · {head} · "
          + (f"supervisor pid {sup['pid']}" if sup else "no supervisor running"))
    print(f"  {'#':>3} {'run':<28} {'sweep':<16} {'state':<10} {'device':<6} note")
    place = 0
    for entry in state.entries:
        waiting = entry.state in ("queued", "paused")
        place += waiting
        number = str(place) if waiting else ""
        print(f"  {number:>3} {entry.run:<28} {entry.sweep or '–':<16} {entry.state:<10} "
              f"{entry.device or '–':<6} {entry.reason}".rstrip())
    if state.needs_supervisor and not sup:
        print("the supervisor is not running: `mothtui queue resume` starts it")
    return 0


def enqueue_train(args) -> int:
    """`mothtui train --queue`: check the config, then queue the run instead of training it here."""
    runs_dir = resolve_runs(args)
    preset = args.preset or DEFAULT_PRESET
    resolve(preset, args.config, args.overrides)  # a bad config is refused now, not when its turn comes
    run_id = args.run_id
    if not run_id:  # a fresh default id that no waiting entry has either
        taken = {e.run for e in q.read_queue(runs_dir).entries}
        base = run_id = new_run_id(runs_dir, preset)
        for n in range(2, 1000):
            if run_id not in taken:
                break
            run_id = f"{base}-{n}"
    run_path(runs_dir, run_id)
    train_args = ["--preset", preset]
    if args.config:
        train_args += ["--config", str(Path(args.config).resolve())]
    for item in args.overrides:
        train_args += ["--set", item]
    state = q.enqueue(runs_dir, [q.Entry(run_id, train_args, sweep=getattr(args, "sweep", None))],
                      getattr(args, "parallel", None))
    place = len(state.with_state("queued", "paused"))
    print(f"queued as number {place}" + (" (the queue is paused)" if state.paused else ""))
    print(run_id)
    return 0
