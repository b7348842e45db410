"""Export: files that plain numpy runs, equal to predict() and to the run's stored weights;
ghost-unit compaction that leaves outputs unchanged; edge lists; reproducible bytes; refusals."""

from __future__ import annotations

import csv
import json
import zipfile

import numpy as np
import pytest
import zarr

from core.cli import main
from core.errors import MothError
from core.export import compact, export_run, load
from core.runstore import open_run
from core.schema import SPLITS
from fixture_runs import make_fixture_run

#: A scaler far from the identity, so scaling mistakes show up in the outputs.
SCALER = {"x_min": [-3.0, 0.0, -2.0, -2.0, 0.0, 0.0, -1500.0, -1500.0, -25.0, -25.0],
          "x_max": [9.0, 6.3, 2.0, 2.0, 6.3, 6.3, 1500.0, 1500.0, 25.0, 25.0],
          "y_min": [-44300.0, -44300.0, -1e5, -2000.0, -2000.0, -300.0, -300.0],
          "y_max": [44300.0, 44300.0, 1e5, 2000.0, 2000.0, 300.0, 300.0]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A fixture run with a realistic scaler, exported once at threshold 1e-3."""
    runs = tmp_path_factory.mktemp("runs")
    run = make_fixture_run(runs, "r", nets=5, hidden=(12, 8), schedule=(0.5, 0.8, 0.9, 0.95), seed=1)
    run.set_attrs(scaler=SCALER)
    out = runs.parent / "export"
    manifest = export_run(open_run(runs, "r"), out, threshold=1e-3)
    return runs, out, manifest


def _inputs(n=300, seed=0):
    lo, hi = np.array(SCALER["x_min"]), np.array(SCALER["x_max"])
    return np.random.default_rng(seed).uniform(lo, hi, (n, 10))


def _numpy_only(path, x):
    """The contract's forward pass written from the contract, with nothing but np.load."""
    data = np.load(path)
    h = (x - data["x_min"]) / (data["x_max"] - data["x_min"]) - 0.5
    k = 0
    while f"layer_{k}_weight" in data.files:
        h = h @ data[f"layer_{k}_weight"].astype(np.float64) + data[f"layer_{k}_bias"]
        k += 1
        if f"layer_{k}_weight" in data.files:
            h = np.tanh(h)
    return (h + 0.5) * (data["y_max"] - data["y_min"]) + data["y_min"]


def test_exported_file_equals_predict_and_the_runs_weights(exported):
    runs, out, manifest = exported
    raw = zarr.open_group(runs / "r", mode="r")
    losses = np.asarray(raw["loss/val"][:])
    x = _inputs()
    assert manifest["networks"], "the fixture run has networks under 1e-3"
    for entry in manifest["networks"]:
        net, level = entry["network"], entry["level"]
        assert losses[level, net] <= 1e-3
        by_numpy = _numpy_only(out / entry["file"], x)
        by_predict = load(out / entry["file"]).predict(x)
        np.testing.assert_array_equal(by_numpy, by_predict)
        # the same network straight from the run store's arrays
        h = (x - SCALER["x_min"]) / (np.array(SCALER["x_max"]) - SCALER["x_min"]) - 0.5
        for k in range(3):
            w = np.asarray(raw[f"layer_{k}/weight"][level, net], dtype=np.float64)
            h = h @ w + np.asarray(raw[f"layer_{k}/bias"][level, net], dtype=np.float64)
            h = np.tanh(h) if k < 2 else h
        from_store = (h + 0.5) * (np.array(SCALER["y_max"]) - SCALER["y_min"]) + SCALER["y_min"]
        np.testing.assert_allclose(by_predict, from_store, rtol=1e-12, atol=1e-9)
        with np.load(out / entry["file"]) as data:
            for k in range(3):
                np.testing.assert_array_equal(data[f"layer_{k}_weight_mask"],
                                              raw[f"layer_{k}/weight_mask"][level, net])
            assert list(data["input_names"]) == list(raw.attrs["input_names"])
            meta = json.loads(str(data["meta"]))
        assert {"run": "r", "network": net, "level": level, "threshold": 1e-3, "split": "val"}.items() \
            <= meta.items()
        assert meta["sparsity"] == pytest.approx(raw["sparsity"][level])
        assert meta["losses"]["val"] == pytest.approx(losses[level, net])


def test_manifest_lists_every_file_and_the_source(exported):
    runs, out, manifest = exported
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert {"run", "threshold", "split", "networks"} <= set(on_disk)
    for entry in on_disk["networks"]:
        assert {"network", "level", "sparsity", "losses", "file", "compacted", "edges"} <= set(entry)
        assert set(entry["losses"]) == set(SPLITS)
        for key in ("file", "compacted", "edges"):
            assert (out / entry[key]).is_file()
    assert not list(out.rglob("*.partial"))


def test_compacted_network_has_identical_outputs_and_fewer_units(exported):
    runs, out, manifest = exported
    x = _inputs(seed=1)
    removed_any = False
    for entry in manifest["networks"]:
        full = load(out, entry["network"])
        small = load(out, entry["network"], compacted=True)
        np.testing.assert_allclose(small.predict(x), full.predict(x), rtol=1e-10, atol=1e-8)
        assert small.layer_sizes == entry["compacted_sizes"]
        widths = [a - b for a, b in zip(full.layer_sizes[1:-1], entry["ghosts_removed"])]
        assert small.layer_sizes[1:-1] == widths
        removed_any |= sum(entry["ghosts_removed"]) > 0
        # what is left is no ghost: every kept hidden unit has an input and an output
        for h in range(len(small.weights) - 1):
            assert small.weight_masks[h].any(axis=0).all()
            assert small.weight_masks[h + 1].any(axis=1).all()
    assert removed_any, "a 90 %-pruned 12-8 network has ghost units"


def test_compact_on_a_hand_built_network():
    """Unit 0 of layer 1 has no input (a constant), unit 1 no output; unit 0 of layer 2 is fed only
    by the constant, so once that is folded away it is a constant too. Outputs must not change."""
    rng = np.random.default_rng(2)
    sizes = (3, 4, 3, 2)
    w = [rng.normal(size=(a, b)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    b = [rng.normal(size=s).astype(np.float32) for s in sizes[1:]]
    wm = [np.ones(x.shape, bool) for x in w]
    bm = [np.ones(x.shape, bool) for x in b]
    wm[0][:, 0] = False            # layer-1 unit 0: no input weights, but a bias -> constant
    wm[1][1, :] = False            # layer-1 unit 1: no output
    wm[1][:, 0] = False
    wm[1][0, 0] = True             # layer-2 unit 0 is fed only by the constant unit
    bm[1][0] = False               # ... and has no bias of its own
    w = [x * m for x, m in zip(w, wm)]
    b = [x * m for x, m in zip(b, bm)]
    small = compact(w, b, wm, bm)
    assert small.removed == [2, 1]
    assert [list(k) for k in small.kept] == [[2, 3], [1, 2]]
    scaler = dict(x_min=-np.ones(3), x_max=np.ones(3), y_min=-np.ones(2), y_max=np.ones(2))
    from core.export import forward
    x = rng.uniform(-1, 1, (50, 3))
    np.testing.assert_allclose(forward(x, small.weights, small.biases, **scaler),
                               forward(x, w, b, **scaler), rtol=1e-12, atol=1e-12)


def test_edge_list_is_the_surviving_connections(exported):
    runs, out, manifest = exported
    entry = manifest["networks"][0]
    full = load(out / entry["file"])
    with open(out / entry["edges"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(int(m.sum()) for m in full.weight_masks)
    for row in rows[:: max(1, len(rows) // 50)]:
        k, i, j = int(row["layer"]), int(row["source"]), int(row["target"])
        assert full.weight_masks[k][i, j]
        assert float(row["weight"]) == pytest.approx(float(full.weights[k][i, j]), rel=1e-7)
    assert {r["source_node"] for r in rows if r["layer"] == "0"} <= {f"in:{n}" for n in full.input_names}
    kept = {int(r["target"]) for r in rows if r["layer"] == "0" and r["ghost"] == "0"}
    small = load(out / entry["compacted"])
    with np.load(out / entry["compacted"]) as data:
        assert kept <= set(data["layer_0_units"].tolist())
    assert small.meta["compacted"] is True


def test_export_is_reproducible_byte_for_byte(exported, tmp_path):
    runs, out, manifest = exported
    again = tmp_path / "again"
    export_run(open_run(runs, "r"), again, threshold=1e-3)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel
    with zipfile.ZipFile(out / manifest["networks"][0]["file"]) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_level_and_nets_options_and_load_errors(exported, tmp_path):
    runs, out, manifest = exported
    run = open_run(runs, "r")
    forced = export_run(run, tmp_path / "forced", nets=[1, 3], level=4)
    assert [(e["network"], e["level"], e["manual"]) for e in forced["networks"]] == [(1, 4, True), (3, 4, True)]
    one = load(tmp_path / "forced", 3)
    assert one.meta["level"] == 4 and one.meta["manual"] is True
    with pytest.raises(MothError, match="name one"):
        load(tmp_path / "forced")
    with pytest.raises(MothError, match="not in the export"):
        load(tmp_path / "forced", 0)
    with pytest.raises(MothError, match="no exported network"):
        load(tmp_path / "nothing.npz")


def _cli(capsys, *argv):
    code = main(list(argv))
    return (code, *capsys.readouterr())


def test_export_command_refusals(exported, tmp_path, capsys):
    runs, out, manifest = exported
    base = ("export", "r", "--runs", str(runs))
    (tmp_path / "a_file").write_text("x")
    cases = [
        (("export", "nope", "--runs", str(runs), "--out", str(tmp_path / "o1")), "no run 'nope'"),
        ((*base, "--out", str(out)), "not empty"),                                # non-empty dir
        ((*base, "--out", str(tmp_path / "a_file")), "not a directory"),
        ((*base, "--out", str(tmp_path / "a_file" / "sub")), "cannot write"),    # unwritable
        ((*base, "--out", str(tmp_path / "o2"), "--threshold", "0"), "threshold"),
        ((*base, "--out", str(tmp_path / "o3"), "--threshold", "1e-9"), "no network"),  # empty selection
        ((*base, "--out", str(tmp_path / "o4"), "--nets", "0,99"), "network 99"),
        ((*base, "--out", str(tmp_path / "o5"), "--nets", "x"), "--nets"),
        ((*base, "--out", str(tmp_path / "o6"), "--level", "9"), "level 9"),
        # an override for a network --nets leaves out was dropped without a word: now refused, naming both
        ((*base, "--out", str(tmp_path / "o7"), "--nets", "0,3", "--override", "2=1"),
         "--override 2=1 is for network 2, which --nets does not export (0,3)"),
    ]
    before = (out / "manifest.json").read_bytes()
    for argv, needle in cases:
        code, stdout, stderr = _cli(capsys, *argv)
        assert code != 0, argv
        assert len(stderr.strip().splitlines()) == 1 and needle in stderr, (argv, stderr)
    assert (out / "manifest.json").read_bytes() == before          # nothing existing was touched
    assert not any((tmp_path / f"o{i}").exists() for i in (2, 3, 4, 5, 6, 7))

    code, stdout, stderr = _cli(capsys, *base, "--out", str(tmp_path / "new" / "deep"))
    assert code == 0, stderr
    assert stdout.strip().splitlines()[-1] == str(tmp_path / "new" / "deep")
    assert json.loads((tmp_path / "new" / "deep" / "manifest.json").read_text())["networks"]


def test_export_command_overrides_a_level_by_hand(exported, tmp_path, capsys):
    runs, _, manifest = exported
    auto = {e["network"]: e["level"] for e in manifest["networks"]}
    net = min(auto)
    forced = 0 if auto[net] != 0 else 1
    code, stdout, stderr = _cli(capsys, "export", "r", "--runs", str(runs), "--out", str(tmp_path / "o"),
                                "--threshold", "1e-3", "--override", f"{net}={forced}")
    assert code == 0, stderr
    entries = {e["network"]: e for e in json.loads((tmp_path / "o" / "manifest.json").read_text())["networks"]}
    assert (entries[net]["level"], entries[net]["manual"]) == (forced, True)
    stored = open_run(runs, "r").level(forced, [net]).weights[0][0]
    assert np.array_equal(np.load(tmp_path / "o" / entries[net]["file"])["layer_0_weight"], stored)


def test_a_loaded_network_prints_as_one_short_line(exported):
    _, out, manifest = exported
    entry = manifest["networks"][0]
    net = load(out, entry["network"])
    text = repr(net)
    assert "\n" not in text and len(text) < 200, text
    assert text.startswith(f"<ExportedNetwork net {entry['network']} of run 'r' level {entry['level']} "
                           f"sparsity {entry['sparsity']:.3f} · layers 10-12-8-7 · ")
    assert f"{net.nonzeros:,}/" in text and net.nonzeros == sum(int(m.sum()) for m in net.weight_masks + net.bias_masks)
    assert " compacted " in repr(load(out, entry["network"], compacted=True))
