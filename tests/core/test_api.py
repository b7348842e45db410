"""Labelled stores and the notebook API: xarray opens a run with named dimensions and `sparsity` as
the level's coordinate; an old store without the names reads as before (and the same through
core.api); core.api reads runs without JAX and agrees with the stores; the docs' example notebook
runs as a script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from core import api
from core.analysis.store import EXTRAPOLATION, GROUP, AnalysisWriter
from core.export import export_run, load
from core.runstore import Run, open_run
from fixture_runs import make_fixture_run

xr = pytest.importorskip("xarray")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished fixture run with a stored (partial) analysis and extrapolation, and an interrupted run."""
    runs = tmp_path_factory.mktemp("runs")
    run = make_fixture_run(runs, "r", nets=5, hidden=(12, 8), seed=2)
    _write_analysis(run, levels=3)
    make_fixture_run(runs, "part", nets=3, levels_complete=2, status="cancelled", seed=4)
    return runs


def _write_analysis(run: Run, levels: int) -> None:
    """Analysis and extrapolation groups shaped as core.analysis writes them, over the first `levels`."""
    n, k = run.nets, run.n_layers
    writer = AnalysisWriter(run.path, GROUP)
    writer.array("remaining", np.full((levels, n, k), 0.5))
    writer.array("ghosts", np.zeros((levels, n, k - 1), np.int64))
    writer.array("input_connections", np.ones((levels, n, 10), np.int64))
    writer.array("weights/layer_0/hist", np.ones((levels, 6), np.int64))
    writer.array("weights/layer_0/edges", np.linspace(-1, 1, 7))
    writer.array("output_mse", np.full((levels, n, 7), 1e-4))
    writer.array("noise/sigma", np.array([0.01, 0.1]))
    writer.array("noise/loss", np.full((2, levels, n), 2e-4))
    writer.array("closed_loop/valid", np.ones((levels, n, 4), bool))
    writer.finish(summary={"x": 1}, params={"noise": [0.01, 0.1]}, levels=levels)
    writer = AnalysisWriter(run.path, EXTRAPOLATION)
    writer.array("scales", np.array([0.9, 1.1]))
    writer.array("loss", np.full((2, levels, n), 3e-4))
    writer.finish(summary={}, params={}, levels=levels)


def test_xarray_opens_a_run_with_named_dimensions(runs):
    tree = xr.open_datatree(runs / "r", engine="zarr", consolidated=False)
    assert tree["loss/val"].dims == ("level", "net")
    assert tree["layer_0/weight"].dims == ("level", "net", "in", "out")
    assert tree["layer_2/bias_mask"].dims == ("level", "net", "out")
    assert tree["train/seconds"].dims == ("level",)
    assert "sparsity" in tree.coords and tree["sparsity"].dims == ("level",)
    stored = open_run(runs, "r")
    np.testing.assert_array_equal(tree["sparsity"].values, stored.sparsity)
    np.testing.assert_array_equal(tree["loss/val"].values, stored.losses("val"))
    np.testing.assert_array_equal(tree["layer_1/weight_mask"].isel(level=3).values,
                                  stored.weight_masks(3)[1])
    # the analysis covers fewer levels than the run: its own dimension, so the tree still aligns
    assert tree["analysis/noise/loss"].dims == ("noise", "analysed_level", "net")
    assert tree["analysis/weights/layer_0/edges"].dims == ("bin_edge",)
    assert tree["extrapolation/loss"].dims == ("scale", "analysed_level", "net")


def test_dataset_store_arrays_are_labelled(tmp_path):
    from core.dataset import _create_group

    _create_group(tmp_path / "d", 12, 4, "float32", {"kind": "test"})
    ds = xr.open_zarr(tmp_path / "d", consolidated=False)
    assert ds["initial"].dims == ds["final"].dims == ("row", "state")
    assert ds["controls"].dims == ("row", "control") and ds["valid"].dims == ("row",)


def _strip_names(path: Path) -> int:
    """Make a store as mothtui wrote it before the names existed; returns how many arrays it changed."""
    changed = 0
    for meta_path in path.rglob("zarr.json"):
        meta = json.loads(meta_path.read_text())
        if meta.get("node_type") == "array" and "dimension_names" in meta:
            del meta["dimension_names"]
            meta_path.write_text(json.dumps(meta))
            changed += 1
        elif meta.get("node_type") == "group":
            meta.get("attributes", {}).pop("coordinates", None)
            meta_path.write_text(json.dumps(meta))
    return changed


def test_a_store_without_names_reads_as_before_and_through_the_api(runs, tmp_path):
    import shutil

    shutil.copytree(runs / "r", tmp_path / "old")
    assert _strip_names(tmp_path / "old") > 20
    old, new = open_run(tmp_path, "old"), open_run(runs, "r")
    assert old.levels_complete == new.levels_complete
    np.testing.assert_array_equal(old.losses("test"), new.losses("test"))
    np.testing.assert_array_equal(old.level(2).weights[0], new.level(2).weights[0])
    with pytest.raises(Exception):   # xarray itself needs the names: the reason they were added
        xr.open_datatree(tmp_path / "old", engine="zarr", consolidated=False)
    a, b = api.open_run(tmp_path / "old").to_xarray(), api.open_run(runs / "r").to_xarray()
    for name in ("loss/val", "layer_0/weight", "layer_2/bias_mask", "analysis/noise/loss"):
        assert a[name].dims == b[name].dims, name
        np.testing.assert_array_equal(a[name].values, b[name].values)
    xr.testing.assert_equal(a["loss/val"].coords["sparsity"], b["loss/val"].coords["sparsity"])


