"""`mothtui delete RUN`, `mothtui restore RUN`, `mothtui purge [--older-than 7d]` (core.trash)."""

from __future__ import annotations

from core.cli import resolve_runs
from core.trash import delete_run, parse_age, purge, restore_run


def run(args) -> int:
    runs_dir = resolve_runs(args)
    if args.action == "delete":
        where = delete_run(runs_dir, args.run_id)
        print(f"moved {args.run_id} to {where} (mothtui restore {args.run_id} brings it back)")
    elif args.action == "restore":
        print(restore_run(runs_dir, args.run_id))
    else:
        gone = purge(runs_dir, parse_age(args.older_than))
        print(f"purged {len(gone)} run{'s' if len(gone) != 1 else ''}"
              + (f": {', '.join(t.run_id for t in gone)}" if gone else ""))
    return 0
