"""Data: features in the contract's order, row splits, scaler fitted on train only, invalid rows out,
batches a pure function of (seed, level, step)."""

import numpy as np
import pytest
import zarr

from core.data import BatchPlan, Scaler, features, prepare, split_ranges
from core.errors import StoreError
from engine_fixtures import write_dataset


def test_features_order_matches_the_contract():
    initial = np.arange(8, dtype=float)[None] + 1  # x=1 xd=2 y=3 yd=4 theta=5 thetad=6 phi=7 phid=8
    final = np.arange(8, dtype=float)[None] + 11
    controls = np.array([[2.0, np.pi / 2, -3.0]])
    x, y = features(initial, controls, final)
    assert x[0].tolist() == [7, 5, 11, 13, 17, 15, 2, 4, 8, 6]
    np.testing.assert_allclose(y[0], [0.0, 2.0, -3.0, 12, 14, 18, 16], atol=1e-12)


def test_seed_splits():
    assert split_ranges(10_000_000, (0.64, 0.16, 0.20)) == {
        "train": [0, 6_400_000], "val": [6_400_000, 8_000_000], "test": [8_000_000, 10_000_000]}


def test_scaler_is_fitted_on_valid_training_rows_only(tmp_path):
    path = write_dataset(tmp_path / "ds", n=1000, seed=3, invalid_every=10)
    data = prepare(path, (0.64, 0.16, 0.20))
    group = zarr.open_group(path, mode="r")
    valid = np.asarray(group["valid"][:])
    x, y = features(group["initial"][:640], group["controls"][:640], group["final"][:640])
    keep = valid[:640]
    np.testing.assert_array_equal(data.scaler.x_min, x[keep].min(0))
    np.testing.assert_array_equal(data.scaler.y_max, y[keep].max(0))
    tr = data.splits["train"]
    assert tr.n == keep.sum() and data.invalid == (~valid).sum()
    assert tr.x.min() == -0.5 and tr.x.max() == 0.5 and tr.x.dtype == np.float32
    assert np.abs(data.splits["test"].y).max() < 1.0  # no absurd invalid rows slipped in
    again = prepare(path, (0.64, 0.16, 0.20), scaler=data.scaler.to_dict())  # what resume does
    np.testing.assert_array_equal(again.splits["val"].x, data.splits["val"].x)
    np.testing.assert_allclose(Scaler.from_dict(data.scaler.to_dict()).unscale_y(tr.y), y[keep], rtol=1e-5,
                               atol=1e-3)


def test_missing_and_broken_datasets(tmp_path):
    with pytest.raises(StoreError, match="no dataset"):
        prepare(tmp_path / "none", (0.64, 0.16, 0.2))
    group = zarr.open_group(tmp_path / "partial", mode="w", zarr_format=3)
    group.create_array("initial", data=np.zeros((10, 8)))
    with pytest.raises(StoreError, match="incomplete"):
        prepare(tmp_path / "partial", (0.64, 0.16, 0.2))
    unfinished = write_dataset(tmp_path / "unfinished", n=100)
    zarr.open_group(unfinished, mode="r+").attrs["complete"] = False  # as the simulator leaves a crashed store
    with pytest.raises(StoreError, match="did not finish"):
        prepare(unfinished, (0.64, 0.16, 0.2))


def test_batches_are_a_pure_function_of_seed_level_step():
    batch_plan = BatchPlan(n_rows=1000, batch=64, seed=5)
    whole = batch_plan.indices(level=2, start=0, count=40)  # crosses epoch boundaries (15 steps per epoch)
    again = BatchPlan(n_rows=1000, batch=64, seed=5)
    pieces = np.concatenate([again.indices(2, s, 7) for s in range(0, 42, 7)])[:40]
    np.testing.assert_array_equal(whole, pieces)
    epoch0 = whole[:15].ravel()
    assert len(set(epoch0.tolist())) == epoch0.size  # no row twice within an epoch
    assert not np.array_equal(whole, batch_plan.indices(level=3, start=0, count=40))
    with pytest.raises(StoreError, match="fewer than one batch"):
        BatchPlan(n_rows=10, batch=64, seed=0)
