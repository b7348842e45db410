"""`mothtui export RUN_ID --out DIR [--threshold T] [--split val] [--nets 0,3] [--level L] [--override NET=LEVEL]
[--format npz,safetensors,onnx]`.

Writes the chosen networks (see core/export/ and docs/export.md) and prints a one-line summary
per network and the export directory on the last line of stdout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli import resolve_runs, run_id_argument, runs_option, selection_options
from core.errors import MothError
from core.export import export_run, parse_formats
from core.runstore import open_run
from core.schema import check_split
from core.select import check_threshold, parse_overrides


def parse_nets(text: str | None) -> list[int] | None:
    """`0,3,7` (ranges like `2-5` too) -> sorted list of indices; None means every network."""
    if text is None:
        return None
    nets: set[int] = set()
    try:
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                nets.update(range(int(lo), int(hi) + 1))
            else:
                nets.add(int(part))
    except ValueError:
        raise MothError(f"bad --nets {text!r}: expected indices like 0,3,7 or 2-5") from None
    if not nets:
        raise MothError(f"bad --nets {text!r}: no network named")
    return sorted(nets)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_id_argument(parser)
    runs_option(parser)
    parser.add_argument("--out", type=Path, required=True, help="output directory (new or empty)")
    selection_options(parser)
    parser.add_argument("--nets", default=None, help="comma-separated network indices (default: all selected)")
    parser.add_argument("--level", type=int, default=None, help="export this level for every chosen network")
    parser.add_argument("--format", dest="formats", default="npz", metavar="npz,safetensors,onnx",
                        help="file formats, comma-separated (default npz; onnx needs the 'onnx' extra)")


def run(args) -> int:
    threshold = None if args.threshold is None else check_threshold(args.threshold)
    split = check_split(args.split)
    nets = parse_nets(args.nets)
    overrides = parse_overrides(args.overrides)
    formats = parse_formats(getattr(args, "formats", None))   # a bad format or a missing extra: before any work
    run_store = open_run(resolve_runs(args), args.run_id)
    manifest = export_run(run_store, args.out, threshold=threshold, split=split, nets=nets, level=args.level,
                           overrides=overrides, formats=formats)
    for e in manifest["networks"]:
        mark = "*" if e["manual"] else " "
        ghosts = "/".join(str(g) for g in e["ghosts_removed"])
        print(f"net {e['network']:>3}  level {e['level']:>2}{mark} sparsity {e['sparsity']:.3f}  "
              f"{split} loss {e['losses'][split] if e['losses'][split] is not None else float('nan'):.3g}  "
              f"ghost units removed {ghosts}  -> {', '.join(e['files'].values())}")
    print(f"exported {len(manifest['networks'])} networks of run {manifest['run']} "
          f"(threshold {manifest['threshold']:g}, {split}) to")
    print(args.out)
    return 0
