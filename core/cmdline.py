"""The one builder of `mothtui` command lines. Standard library only.

A command line is held as its arguments after the program's name (`["resume", "r1", "--runs", "runs"]`)
and has two forms:

- `shell(args)`: the line a user types, `mothtui resume r1 --runs runs`, every argument quoted with
  `shlex.join` where the shell needs it, so a hint in a message or the line a screen shows can be
  pasted into a shell as it is;
- `argv(args)`: the process that runs it, `python -m core resume r1 --runs runs` with this
  interpreter, so the child has the caller's environment whether or not the `mothtui` script is on
  PATH.

Arguments that several places build live here too (`resume_args`: the queue, the app and the
"resume with ..." hints). The app's own command lines (`mothtui.cmdline`) are built on this module;
the SLURM script (`core.slurm`) is bash and names the program through `$MOTHTUI`.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable
from pathlib import Path

#: The shell name of the command line (the console script of pyproject.toml).
PROGRAM = "mothtui"


def shell(args: Iterable[str | Path]) -> str:
    """`mothtui <args>` as one shell line, quoted where the shell needs it."""
    return shlex.join([PROGRAM, *map(str, args)])


def argv(args: Iterable[str | Path]) -> list[str]:
    """The process that runs `mothtui <args>`: this interpreter's `python -m core <args>`."""
    return [sys.executable, "-m", "core", *map(str, args)]


def resume_args(run_id: str, runs_dir: Path | str) -> list[str]:
    """`mothtui resume RUN --runs DIR`'s arguments."""
    return ["resume", run_id, "--runs", str(runs_dir)]


def resume_hint(run_id: str, runs_dir: Path | str) -> str:
    """The line that resumes a run, for messages: `mothtui resume RUN --runs DIR`."""
    return shell(resume_args(run_id, runs_dir))
