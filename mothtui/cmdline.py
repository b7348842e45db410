"""The engine command lines the app runs and shows, built by core's one builder (`core.cmdline`).
Standard library only.

Every process the app starts (train, resume, analyze, evaluate, report, plan) is `python -m core <args>`,
the same arguments as `mothtui <args>` in a shell. `CommandLine` holds those arguments once:
`argv()` is what the app executes, `shell()` is what a screen shows (the new-run form's
`will run:` line), shell-quoted with `shlex.join` so it can be pasted into a shell as it is.
The only difference between the two is `app_flags`: flags the app adds because the output goes
to a log file, not a terminal (`--quiet`: no progress redraws in the log).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core import cmdline


@dataclass(frozen=True)
class CommandLine:
    """`mothtui <args>`: what the user would type; `argv()` runs it as `python -m core <args>`."""

    args: tuple[str, ...]
    app_flags: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        """The process the app starts (this interpreter, so the app's environment is the engine's)."""
        return cmdline.argv([*self.args, *self.app_flags])

    def shell(self) -> str:
        """The same command as one shell line, every argument quoted where the shell needs it."""
        return cmdline.shell(self.args)


def _sets(overrides) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def train(runs_dir: Path | str, preset: str, overrides, run_id: str | None = None) -> CommandLine:
    """A new run: `mothtui train --preset P --set K=V ... --runs DIR [--id ID]`."""
    args = ["train", "--preset", preset, *_sets(overrides), "--runs", str(runs_dir)]
    if run_id:
        args += ["--id", run_id]
    return CommandLine(tuple(args), ("--quiet",))


def resume(runs_dir: Path | str, run_id: str) -> CommandLine:
    return CommandLine(tuple(cmdline.resume_args(run_id, runs_dir)), ("--quiet",))


def analyze(runs_dir: Path | str, run_id: str) -> CommandLine:
    """`mothtui analyze`: the per-level analysis, stored in the run (its progress lines go to the log)."""
    return CommandLine(("analyze", run_id, "--runs", str(runs_dir)))


def evaluate(runs_dir: Path | str, run_id: str, scales: str, samples: int | None = None) -> CommandLine:
    """`mothtui evaluate`: every level at other body scales, stored in the run."""
    args = ["evaluate", run_id, "--runs", str(runs_dir), "--scale", scales]
    return CommandLine(tuple(args + (["--samples", str(samples)] if samples else [])))


def plan(runs_dir: Path | str, preset: str, overrides) -> CommandLine:
    """`mothtui plan --json` of a config the new-run form holds (a short calibration: it runs as you type)."""
    return CommandLine(("plan", "--preset", preset, *_sets(overrides), "--runs", str(runs_dir),
                        "--calibration", "2", "--json"))


def report(runs_dir: Path | str, run_id: str, out: Path | str) -> CommandLine:
    """`mothtui report RUN --out DIR`: the paper's figures and their index (the `report` extra)."""
    return CommandLine(("report", run_id, "--runs", str(runs_dir), "--out", str(out)))
