"""`mothtui report` on real run stores (synthetic fixture runs: no JAX, seconds): every figure as a
decodable PNG and a well-formed SVG, an index whose numbers are `select --json`'s, two runs in one
report, the seed's numbers drawn only where a run is comparable, bad input as one line, and the
missing `report` extra named in one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")  # the `report` extra (part of the `test` extra)
import matplotlib.image  # noqa: E402

from core.cli import main  # noqa: E402
from core.report import FIGURES  # noqa: E402
from core.report.seed import SEED_HIDDEN  # noqa: E402
from fixture_runs import add_fixture_extrapolation, make_fixture_run  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCHEDULE = (0.5, 0.8, 0.9, 0.93, 0.95)


@pytest.fixture
def two_runs(runs_dir):
    """Two finished runs of one shape, the first evaluated at other body scales."""
    first = make_fixture_run(runs_dir, "alpha", nets=6, hidden=(24, 24, 8), schedule=SCHEDULE, seed=0)
    add_fixture_extrapolation(first)
    make_fixture_run(runs_dir, "beta", nets=4, hidden=(24, 24, 8), schedule=SCHEDULE, seed=3)
    return runs_dir


def _report(capsys, runs_dir, out, *targets, extra=()):
    assert main(["report", *targets, "--runs", str(runs_dir), "--out", str(out), *extra]) == 0
    return capsys.readouterr().out


def _select_json(capsys, runs_dir, run_id, extra=()):
    main(["select", run_id, "--runs", str(runs_dir), "--json", *extra])
    return json.loads(capsys.readouterr().out)


def _check_figure_files(out: Path, stem: str) -> None:
    svg, png = out / f"{stem}.svg", out / f"{stem}.png"
    assert svg.stat().st_size > 1000 and png.stat().st_size > 1000, stem
    assert ET.parse(svg).getroot().tag.endswith("svg")
    pixels = matplotlib.image.imread(png)
    assert pixels.ndim == 3 and pixels.shape[0] > 300 and pixels.shape[1] > 600
    assert np.ptp(pixels[..., :3]) > 0.5, f"{stem}.png is blank"   # something dark on white


def _histogram_rows(index: str) -> dict[str, list[str]]:
    """The chosen-sparsity table of index.md: first cell -> the other cells."""
    section = index.split("## Chosen sparsity", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_one_run_every_figure_and_an_index_equal_to_select(two_runs, tmp_path, capsys):
    out = tmp_path / "report"
    printed = _report(capsys, two_runs, out, "alpha")
    for stem, _ in FIGURES:
        _check_figure_files(out, stem)
    # the closing lines: every file with its size, then the index
    lines = printed.strip().splitlines()
    assert lines[-1] == str(out / "index.md")
    for stem, _ in FIGURES:
        assert re.search(rf"^{stem}\.png\s+\d+ KiB$", printed, re.M), printed
    # report.json carries select --json's document unchanged
    doc = json.loads((out / "report.json").read_text())
    select = _select_json(capsys, two_runs, "alpha")
    assert doc["runs"][0]["select"] == select
    assert doc["figures"]["extrapolation"] == ["extrapolation.svg", "extrapolation.png"]
    # and index.md shows the same numbers
    index = (out / "index.md").read_text()
    rows = _histogram_rows(index)
    for b in select["histogram"]["bins"]:
        assert rows[f"{100 * b['sparsity']:.3g}"][0] == str(b["count"])
    assert rows["none"][0] == str(select["histogram"]["none"])
    for row in select["loss_by_level"]:
        assert f"| {row['level']} | {100 * row['sparsity']:.3g} | {row['p10']:.3g} | {row['median']:.3g} " \
               f"| {row['p90']:.3g} | {row['finite']} |" in index
    for stem, _ in FIGURES:
        assert f"]({stem}.png)" in index and f"]({stem}.svg)" in index


def test_two_runs_together(two_runs, tmp_path, capsys):
    out = tmp_path / "both"
    _report(capsys, two_runs, out, "alpha", "beta", "alpha", extra=["--threshold", "2e-3"])  # named twice: once
    doc = json.loads((out / "report.json").read_text())
    assert [r["run"] for r in doc["runs"]] == ["alpha", "beta"] and doc["threshold"] == 2e-3
    for side in doc["runs"]:
        assert side["select"] == _select_json(capsys, two_runs, side["run"], ["--threshold", "2e-3"])
    assert doc["diff"]["nets"] == [6, 4] and doc["diff"]["seed"] == [0, 3]
    for stem, _ in FIGURES:
        _check_figure_files(out, stem)
    for stem in ("loss_vs_sparsity", "chosen_sparsity", "kept_per_layer", "weight_distributions"):
        svg = (out / f"{stem}.svg").read_text()   # text stays text: the legend names both runs
        assert "alpha" in svg and "beta" in svg, stem
    rows = _histogram_rows((out / "index.md").read_text())
    for i, side in enumerate(doc["runs"]):
        assert rows["none"][i] == str(side["select"]["histogram"]["none"])


def test_seed_values_are_drawn_only_for_a_comparable_run(runs_dir, tmp_path, capsys):
    make_fixture_run(runs_dir, "paper-size", nets=1, hidden=SEED_HIDDEN, schedule=(0.9, 0.93))
    make_fixture_run(runs_dir, "small", nets=2, hidden=(16, 16), schedule=(0.9, 0.93))
    _report(capsys, runs_dir, tmp_path / "seeded", "paper-size")
    loss = (tmp_path / "seeded" / "loss_vs_sparsity.svg").read_text()
    assert "seed: Keras, 1 network (val)" in loss
    assert "seed: JAX, 400 networks" in (tmp_path / "seeded" / "chosen_sparsity.svg").read_text()
    assert "seed: 858 networks at 93 %" in (tmp_path / "seeded" / "kept_per_layer.svg").read_text()
    _report(capsys, runs_dir, tmp_path / "plain", "small")
    for stem in ("loss_vs_sparsity", "chosen_sparsity", "kept_per_layer", "input_connections"):
        assert "seed:" not in (tmp_path / "plain" / f"{stem}.svg").read_text(), stem
    index = (tmp_path / "plain" / "index.md").read_text()
    assert "no: its network is 10-16-16-7, the seed's 10-400-400-400-16-7" in index


def test_a_second_report_into_the_same_directory_replaces_the_first(two_runs, tmp_path, capsys):
    out = tmp_path / "report"
    _report(capsys, two_runs, out, "alpha")
    assert (out / "extrapolation.png").exists()
    printed = _report(capsys, two_runs, out, "beta")        # beta was never evaluated at other scales
    assert not (out / "extrapolation.png").exists() and not (out / "extrapolation.svg").exists()
    assert "extrapolation: not drawn: " in printed and "mothtui evaluate beta --scale 0.5,2" in printed
    assert json.loads((out / "report.json").read_text())["figures"]["extrapolation"].startswith("no run has")


@pytest.mark.parametrize("case, needle", [
    ("unknown run", "no run 'nope'"),
    ("not a report dir", "is not empty and holds no report"),
    ("out is a file", "is a file"),
    ("bad threshold", "bad threshold"),
    ("bad split", "split"),
    ("no level yet", "has no completed level"),
])
def test_bad_input_is_one_line_and_writes_nothing(two_runs, tmp_path, capsys, case, needle):
    out = tmp_path / "out"
    run_id, extra = "alpha", []
    if case == "unknown run":
        run_id = "nope"
    elif case == "not a report dir":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "out is a file":
        out.write_text("mine")
    elif case == "bad threshold":
        extra = ["--threshold", "-1"]
    elif case == "bad split":
        extra = ["--split", "holdout"]
    elif case == "no level yet":
        make_fixture_run(two_runs, "fresh", levels_complete=0, status="running")
        run_id = "fresh"
    before = sorted(p.name for p in out.iterdir()) if out.is_dir() else None
    assert main(["report", run_id, "--runs", str(two_runs), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mothtui: ") and "\n" not in err and "Traceback" not in err and needle in err, err
    after = sorted(p.name for p in out.iterdir()) if out.is_dir() else None
    assert after == before


def test_without_matplotlib_one_line_names_the_extra(two_runs, tmp_path):
    """A real process in which matplotlib cannot be imported (as in an install without the extra)."""
    code = ("import sys; sys.modules['matplotlib'] = None; from core.cli import main; "
            f"sys.exit(main(['report', 'alpha', '--runs', {str(two_runs)!r}, '--out', {str(tmp_path / 'r')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip()
    assert "\n" not in err and "matplotlib" in err and ".[report]" in err, err
    assert not (tmp_path / "r").exists()
