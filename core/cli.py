"""The headless command line: `mothtui <command> ...` (and `python -m core <command> ...`).

This module only parses arguments and dispatches: each command lives in
`core.commands.<name>` and is imported when it runs, so `mothtui --help` answers
without importing JAX. A `MothError` becomes one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from core.settings import DEFAULT_RUNS, default_runs_dir  # noqa: F401  (the CLI's default store)
from core.config import DEFAULT_PRESET, PRESETS
from core.errors import MothError



class _Parser(argparse.ArgumentParser):
    """argparse with the house style for errors: one line `mothtui: ...` on stderr, exit 2."""

    def error(self, message: str):
        self.exit(2, f"mothtui: {message} (see '{self.prog} --help')\n")


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


def _completes(action: argparse.Action, completion: dict) -> None:
    """Give an argument shtab's completion (shtab reads the `complete` attribute it documents on an Action)."""
    setattr(action, "complete", completion)


class _VersionAction(argparse.Action):
    """`--version`, with the text looked up only when asked for (every other command skips the metadata)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit(0)


def _run_id_argument(parser: argparse.ArgumentParser, **kwargs) -> None:
    _completes(parser.add_argument("run_id", **kwargs), RUN_ID_COMPLETION)


def _runs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs", type=Path, default=None, metavar="DIR",
        help="run store directory (default: $MOTHTUI_RUNS or ./runs)",
    )


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def _selection_options(parser: argparse.ArgumentParser) -> None:
    """The selection rule's options, shared by `select` and `export`."""
    parser.add_argument("--threshold", type=float, default=None,
                        help="loss threshold (default: the run's `threshold`, 1e-3)")
    parser.add_argument("--split", default="val", help="train | val | test (default val)")
    parser.add_argument("--override", dest="overrides", action="append", default=[], metavar="NET=LEVEL",
                        help="choose LEVEL for network NET by hand, whatever its loss (repeatable)")


def _config_options(parser: argparse.ArgumentParser) -> None:
    _completes(parser.add_argument("--preset", default=None,
                                   help=f"{' | '.join(PRESETS)} (default: {DEFAULT_PRESET})"), PRESET_COMPLETION)
    parser.add_argument("--config", type=Path, default=None, metavar="FILE.toml",
                        help="TOML file of config keys (applied over the preset)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key (repeatable), e.g. --set nets=16")


def _parallel_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parallel", type=int, default=None, metavar="K",
                        help="the queue runs K runs at once (default: one per GPU, one without)")


