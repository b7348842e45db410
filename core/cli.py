"""The headless command line: `mothtui <command> ...` (and `python -m core <command> ...`).

This module only parses arguments and dispatches. It lists the commands (`COMMANDS`: name, help,
module) and defines the options several commands share (`runs_option`, `config_options`,
`distributed_options`, `json_option`, ...); each command lives in `core.commands.<name>`, which adds
its own arguments (`add_arguments(parser)`, calling those helpers) and runs them (`run(args)`). A
command's module is imported only when that command is parsed, so `mothtui --help` answers without
importing JAX, numpy or zarr. A `MothError` becomes one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import DEFAULT_RUNS, default_runs_dir  # noqa: F401  (the CLI's default store)
from core.config import DEFAULT_PRESET, PRESETS
from core.errors import MothError


class _Parser(argparse.ArgumentParser):
    """argparse with the house style for errors: one line `mothtui: ...` on stderr, exit 2.

    A command's parser holds its `command` until its arguments are added (`add_command_arguments`)."""

    command: Command | None = None

    def error(self, message: str):
        self.exit(2, f"mothtui: {message} (see '{self.prog} --help')\n")

    def add_command_arguments(self) -> None:
        """Have the command's module add its arguments (once; nothing for the top level or a group)."""
        command, self.command = self.command, None
        if command is not None:
            module = importlib.import_module(f"core.commands.{command.module}")
            getattr(module, command.arguments)(self)


def version_text() -> str:
    """`mothtui --version`: this package's version and its main dependencies', from the package
    metadata alone (nothing is imported, so it answers in milliseconds and without a GPU)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    deps = ", ".join(f"{name} {of(name)}" for name in ("jax", "jaxlib", "textual", "zarr", "numpy"))
    return f"mothtui {of('mothtui')} (Python {platform.python_version()}; {deps})"


#: Shell completion of arguments (shtab): run ids are listed by `mothtui completion --list runs`
#: (the run store of $MOTHTUI_RUNS or the settings), presets are fixed.
RUN_ID_COMPLETION = {"bash": "_mothtui_run_ids", "zsh": "($(mothtui completion --list runs 2>/dev/null))",
                     "tcsh": "`mothtui completion --list runs`",
                     "fish": "(mothtui completion --list runs 2>/dev/null)",
                     "preamble": {"bash": "_mothtui_run_ids() {\n"
                                          "  compgen -W \"$(mothtui completion --list runs 2>/dev/null)\" -- \"$1\"\n}\n"}}
_PRESETS = " ".join(PRESETS)  # core.config's own list (pure Python, no JAX)
PRESET_COMPLETION = {"bash": "_mothtui_presets", "zsh": f"({_PRESETS})", "tcsh": f"({_PRESETS})",
                     "fish": f"(printf '%s\\n' {_PRESETS})",
                     "preamble": {"bash": f"_mothtui_presets() {{\n  compgen -W \"{_PRESETS}\" -- \"$1\"\n}}\n"}}


class _VersionAction(argparse.Action):
    """`--version`, with the text looked up only when asked for (every other command skips the metadata)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit(0)


def completes(action: argparse.Action, completion: dict) -> None:
    """Give an argument shtab's completion (shtab reads the `complete` attribute it documents on an Action)."""
    setattr(action, "complete", completion)


# ---- the options several commands share (each defined here once; the commands call these) ---------------

def run_id_argument(parser: argparse.ArgumentParser, **kwargs) -> None:
    """The positional `run_id`, completed with the store's run ids."""
    completes(parser.add_argument("run_id", **kwargs), RUN_ID_COMPLETION)


def runs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs", type=Path, default=None, metavar="DIR",
        help="run store directory (default: $MOTHTUI_RUNS or ./runs)",
    )


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress display (events still written)")


def split_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", default="val", help="train | val | test (default val)")


def selection_options(parser: argparse.ArgumentParser) -> None:
    """The selection rule's options, shared by `select` and `export`."""
    parser.add_argument("--threshold", type=float, default=None,
                        help="loss threshold (default: the run's `threshold`, 1e-3)")
    split_option(parser)
    parser.add_argument("--override", dest="overrides", action="append", default=[], metavar="NET=LEVEL",
                        help="choose LEVEL for network NET by hand, whatever its loss (repeatable)")


def comparison_options(parser: argparse.ArgumentParser) -> None:
    """One threshold for every run and the split, shared by `compare` and `report`."""
    parser.add_argument("--threshold", type=float, default=None,
                        help="one loss threshold for every run (default: each run's own)")
    split_option(parser)


def config_options(parser: argparse.ArgumentParser) -> None:
    """The config of a run: `--preset`, `--config FILE.toml`, `--set KEY=VALUE` (train, sweep, plan)."""
    completes(parser.add_argument("--preset", default=None,
                                  help=f"{' | '.join(PRESETS)} (default: {DEFAULT_PRESET})"), PRESET_COMPLETION)
    parser.add_argument("--config", type=Path, default=None, metavar="FILE.toml",
                        help="TOML file of config keys (applied over the preset)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key (repeatable), e.g. --set nets=16")


def parallel_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parallel", type=int, default=None, metavar="K",
                        help="the queue runs K runs at once (default: one per GPU, one without)")


def distributed_options(parser: argparse.ArgumentParser, help: str) -> None:
    """`--distributed` (its `help` says what each process does) and where jax.distributed finds its
    peers; none of them: $MOTHTUI_* or the cluster scheduler's variables."""
    parser.add_argument("--distributed", action="store_true", help=help)
    parser.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                        help="address of process 0's coordinator (with --distributed)")
    parser.add_argument("--num-processes", type=int, default=None, metavar="P",
                        help="number of processes of the job (with --distributed)")
    parser.add_argument("--process-id", type=int, default=None, metavar="I",
                        help="this process's index, 0..P-1 (with --distributed)")


