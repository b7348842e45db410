"""Dataset stores on disk: streamed chunks, reproducibility, the completion protocol, bad input."""

import json

import numpy as np
import pytest
import zarr

from core.dataset import create_dataset, ensure_dataset, open_dataset
from core.errors import MothError, StoreError
from core.sim import sample_rows, simulate_checked


def _snapshot(path):
    """Every file's bytes under a store, to prove it was left untouched."""
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "small"
    calls = []
    create_dataset(path, samples=600, seed=11, chunk=256, progress=lambda done, total: calls.append((done, total)))
    return path, calls


def test_store_layout_attributes_and_progress(small):
    path, calls = small
    ds = open_dataset(path)
    assert ds.n == 600 and ds.complete
    assert ds.initial.shape == (600, 8) and ds.controls.shape == (600, 3)
    assert ds.final.shape == (600, 8) and ds.valid.shape == (600,) and ds.valid.dtype == bool
    assert ds.initial.chunks == (256, 8)
    for key in ("scale", "seed", "t_end", "sampling_ranges", "integrator", "schema_version"):
        assert key in ds.attrs
    assert ds.attrs["integrator"]["method"].startswith("ARK4")
    assert ds.attrs["invalid"] == int((~ds.valid[:]).sum())
    assert calls == [(0, 600), (256, 600), (512, 600), (600, 600)]  # where it starts, then each chunk
    # Plain zarr can read it, as the contract promises.
    group = zarr.open_group(path, mode="r")
    assert group["final"][:].shape == (600, 8)


def test_rows_are_the_seed_rows_simulated(small):
    path, _ = small
    ds = open_dataset(path)
    initial, controls = sample_rows(11, 0, 600)
    np.testing.assert_array_equal(ds.initial[:], initial.astype(np.float32))
    np.testing.assert_array_equal(ds.controls[:], controls.astype(np.float32))
    # Re-simulating the stored inputs of one chunk gives exactly the stored results.
    final, valid = simulate_checked(ds.initial[:256], ds.controls[:256])
    np.testing.assert_array_equal(ds.final[:256], final)
    np.testing.assert_array_equal(ds.valid[:256], valid)


def test_same_seed_same_dataset_whatever_the_chunk(small, tmp_path):
    path, _ = small
    other = create_dataset(tmp_path / "other", samples=600, seed=11, chunk=600)
    a, b = open_dataset(path), open_dataset(other)
    for name in ("initial", "controls", "final", "valid"):
        np.testing.assert_array_equal(a.group[name][:], b.group[name][:])


def test_existing_store_is_refused_and_untouched_without_force(small):
    path, _ = small
    before = _snapshot(path)
    with pytest.raises(StoreError, match="already exists"):
        create_dataset(path, samples=10, seed=1)
    assert _snapshot(path) == before


