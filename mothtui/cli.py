"""The `mothtui` console script: the UI without a command, the headless core with one.

Imports neither textual nor jax until it knows which is needed, so `--help` is instant.
"""

from __future__ import annotations

import sys

from core.cli import build_parser, resolve_runs, run_command


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is not None:
        return run_command(args)
    from core.errors import MothError
    from core.runlist import check_runs_dir
    from core.settings import load_settings

    settings = load_settings()
    for problem in settings.problems:  # one line each; the app starts with those keys' defaults
        print(f"mothtui: {problem}", file=sys.stderr)
    try:
        runs_dir = check_runs_dir(resolve_runs(args))
    except MothError as err:
        print(f"mothtui: {err}", file=sys.stderr)
        return err.exit_code
    from mothtui.app import run_app  # textual only now

    return run_app(runs_dir, settings)


if __name__ == "__main__":
    raise SystemExit(main())