# ---- the commands --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    """One `mothtui` command: its name and the one line `mothtui --help` lists, and the module
    `core.commands.<module>` that owns its arguments (`add_arguments(parser)`, or the function named
    by `arguments`) and runs it (`run(args)`). `defaults` are set on the parsed arguments (`delete`,
    `restore` and `purge` share `trash`, told apart by `action`). A group (`bench`) has no module,
    only `commands`, one of which must follow it."""

    name: str
    help: str
    module: str = ""
    arguments: str = "add_arguments"
    defaults: dict[str, str] = field(default_factory=dict)
    commands: tuple[Command, ...] = ()


COMMANDS: tuple[Command, ...] = (
    Command("simulate", "simulate random wing strokes into a dataset store", "simulate"),
    Command("train", "create a run, train and prune headless", "train"),
    Command("sweep", "one run per point of a grid, as a named sweep, into the queue", "sweep"),
    Command("queue", "the run queue: list, pause, resume, cancel, retry, move", "queue"),
    Command("plan", "memory, FLOPs and predicted time of a config, without training", "plan"),
    Command("resume", "continue an interrupted run from its last completed level", "resume"),
    Command("runs", "list the runs of the run store", "runs"),
    Command("delete", "move a run to the trash (<runs>/.trash); restore brings it back", "trash",
            "add_delete_arguments", {"action": "delete"}),
    Command("restore", "bring a deleted run back from the trash", "trash",
            "add_restore_arguments", {"action": "restore"}),
    Command("purge", "remove trashed runs for good", "trash", "add_purge_arguments", {"action": "purge"}),
    Command("select", "per network, the most-pruned level with loss <= threshold", "select"),
    Command("export", "write the selected sparse networks as numpy files", "export"),
    Command("analyze", "per-level analysis of a run, stored in the run", "analyze"),
    Command("compare", "runs side by side: config diff, losses, chosen sparsities", "compare"),
    Command("report", "the paper's figures (SVG, PNG) and an index of their numbers", "report"),
    Command("evaluate", "every level of every network at other body scales, stored in the run", "evaluate"),
    Command("bench", "benchmarks", commands=(
        Command("sim", "trajectories per second of the simulator", "bench_sim"),
        Command("engine", "steady-state training and evaluation throughput", "bench_engine"),
    )),
    Command("tag", "add (+name or name) or remove (-name) tags of a run; none: print them", "tag"),
    Command("note", "set the note of a run ('' clears it); no text: print it", "note"),
    Command("settings", "where the settings file is, and what it sets", "settings"),
    Command("completion", "print the shell completion script (bash, zsh, fish, tcsh)", "completion"),
)


class _Commands(argparse._SubParsersAction):
    """The commands' subparsers, each given its arguments when it is chosen: parsing one command
    imports its module only (the others stay unimported, and `mothtui --help` imports none)."""

    def __call__(self, parser, namespace, values, option_string=None):
        chosen = self.choices.get(values[0]) if values else None
        if isinstance(chosen, _Parser):
            chosen.add_command_arguments()
        super().__call__(parser, namespace, values, option_string)


def _add_commands(parser: _Parser, commands: tuple[Command, ...], **kwargs) -> list[_Parser]:
    """A subparser for each command (its arguments come later: `add_command_arguments`); all the parsers made."""
    sub = parser.add_subparsers(action=_Commands, **kwargs)
    made: list[_Parser] = []
    for command in commands:
        p = sub.add_parser(command.name, help=command.help)
        made.append(p)
        if command.commands:
            made += _add_commands(p, command.commands, dest=command.name, metavar="WHAT", required=True)
        else:
            p.command = command
            p.set_defaults(handler=command.module, **command.defaults)
    return made


def build_parser(*, complete: bool = False) -> argparse.ArgumentParser:
    """The whole command line: each subparser names its module of `core.commands` in `handler`.

    A command's arguments are added by its own module when the command is parsed (so `mothtui train`
    imports `core.commands.train` and no other command); `complete` adds every command's now (the
    shell completion script walks them all)."""
    parser = _Parser(
        prog="mothtui",
        description="Sparse, bio-inspired controllers for hawkmoth flight. "
                    "Without a command, opens the terminal UI on the run store.",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="print the version of mothtui and its main dependencies, and exit")
    runs_option(parser)
    made = _add_commands(parser, COMMANDS, dest="command", metavar="COMMAND")
    if complete:
        for p in made:
            p.add_command_arguments()
    return parser


def resolve_runs(args: argparse.Namespace) -> Path:
    """The run store named on the command line, else the default."""
    return getattr(args, "runs", None) or default_runs_dir()


#: The commands that compile with JAX: they keep compiled programs in the persistent compilation cache.
JAX_HANDLERS = ("simulate", "train", "resume", "plan", "analyze", "evaluate", "bench_sim", "bench_engine")


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; user errors become one line on stderr."""
    try:
        if args.handler in JAX_HANDLERS:
            from core.settings import enable_compilation_cache  # before JAX is imported

            enable_compilation_cache()
        module = importlib.import_module(f"core.commands.{args.handler}")
        return int(module.run(args) or 0)
    except MothError as err:
        print(f"mothtui: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("mothtui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mothtui runs | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return run_command(args)


if __name__ == "__main__":
    raise SystemExit(main())