def test_api_reads_what_the_store_holds(runs, tmp_path):
    summaries = {s.run_id: s for s in api.list_runs(runs)}
    assert set(summaries) == {"r", "part"} and summaries["part"].levels_complete == 2
    run = api.open_run("r", runs=runs)
    assert api.open_run(runs / "r").run_id == "r"
    raw = zarr.open_group(runs / "r", mode="r")
    np.testing.assert_array_equal(run.losses("train"), raw["loss/train"][:])
    np.testing.assert_array_equal(run.sparsity, raw["sparsity"][:])
    lv = run.level(3, [1, 4])
    assert lv.nets == (1, 4) and lv.sparsity == pytest.approx(raw["sparsity"][3])
    np.testing.assert_array_equal(lv.weights[2], raw["layer_2/weight"][3][[1, 4]])
    np.testing.assert_array_equal(lv.bias_masks[0], raw["layer_0/bias_mask"][3][[1, 4]])
    np.testing.assert_array_equal(run.masks(3)[0], raw["layer_0/weight_mask"][3])
    masks = [np.asarray(raw[f"layer_{k}/weight_mask"][3][1]) for k in range(3)]
    assert lv.remaining[0] == pytest.approx(sum(m.sum() for m in masks) / sum(m.size for m in masks))
    # a network straight from the run predicts as its exported file does
    selection = run.select(1e-3)
    choice = next(c for c in selection.choices if c.level is not None)
    manifest = export_run(open_run(runs, "r"), tmp_path / "e", nets=[choice.network])
    x = np.random.default_rng(0).uniform(-1, 1, (50, 10))
    np.testing.assert_array_equal(run.network(choice.level, choice.network).predict(x),
                                  api.load_export(tmp_path / "e" / manifest["networks"][0]["file"]).predict(x))
    assert api.load_export(tmp_path / "e").meta["network"] == choice.network
    analysis, extrapolation = run.analysis(), run.extrapolation()
    assert analysis.levels == 3 and analysis.arrays["noise/loss"].shape == (2, 3, 5)
    assert extrapolation.arrays["loss"].shape == (2, 3, 5)
    assert api.open_run(runs / "part").analysis() is None
    tree = analysis.to_xarray(run.sparsity)
    assert tree["noise/loss"].dims == ("noise", "analysed_level", "net")
    np.testing.assert_array_equal(tree["noise"].coords["sparsity"].values, run.sparsity[:3])


def test_to_xarray_covers_completed_levels_only(runs):
    tree = api.open_run(runs / "part").to_xarray()
    assert tree["loss/val"].sizes == {"level": 2, "net": 3}
    assert list(tree["loss/val"].coords["level"].values) == [0, 1]
    assert np.isfinite(tree["loss/val"].values).all()       # no unwritten (NaN) level
    assert tree["layer_0/weight"].sel(level=1).shape == (3, 10, 8)
    np.testing.assert_array_equal(tree["layer_1"].coords["sparsity"].values, [0.0, 0.5])


def test_api_refuses_bad_input_in_one_line(runs):
    from core.errors import MothError

    with pytest.raises(MothError, match="no run"):
        api.open_run("nope", runs=runs)
    run = api.open_run(runs / "part")
    with pytest.raises(MothError, match="level 4 is not complete"):
        run.level(4)
    with pytest.raises(MothError, match="no network 7"):
        run.network(0, 7)
    with pytest.raises(MothError, match="unknown split"):
        run.losses("dev")


def test_reading_through_the_api_never_imports_jax(runs):
    code = (
        "import sys\n"
        "from core import api\n"
        f"run = api.open_run({str(runs / 'r')!r})\n"
        "run.losses(); run.level(2); run.select(); run.analysis(); run.to_xarray()['layer_0/weight'].values\n"
        "run.network(1, 0).predict([[0.0] * 10])\n"
        "print(sorted(m for m in sys.modules if m == 'jax' or m.startswith(('jax.', 'core.engine', 'core.sim'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_docs_example_notebook_runs_as_a_script(runs, tmp_path):
    pytest.importorskip("matplotlib")
    figure = tmp_path / "figure.png"
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / "paper_figure.py"), str(runs / "r"),
                          str(figure)], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(figure)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 10_000


def test_the_store_format_is_specified_in_the_project_and_cited_by_its_owners():
    import re

    from core import dimensions

    spec = (ROOT / "docs" / "store-format.md").read_text()
    names = {name for _, dims in dimensions._TABLE for name in dims}
    missing = [n for n in sorted(names) if f"`{n}`" not in spec]
    assert not missing, f"dimension names not documented in docs/store-format.md: {missing}"
    for module in ("core/runstore.py", "core/dataset.py", "core/analysis/store.py", "core/export/__init__.py",
                   "core/schema.py"):
        assert "docs/store-format.md" in (ROOT / module).read_text(), module
    cited = {m for p in (ROOT / "core").rglob("*.py") for m in re.findall(r"docs/[\w-]+\.md", p.read_text())}
    assert "docs/contract.md" not in cited          # the unshipped document is no longer the reference
