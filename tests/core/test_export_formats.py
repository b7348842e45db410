"""Standard model formats: ONNX models that onnxruntime runs with the outputs of `predict` (scaling
folded in, pruned weights still exactly zero), safetensors files the safetensors library reads with
the `.npz`'s arrays, provenance in both, reproducible bytes, and `--format` refusals in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.cli import main
from core.export import export_run, load
from core.export.formats import mothtui_version
from core.runstore import open_run
from fixture_runs import make_fixture_run

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

#: A scaler far from the identity (as in test_export), so a scaling folded wrongly shows.
SCALER = {"x_min": [-3.0, 0.0, -2.0, -2.0, 0.0, 0.0, -1500.0, -1500.0, -25.0, -25.0],
          "x_max": [9.0, 6.3, 2.0, 2.0, 6.3, 6.3, 1500.0, 1500.0, 25.0, 25.0],
          "y_min": [-44300.0, -44300.0, -1e5, -2000.0, -2000.0, -300.0, -300.0],
          "y_max": [44300.0, 44300.0, 1e5, 2000.0, 2000.0, 300.0, 300.0]}
#: ONNX runs in float32: |onnx - predict| <= RTOL_RANGE * (y_max - y_min) per output, 1 ppm of the range.
RTOL_RANGE = 1e-6


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    run = make_fixture_run(runs, "r", nets=5, hidden=(12, 8), seed=1)
    run.set_attrs(scaler=SCALER)
    out = tmp_path_factory.mktemp("formats") / "export"
    manifest = export_run(open_run(runs, "r"), out, threshold=1e-3, formats=("npz", "safetensors", "onnx"))
    return runs, out, manifest


def _inputs(n=2000, seed=0):
    lo, hi = np.array(SCALER["x_min"]), np.array(SCALER["x_max"])
    return np.random.default_rng(seed).uniform(lo, hi, (n, 10))


def _entries(manifest):
    """(npz, safetensors, onnx) relative paths of every exported file, full and compacted."""
    for e in manifest["networks"]:
        for files in (e["files"], e["compacted_files"]):
            yield files["npz"], files["safetensors"], files["onnx"]


def test_onnx_runs_in_onnxruntime_with_the_outputs_of_predict(exported):
    runs, out, manifest = exported
    x = _inputs()
    span = np.array(SCALER["y_max"]) - np.array(SCALER["y_min"])
    worst = 0.0
    for npz, _, onnx_file in _entries(manifest):
        session = ort.InferenceSession(str(out / onnx_file), providers=["CPUExecutionProvider"])
        (inp,), (outp,) = session.get_inputs(), session.get_outputs()
        assert (inp.name, inp.type, inp.shape[1]) == ("x", "tensor(float)", 10)
        assert (outp.name, outp.shape[1]) == ("y", 7)
        y = session.run(None, {"x": x.astype(np.float32)})[0]
        expected = load(out / npz).predict(x.astype(np.float32).astype(np.float64))
        assert y.shape == (len(x), 7) and y.dtype == np.float32
        error = np.abs(y - expected) / span
        worst = max(worst, float(error.max()))
        assert (error <= RTOL_RANGE).all(), (onnx_file, float(error.max()))
    assert worst > 0        # float32, so not bit-equal: the check compares something real
    print(f"worst |onnx - predict| / range: {worst:.2e}")


def test_onnx_keeps_pruned_weights_at_zero_and_carries_provenance(exported):
    runs, out, manifest = exported
    config_hash = manifest["config_hash"]
    for e in manifest["networks"]:
        model = onnx.load(str(out / e["files"]["onnx"]))
        weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
        with np.load(out / e["file"]) as data:
            for k in range(3):
                mask = data[f"layer_{k}_weight_mask"]
                w = weights[f"layer_{k}_weight"]
                assert w.shape == mask.shape
                assert (w[~mask] == 0).all() and (w[mask] != 0).all()
        props = {p.key: p.value for p in model.metadata_props}
        assert (props["run"], int(props["network"]), int(props["level"])) == ("r", e["network"], e["level"])
        assert props["config_hash"] == config_hash and props["mothtui_version"] == mothtui_version()
        assert json.loads(props["input_names"])[0] == "phi_0"
        assert json.loads(props["meta"])["sparsity"] == e["sparsity"]
        assert [o.domain == "" and o.version for o in model.opset_import] == [17]


def test_safetensors_load_with_the_library_and_hold_the_npz_arrays(exported):
    from safetensors import safe_open

    runs, out, manifest = exported
    x = _inputs(200)
    for npz, st, _ in _entries(manifest):
        tensors = safetensors_numpy.load_file(str(out / st))
        with np.load(out / npz) as data:
            numeric = {k: data[k] for k in data.files if k not in ("input_names", "output_names", "meta")}
            meta = json.loads(str(data["meta"]))
        assert set(tensors) == set(numeric)
        for k, v in numeric.items():
            assert tensors[k].dtype == v.dtype and np.array_equal(tensors[k], v), k
        with safe_open(str(out / st), "np") as f:
            props = f.metadata()
        assert json.loads(props["meta"]) == meta
        assert {"run", "level", "config_hash", "mothtui_version"} <= set(meta)
        assert json.loads(props["output_names"])[-1] == "thetad_f"
        np.testing.assert_array_equal(load(out / st).predict(x), load(out / npz).predict(x))


def test_every_format_is_byte_reproducible(exported, tmp_path):
    runs, out, _ = exported
    again = tmp_path / "again"
    export_run(open_run(runs, "r"), again, threshold=1e-3, formats=("onnx", "safetensors", "npz"))
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert {p.suffix for p in files} == {".npz", ".onnx", ".safetensors", ".csv", ".json"}
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel


def _cli(capsys, *argv):
    code = main(list(argv))
    return (code, *capsys.readouterr())


def test_format_option_and_its_refusals(exported, tmp_path, capsys, monkeypatch):
    runs, _, _ = exported
    base = ("export", "r", "--runs", str(runs), "--threshold", "1e-3")
    code, stdout, stderr = _cli(capsys, *base, "--out", str(tmp_path / "default"))
    assert code == 0, stderr
    assert {p.suffix for p in (tmp_path / "default").glob("net_*")} == {".npz"}       # npz stays the default
    code, stdout, stderr = _cli(capsys, *base, "--out", str(tmp_path / "bad"), "--format", "npz,foo")
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "foo" in stderr and "npz, safetensors, onnx" in stderr
    assert not (tmp_path / "bad").exists()

    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    code, stdout, stderr = _cli(capsys, *base, "--out", str(tmp_path / "noextra"), "--format", "onnx")
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "pip install 'mothtui[onnx]'" in stderr
    assert not (tmp_path / "noextra").exists()
    monkeypatch.undo()

    code, stdout, stderr = _cli(capsys, *base, "--out", str(tmp_path / "st"), "--format", "safetensors")
    assert code == 0, stderr
    manifest = json.loads((tmp_path / "st" / "manifest.json").read_text())
    assert manifest["formats"] == ["safetensors"] and not list((tmp_path / "st").rglob("*.npz"))
    net = manifest["networks"][0]["network"]
    assert "file" not in manifest["networks"][0]
    assert load(tmp_path / "st", net).path.suffix == ".safetensors"      # load() falls back to safetensors
    assert load(tmp_path / "st", net, compacted=True).meta["compacted"] is True

    code, stdout, stderr = _cli(capsys, *base, "--out", str(tmp_path / "onnx"), "--format", "ONNX")
    assert code == 0, stderr
    from core.errors import MothError

    with pytest.raises(MothError, match="onnxruntime"):
        load(tmp_path / "onnx", net)
