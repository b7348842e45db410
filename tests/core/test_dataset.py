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
    assert calls == [(256, 600), (512, 600), (600, 600)]
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
