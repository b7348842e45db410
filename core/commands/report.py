"""`mothtui report RUN [RUN ...] --out DIR [--threshold T] [--split val]`: the paper's figures.

Read-only on the runs (claims nothing). Writes into DIR (created if missing; refused when it holds
anything but an earlier report, which is replaced): every figure of `core.report.FIGURES` as SVG
and PNG, `index.md` (figures, captions, the numbers behind each) and `report.json` (the numbers
unrounded). Prints each file with its size and the index's path on the last line of stdout.
matplotlib is the optional `report` extra: without it, one line says how to install it (exit 2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core import cmdline
from core.cli import RUN_ID_COMPLETION, comparison_options, completes, resolve_runs, runs_option
from core.errors import MothError
from core.paths import figure_files
from core.schema import check_split
from core.select import check_threshold

INSTALL_HINT = ("the report needs matplotlib, the optional 'report' extra: "
                "pip install 'mothtui[report]' (in a checkout: pip install -e '.[report]')")


def drawing_module():
    """`core.report.figures` (which imports matplotlib), or MothError (one line, exit 2) naming the
    extra when matplotlib cannot be imported."""
    try:
        from core.report import figures
    except ImportError as err:
        if (err.name or "").partition(".")[0] != "matplotlib":
            raise
        raise MothError(INSTALL_HINT) from None
    return figures


def prepare_out(out: Path) -> None:
    """Create `out`, or accept it empty or holding an earlier report (whose files are replaced)."""
    from core.report import FIGURES
    from core.report.index import NUMBERS

    if out.exists() and not out.is_dir():
        raise MothError(f"--out {out} is a file: name a directory")
    if out.is_dir() and any(out.iterdir()):
        if not (out / NUMBERS).is_file():
            raise MothError(f"--out {out} is not empty and holds no report: name a new or empty directory")
        for stem, _ in FIGURES:  # a figure not drawn this time must not stay from the last
            for path in figure_files(out, stem):
                path.unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MothError(f"cannot create --out {out}: {err.strerror}") from None


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} B"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    completes(parser.add_argument("targets", nargs="+", metavar="RUN", help="run ids (drawn together, in this order)"),
              RUN_ID_COMPLETION)
    runs_option(parser)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output directory (new, empty, or an earlier report's, which is replaced)")
    comparison_options(parser)


def run(args) -> int:
    threshold = None if args.threshold is None else check_threshold(args.threshold)
    split = check_split(args.split)
    draw = drawing_module().draw
    from core.report import FIGURES
    from core.report.gather import gather_ids
    from core.report.index import INDEX, NUMBERS, markdown, numbers

    report = gather_ids(resolve_runs(args), args.targets, threshold, split)
    out = Path(args.out)
    prepare_out(out)
    figures: dict[str, list[str] | str] = {}
    written: list[Path] = []
    for stem, _ in FIGURES:
        drawn = draw(report, stem, out)
        figures[stem] = drawn if isinstance(drawn, str) else [p.name for p in drawn]
        if not isinstance(drawn, str):
            written += drawn
    command = cmdline.shell(["report", *args.targets, "--out", str(args.out)]
                            + ([] if threshold is None else ["--threshold", f"{threshold:g}"])
                            + ([] if split == "val" else ["--split", split]))
    (out / NUMBERS).write_text(json.dumps(numbers(report, figures), indent=1) + "\n")
    (out / INDEX).write_text(markdown(report, figures, command))
    for path in written + [out / INDEX, out / NUMBERS]:
        print(f"{path.name:<28} {_size(path.stat().st_size):>8}")
    for stem, drawn in figures.items():
        if isinstance(drawn, str):
            print(f"{stem}: not drawn: {drawn}")
    print(out / INDEX)
    return 0
