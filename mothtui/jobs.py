"""Engine processes launched from the app: start, watch, cancel. Pure asyncio + os (no textual, no jax).

The engine runs as `python -m core train|resume ... --quiet` (and the analysis steps as
`python -m core analyze|evaluate ...`) in its own session with stdin closed
(so it neither steals keystrokes nor dies with the app or the SSH session) and its output in
`<runs>/.logs/<run_id>.log`. Runs started elsewhere, or before the app was reopened, are found
through their owner record (core.owner), so cancelling works the same for both. The new-run form's
`mothtui plan --json` is a short command of the same kind, run to its end (`run_captured`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core import paths
from core.errors import MothError
from core.runlist import read_engine_pid, run_path  # standard library only
from mothtui import cmdline


@dataclass
class Job:
    """An engine process this app started."""

    run_id: str
    kind: str  # "train" | "resume" | "analyze" | "evaluate" | "report"
    process: asyncio.subprocess.Process
    log: Path


def train_command(runs_dir: Path, run_id: str, preset: str, overrides: list[str]) -> list[str]:
    """The engine's command line for a new run (mothtui.cmdline builds every command line)."""
    return cmdline.train(runs_dir, preset, overrides, run_id).argv()


def resume_command(runs_dir: Path, run_id: str) -> list[str]:
    return cmdline.resume(runs_dir, run_id).argv()


def analyze_command(runs_dir: Path, run_id: str) -> list[str]:
    return cmdline.analyze(runs_dir, run_id).argv()


def evaluate_command(runs_dir: Path, run_id: str, scales: str, samples: int | None = None) -> list[str]:
    return cmdline.evaluate(runs_dir, run_id, scales, samples).argv()


def plan_command(runs_dir: Path, preset: str, overrides: list[str]) -> list[str]:
    """`mothtui plan --json` of a config the new-run form holds (the App's default plan command)."""
    return cmdline.plan(runs_dir, preset, overrides).argv()


async def run_captured(command: list[str], grace_s: float = 2.0) -> tuple[int, str, str]:
    """Run a short command to its end: (exit code, stdout, stderr). Its own session, stdin closed; if the
    caller is cancelled (a newer request, the screen closed), the process group gets SIGTERM, then
    SIGKILL after `grace_s`, and is reaped before the cancellation goes on."""
    process = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, cwd=os.getcwd(),
    )
    try:
        out, err = await process.communicate()
    except asyncio.CancelledError:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                await asyncio.wait_for(process.wait(), grace_s)
                break
            except asyncio.TimeoutError:
                continue
        raise
    assert process.returncode is not None  # communicate() waited for the exit
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


class JobSupervisor:
    """Owns the engine processes of one app (held by the App, so it outlives any screen)."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = Path(runs_dir)
        self.jobs: dict[str, Job] = {}

    def log_path(self, run_id: str) -> Path:
        return paths.log_file(self.runs_dir, run_id)

    async def start(self, run_id: str, command: list[str], kind: str) -> Job:
        """Start an engine process in its own session, output to the run's log file."""
        run_path(self.runs_dir, run_id)  # rejects ids that would escape the store
        if run_id in self.jobs and self.jobs[run_id].process.returncode is None:
            raise MothError(f"run {run_id!r} already has an engine running")
        log = self.log_path(run_id)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=os.getcwd(),
            )
        job = Job(run_id, kind, process, log)
        self.jobs[run_id] = job
        return job

    async def train(self, run_id: str, preset: str, overrides: list[str]) -> Job:
        return await self.start(run_id, train_command(self.runs_dir, run_id, preset, overrides), "train")

    async def launch(self, run_id: str, command: "cmdline.CommandLine", kind: str) -> Job:
        """Start exactly the command line a screen showed (the new-run form's `will run:`)."""
        return await self.start(run_id, command.argv(), kind)

    async def resume(self, run_id: str) -> Job:
        from core.runlist import live_owner

        owner = live_owner(run_path(self.runs_dir, run_id))
        if owner is not None:
            raise MothError(f"run {run_id!r} is still running ({owner.where()})")
        return await self.start(run_id, resume_command(self.runs_dir, run_id), "resume")

    async def _step(self, run_id: str, command: list[str], kind: str) -> Job:
        """An analysis step: refused while anything holds the run (the command would refuse too)."""
        from core.runlist import live_owner

        owner = live_owner(run_path(self.runs_dir, run_id))
        if owner is not None:
            raise MothError(f"run {run_id!r} is in use ({owner.where()}): {kind} it once that has finished")
        return await self.start(run_id, command, kind)

    async def analyze(self, run_id: str) -> Job:
        return await self._step(run_id, analyze_command(self.runs_dir, run_id), "analyze")

    async def evaluate(self, run_id: str, scales: str, samples: int | None = None) -> Job:
        return await self._step(run_id, evaluate_command(self.runs_dir, run_id, scales, samples), "evaluate")

    async def report(self, run_id: str, out: Path) -> Job:
        """`mothtui report` into `out`: it only reads the run, so it may run beside training or a step."""
        return await self.start(run_id, report_command(self.runs_dir, run_id, out), "report")

    def job(self, run_id: str) -> Job | None:
        """This app's job of a run while it runs, else None."""
        job = self.jobs.get(run_id)
        return job if job is not None and job.process.returncode is None else None

    def running(self) -> list[str]:
        """Ids of runs whose engine this app started and that have not exited."""
        return [rid for rid, job in self.jobs.items() if job.process.returncode is None]

    def pid_of(self, run_id: str) -> int | None:
        job = self.jobs.get(run_id)
        if job is not None and job.process.returncode is None:
            return job.process.pid
        return read_engine_pid(run_path(self.runs_dir, run_id))

    def cancel(self, run_id: str) -> bool:
        """SIGTERM the run's engine (its whole process group when it leads one). False if none runs.

        MothError when it runs on another host: a signal cannot reach it from here.
        """
        pid = self.pid_of(run_id)
        if pid is None:
            from core.runlist import live_owner

            owner = live_owner(run_path(self.runs_dir, run_id))
            if owner is not None and owner.record is not None and owner.elsewhere:  # elsewhere: has a record
                raise MothError(f"{run_id} runs on {owner.where()}: cancel it there "
                                f"(kill -TERM {owner.record.pid} on {owner.record.host})")
            return False
        try:
            if os.getpgid(pid) == pid:  # our launches lead their own session: signal the group
                os.killpg(pid, signal.SIGTERM)
            else:  # started from a shell: signal the engine alone, not the user's shell group
                os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True

    def log_tail(self, run_id: str, lines: int = 3) -> str:
        """The last lines of a job's log (why it failed, usually)."""
        try:
            text = self.log_path(run_id).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(line for line in text.strip().splitlines()[-lines:])


def report_command(runs_dir: Path, run_id: str, out: Path) -> list[str]:
    """`mothtui report RUN --out DIR`: the paper's figures and their index (matplotlib: the `report` extra)."""
    return cmdline.report(runs_dir, run_id, out).argv()