def test_force_replaces_only_once_the_new_store_is_complete(tmp_path):
    path = tmp_path / "ds"
    create_dataset(path, samples=100, seed=1)
    with pytest.raises(MothError):
        create_dataset(path, samples=100, seed=1, force=True, scale=-2.0)
    assert open_dataset(path).attrs["seed"] == 1
    create_dataset(path, samples=50, seed=2, force=True)
    ds = open_dataset(path)
    assert ds.n == 50 and ds.attrs["seed"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no staging directory left behind


@pytest.mark.parametrize("kwargs, message", [
    (dict(samples=0, seed=0), "samples"),
    (dict(samples=-5, seed=0), "samples"),
    (dict(samples=10, seed=-1), "seed"),
    (dict(samples=10, seed=0, scale=0.0), "scale"),
    (dict(samples=10, seed=0, chunk=0), "chunk"),
])
def test_bad_requests_are_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(MothError, match=message):
        create_dataset(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_unwritable_path_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot write"):
        create_dataset(blocker / "ds", samples=10, seed=0)


def test_missing_corrupt_and_incomplete_stores(tmp_path, small):
    with pytest.raises(StoreError, match="no dataset"):
        open_dataset(tmp_path / "missing")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "zarr.json").write_text("{not json")
    with pytest.raises(StoreError, match="unreadable"):
        open_dataset(corrupt)
    # A store whose writer never sealed it must not be trusted.
    path, _ = small
    incomplete = tmp_path / "incomplete"
    create_dataset(incomplete, samples=20, seed=3)
    meta = json.loads((incomplete / "zarr.json").read_text())
    meta["attributes"]["complete"] = False
    (incomplete / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="incomplete"):
        open_dataset(incomplete)
    # ensure_dataset replaces the incomplete store, and then reuses the complete one.
    ensure_dataset(incomplete, 20, 3, 1.0)
    created = open_dataset(incomplete).attrs["created"]
    before = _snapshot(incomplete)
    assert ensure_dataset(incomplete, 20, 3, 1.0) == incomplete
    assert _snapshot(incomplete) == before and open_dataset(incomplete).attrs["created"] == created
    # A complete store made with other parameters is never overwritten.
    with pytest.raises(StoreError, match="choose another path"):
        ensure_dataset(incomplete, 20, 4, 1.0)
    assert _snapshot(incomplete) == before


# ---- the one reader: every check is one line, for training and analysis alike -----------------

def _one_line(err) -> str:
    message = str(err.value)
    assert len(message.splitlines()) == 1, message
    return message


def test_the_reader_refuses_broken_stores_in_one_line(tmp_path, small):
    import shutil

    from core.data import prepare

    path, _ = small
    cases = {}
    missing = tmp_path / "missing_array"
    shutil.copytree(path, missing)
    shutil.rmtree(missing / "final")
    cases[missing] = "incomplete: array 'final' missing"
    short = tmp_path / "short_valid"
    shutil.copytree(path, short)
    meta = json.loads((short / "valid" / "zarr.json").read_text())
    meta["shape"] = [599]
    (short / "valid" / "zarr.json").write_text(json.dumps(meta))
    cases[short] = "corrupt: array shapes"
    liar = tmp_path / "wrong_samples"
    shutil.copytree(path, liar)
    meta = json.loads((liar / "zarr.json").read_text())
    meta["attributes"]["samples"] = 700
    (liar / "zarr.json").write_text(json.dumps(meta))
    cases[liar] = "corrupt"
    other = tmp_path / "other_kind"
    shutil.copytree(path, other)
    meta = json.loads((other / "zarr.json").read_text())
    meta["attributes"]["kind"] = "something.else"
    (other / "zarr.json").write_text(json.dumps(meta))
    cases[other] = "not a mothtui dataset store"
    for store, needle in cases.items():
        with pytest.raises(StoreError) as err:
            open_dataset(store)
        assert needle in _one_line(err), store
        with pytest.raises(StoreError) as err:  # training reads through the same reader
            prepare(store, (0.64, 0.16, 0.2))
        assert needle in _one_line(err), store


def test_a_damaged_chunk_is_one_line_when_rows_are_read(tmp_path, small):
    import shutil

    from core.data import prepare

    path, _ = small
    damaged = tmp_path / "damaged"
    shutil.copytree(path, damaged)
    chunks = sorted(p for p in (damaged / "final").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunks[1].write_bytes(b"\x00not a blosc frame" * 4)  # rows 256-511
    ds = open_dataset(damaged)  # the metadata are intact
    assert len(ds.usable_rows(0, 256)) > 0
    with pytest.raises(StoreError) as err:
        ds.usable_rows(0, 600)
    assert "corrupt (rows" in _one_line(err)
    with pytest.raises(StoreError) as err:
        prepare(damaged, (0.64, 0.16, 0.2))
    assert "corrupt (rows" in _one_line(err)


def test_usable_rows_are_the_valid_finite_rows_and_their_features(small):
    from core.dataset import features

    path, _ = small
    ds = open_dataset(path)
    valid = np.asarray(ds.valid[100:500])
    rows = ds.usable_rows(100, 500, block=64)
    np.testing.assert_array_equal(rows.initial, np.asarray(ds.initial[100:500], np.float64)[valid])
    x, y = features(ds.initial[100:500], ds.controls[100:500], ds.final[100:500])
    np.testing.assert_array_equal(rows.x, x[valid])
    np.testing.assert_array_equal(rows.y, y[valid])
    assert rows.excluded == int((~valid).sum())
    first = ds.usable_rows(100, 500, limit=37, block=64)
    np.testing.assert_array_equal(first.final, rows.final[:37])


def test_another_tools_store_is_read_but_never_replaced(tmp_path):
    """A contract-layout store without mothtui's `kind`/`complete` attributes trains, and
    ensure_dataset neither reuses nor overwrites it, even when it says it is unfinished."""
    from core.data import prepare

    group = zarr.open_group(tmp_path / "theirs", mode="w", zarr_format=3)
    initial, controls = sample_rows(5, 0, 200)
    final, valid = simulate_checked(initial, controls)
    for name, array in (("initial", initial), ("controls", controls), ("final", np.asarray(final))):
        group.create_array(name, data=np.asarray(array, np.float32))
    group.create_array("valid", data=np.asarray(valid))
    group.attrs.update({"scale": 1.0, "seed": 5, "t_end": 0.02, "schema_version": 1, "integrator": "theirs"})
    ds = open_dataset(tmp_path / "theirs")
    assert ds.complete and not ds.written_by_mothtui and ds.n == 200
    assert prepare(tmp_path / "theirs", (0.64, 0.16, 0.2)).splits["train"].n > 0
    group.attrs["complete"] = False
    before = _snapshot(tmp_path / "theirs")
    with pytest.raises(StoreError, match="incomplete"):
        open_dataset(tmp_path / "theirs")
    with pytest.raises(StoreError, match="not a readable dataset store"):
        ensure_dataset(tmp_path / "theirs", 200, 5, 1.0)
    assert _snapshot(tmp_path / "theirs") == before


def test_cached_datasets_are_named_by_the_integrator_that_made_them(monkeypatch):
    """A cache made by an older simulator is never reused for new runs (nor replaced under old ones)."""
    from core.dataset import cache_name
    from core.sim import api

    name = cache_name("sim", 1000, 0, 1.0)
    assert name.startswith("sim_n1000_seed0_s1_") and name == cache_name("sim", 1000, 0, 1.0)
    assert cache_name("sim", 1000, 0, 0.5) != name.replace("_s1_", "_s0.5_")  # settings differ per scale
    settings = api.integrator_settings
    monkeypatch.setattr(api, "integrator_settings", lambda *a: {**settings(*a), "tolerance": 1.0})
    assert cache_name("sim", 1000, 0, 1.0) != name