def _distributed_options(parser: argparse.ArgumentParser) -> None:
    """Where jax.distributed finds its peers; none of them: $MOTHTUI_* or the cluster scheduler's variables."""
    parser.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                        help="address of process 0's coordinator (with --distributed)")
    parser.add_argument("--num-processes", type=int, default=None, metavar="P",
                        help="number of processes of the job (with --distributed)")
    parser.add_argument("--process-id", type=int, default=None, metavar="I",
                        help="this process's index, 0..P-1 (with --distributed)")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line. Each subparser names its handler module in `handler`."""
    parser = _Parser(
        prog="mothtui",
        description="Sparse, bio-inspired controllers for hawkmoth flight. "
                    "Without a command, opens the terminal UI on the run store.",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="print the version of mothtui and its main dependencies, and exit")
    _runs_option(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("simulate", help="simulate random wing strokes into a dataset store")
    p.add_argument("--samples", type=int, required=True, help="number of wing strokes")
    p.add_argument("--seed", type=int, default=0, help="random seed of the sampling (default 0)")
    p.add_argument("--scale", type=float, default=1.0, help="body scale s (default 1.0)")
    p.add_argument("--out", type=Path, required=True, help="path of the new dataset store")
    p.add_argument("--force", action="store_true", help="replace an existing store at --out")
    p.add_argument("--chunk", type=int, default=None, help="samples per written chunk")
    p.add_argument("--float64", action="store_true", help="integrate in float64 (slower)")
    p.add_argument("--distributed", action="store_true",
                   help="initialise jax.distributed; each process simulates its slice")
    _distributed_options(p)
    p.set_defaults(handler="simulate")

    p = sub.add_parser("train", help="create a run, train and prune headless")
    p.add_argument("--from", dest="branch_from", default=None, metavar="RUN:LEVEL",
                   help="branch: start from a stored level of another run (its weights and masks as level 0), "
                        "with the parent's config under --preset/--config/--set")
    _config_options(p)
    _runs_option(p)
    p.add_argument("--id", dest="run_id", default=None, help="run id (default: date, time and preset)")
    p.add_argument("--quiet", action="store_true", help="no progress display (events still written)")
    p.add_argument("--distributed", action="store_true",
                   help="initialise jax.distributed; each process trains its slice of the networks")
    _distributed_options(p)
    p.add_argument("--sweep", default=None, metavar="NAME", help="record the run as a member of this sweep")
    p.add_argument("--queue", action="store_true",
                   help="put the run in the run store's queue instead of training it here (see `mothtui queue`)")
    _parallel_option(p)
    p.set_defaults(handler="train")

    p = sub.add_parser("sweep", help="one run per point of a grid, as a named sweep, into the queue")
    _config_options(p)
    _runs_option(p)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a swept key and its values (repeatable: the grids are crossed); "
                        "commas inside [...] belong to a value")
    p.add_argument("--id", dest="sweep_id", default=None, metavar="NAME",
                   help="sweep name; its runs are NAME-01, NAME-02, ... (default: date, time and preset)")
    _parallel_option(p)
    p.add_argument("--slurm", type=Path, default=None, metavar="FILE",
                   help="write a SLURM job-array script (one task per point) instead of queueing here")
    p.add_argument("--dry-run", action="store_true", help="check and list the points; write nothing")
    _json_option(p)
    p.set_defaults(handler="sweep")

    p = sub.add_parser("queue", help="the run queue: list, pause, resume, cancel, retry, move")
    p.add_argument("action", nargs="?", default="list",
                   choices=("list", "pause", "resume", "cancel", "retry", "move", "supervise"),
                   help="list (default) | pause | resume | cancel RUN|SWEEP... | retry RUN|SWEEP... | move RUN N")
    p.add_argument("names", nargs="*", metavar="RUN|SWEEP", help="what cancel, retry and move act on")
    _runs_option(p)
    _parallel_option(p)
    _json_option(p)
    p.set_defaults(handler="queue")

    p = sub.add_parser("plan", help="memory, FLOPs and predicted time of a config, without training")
    _config_options(p)
    _runs_option(p)
    p.add_argument("--calibration", type=float, default=None, metavar="S",
                   help="seconds of timed calls on random arrays, at most 10 (default 6: core.plan)")
    p.add_argument("--gpu", choices=("h100", "h200"), default=None,
                   help="also compile the run's programs for this GPU, without one (needs the CUDA plugin: "
                        "pip install -e '.[gpu-plan]'), and predict from XLA's analyses of them")
    p.add_argument("--target-config", default=None, metavar="FILE",
                   help="with --gpu: an XLA GPU spec (GpuTargetConfigProto text) to compile for instead of "
                        "the built-in one")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="plan a sweep (as `mothtui sweep`): each distinct config and the total")
    _parallel_option(p)
    _json_option(p)
    p.set_defaults(handler="plan")

    p = sub.add_parser("resume", help="continue an interrupted run from its last completed level")
    _run_id_argument(p)
    _runs_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress display (events still written)")
    p.add_argument("--distributed", action="store_true", help="resume a distributed run")
    _distributed_options(p)
    p.set_defaults(handler="resume")

    p = sub.add_parser("runs", help="list the runs of the run store")
    _runs_option(p)
    _json_option(p)
    p.set_defaults(handler="runs")

    p = sub.add_parser("delete", help="move a run to the trash (<runs>/.trash); restore brings it back")
    p.add_argument("run_id")
    _runs_option(p)
    p.set_defaults(handler="trash", action="delete")

    p = sub.add_parser("restore", help="bring a deleted run back from the trash")
    p.add_argument("run_id")
    _runs_option(p)
    p.set_defaults(handler="trash", action="restore")

    p = sub.add_parser("purge", help="remove trashed runs for good")
    _runs_option(p)
    p.add_argument("--older-than", default=None, metavar="AGE",
                   help="only runs deleted longer ago than AGE, with a unit: 30m, 12h, 7d, 2w (default: all)")
    p.add_argument("--yes", "-y", action="store_true",
                   help="do not ask (needed when stdin is not a terminal: scripts, cron)")
    p.set_defaults(handler="trash", action="purge")

    p = sub.add_parser("select", help="per network, the most-pruned level with loss <= threshold")
    _run_id_argument(p)
    _runs_option(p)
    _selection_options(p)
    _json_option(p)
    p.set_defaults(handler="select")

    p = sub.add_parser("export", help="write the selected sparse networks as numpy files")
    _run_id_argument(p)
    _runs_option(p)
    p.add_argument("--out", type=Path, required=True, help="output directory (new or empty)")
    _selection_options(p)
    p.add_argument("--nets", default=None, help="comma-separated network indices (default: all selected)")
    p.add_argument("--level", type=int, default=None, help="export this level for every chosen network")
    p.add_argument("--format", dest="formats", default="npz", metavar="npz,safetensors,onnx",
                   help="file formats, comma-separated (default npz; onnx needs the 'onnx' extra)")
    p.set_defaults(handler="export")

    p = sub.add_parser("analyze", help="per-level analysis of a run, stored in the run")
    _run_id_argument(p)
    _runs_option(p)
    p.add_argument("--noise", type=float, default=None, help="input noise std (scaled units)")
    p.add_argument("--force", action="store_true", help="recompute even if stored")
    p.add_argument("--flight-samples", type=int, default=None, metavar="M",
                   help="held-out samples flown closed-loop per network and level (default 256)")
    p.add_argument("--eval-samples", type=int, default=None, metavar="N",
                   help="held-out rows for per-output error and noise (default 20000; 0: all)")
    p.add_argument("--structure-only", action="store_true",
                   help="only what survives pruning (no dataset, no simulator)")
    p.add_argument("--motif-samples", type=int, default=None, metavar="N",
                   help="random networks per network and level for the motif z-scores (default 1000; 0: counts only)")
    p.add_argument("--threshold", type=float, default=None,
                   help="report flight at the levels chosen at this val loss (default: the run's)")
    _json_option(p)
    p.set_defaults(handler="analyze")

    p = sub.add_parser("compare", help="runs side by side: config diff, losses, chosen sparsities")
    p.add_argument("run_ids", nargs="+", metavar="RUN|SWEEP", help="runs, or sweeps (all their runs)")
    _runs_option(p)
    p.add_argument("--threshold", type=float, default=None,
                   help="one loss threshold for every run (default: each run's own)")
    p.add_argument("--split", default="val", help="train | val | test (default val)")
    _json_option(p)
    p.set_defaults(handler="compare")

    p = sub.add_parser("report", help="the paper's figures (SVG, PNG) and an index of their numbers")
    _completes(p.add_argument("targets", nargs="+", metavar="RUN", help="run ids (drawn together, in this order)"),
               RUN_ID_COMPLETION)
    _runs_option(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output directory (new, empty, or an earlier report's, which is replaced)")
    p.add_argument("--threshold", type=float, default=None,
                   help="one loss threshold for every run (default: each run's own)")
    p.add_argument("--split", default="val", help="train | val | test (default val)")
    p.set_defaults(handler="report")

    p = sub.add_parser("evaluate", help="every level of every network at other body scales, stored in the run")
    p.add_argument("run_id")
    _runs_option(p)
    p.add_argument("--scale", required=True, metavar="S[,S...]", help="body scales, e.g. 0.5,2")
    p.add_argument("--samples", type=int, default=20_000, metavar="N",
                   help="held-out strokes simulated per scale (default 20000; cached)")
    _json_option(p)
    p.set_defaults(handler="evaluate")

    p = sub.add_parser("bench", help="benchmarks")
    bench = p.add_subparsers(dest="bench", metavar="WHAT", required=True)
    b = bench.add_parser("sim", help="trajectories per second of the simulator")
    b.add_argument("--samples", type=int, default=200_000)
    _json_option(b)
    b.set_defaults(handler="bench_sim")
    b = bench.add_parser("engine", help="steady-state training and evaluation throughput")
    b.add_argument("--nets", type=int, default=8)
    b.add_argument("--batch", type=int, default=128)
    b.add_argument("--steps", type=int, default=200)
    b.add_argument("--hidden", default="400,400,400,16")
    b.add_argument("--precision", default="float32", help="float32 | tf32 | bf16")
    b.add_argument("--eval-batch", type=int, default=65_536, metavar="ROWS",
                   help="the config's eval_batch for the evaluation (default 65536; blocks are capped by the device)")
    b.add_argument("--repeats", type=int, default=5, help="timed repeats of each, the best kept (default 5)")
    _json_option(b)
    b.set_defaults(handler="bench_engine")

    p = sub.add_parser("tag", help="add (+name or name) or remove (-name) tags of a run; none: print them")
    _runs_option(p)
    _run_id_argument(p)
    p.add_argument("changes", nargs=argparse.REMAINDER, metavar="+TAG|-TAG",
                   help="tags to add (+name) or remove (-name); --runs DIR may follow")
    p.set_defaults(handler="tag")

    p = sub.add_parser("note", help="set the note of a run ('' clears it); no text: print it")
    _run_id_argument(p)
    p.add_argument("text", nargs="*", help="the note (words are joined with spaces)")
    _runs_option(p)
    p.set_defaults(handler="note")

    p = sub.add_parser("settings", help="where the settings file is, and what it sets")
    p.add_argument("what", choices=("path", "show"), help="path: print its path; show: the settings in effect")
    _json_option(p)
    p.set_defaults(handler="settings")

    p = sub.add_parser("completion", help="print the shell completion script (bash, zsh, fish, tcsh)")
    p.add_argument("shell", nargs="?", choices=("bash", "zsh", "fish", "tcsh"), help="the shell")
    p.add_argument("--list", choices=("runs",), default=None, help=argparse.SUPPRESS)  # used by the scripts
    p.set_defaults(handler="completion")
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
