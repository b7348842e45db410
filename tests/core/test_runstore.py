"""The run store: pre-sized arrays, write then complete, readers trust completed levels only."""

import dataclasses
import json
import os

import numpy as np
import pytest

from core.config import PRESETS, from_dict
from core.errors import StoreError
from core.owner import OwnerRecord, write_record
from core.runstore import Run, list_runs, open_run, run_path
from core.schema import SPLITS

SCALER = {"x_min": [0.0] * 10, "x_max": [1.0] * 10, "y_min": [0.0] * 7, "y_max": [1.0] * 7}
SPLIT = {"train": [0, 64], "val": [64, 80], "test": [80, 100]}


def _config(**kw):
    return from_dict({**PRESETS["smoke"], **kw})


def _level_arrays(cfg, value):
    sizes = cfg.layer_sizes
    weights = [np.full((cfg.nets, a, b), value, np.float32) for a, b in zip(sizes, sizes[1:])]
    biases = [np.full((cfg.nets, b), value, np.float32) for b in sizes[1:]]
    return (weights, [np.ones(w.shape, bool) for w in weights], biases, [np.ones(b.shape, bool) for b in biases],
            {s: np.full(cfg.nets, value, np.float32) for s in SPLITS})


def test_create_write_complete_read(runs_dir):
    cfg = _config(nets=4)
    run = Run.create(runs_dir / "r", cfg, dataset="d", split=SPLIT, scaler=SCALER)
    assert run.status == "running" and run.levels_complete == 0
    assert run.group["layer_0/weight"].shape == (cfg.levels, 4, 10, cfg.hidden[0])
    run.write_level(0, *_level_arrays(cfg, 1.5), extra={"train/steps": np.arange(4)})
    with pytest.raises(StoreError, match="not complete"):
        run.level(0)  # written but not yet complete: readers must not trust it
    run.complete_level(0)
    reopened = open_run(runs_dir, "r")
    assert reopened.levels_complete == 1 and reopened.losses("val").shape == (1, 4)
    assert np.all(reopened.level(0).weights[1] == 1.5)
    some = reopened.level(0, [1, 3])  # a StoredLevel: per layer, the networks asked for
    assert [w.shape[0] for w in some.weights] == [2] * (len(cfg.layer_sizes) - 1) and some.bias_masks[0].all()
    one = some.network(1)  # network 3, without the network axis
    assert one.weights[0].shape == (10, cfg.hidden[0]) and one.biases[-1].shape == (7,)
    assert reopened.layer(0, 0, [3]).weight_mask.shape == (1, 10, cfg.hidden[0])
    assert reopened.group["train/steps"][0].tolist() == [0, 1, 2, 3]
    assert reopened.row_ranges == {k: tuple(v) for k, v in SPLIT.items()} and reopened.config == cfg


def test_slices_of_networks_write_their_own_rows(runs_dir):
    cfg = _config(nets=4)
    run = Run.create(runs_dir / "r", cfg, dataset="d", split=SPLIT, scaler=SCALER, chunk_nets=2)
    w, wm, b, bm, losses = _level_arrays(cfg, 2.0)
    half = lambda xs: [x[:2] for x in xs]  # noqa: E731
    run.write_level(0, half(w), half(wm), half(b), half(bm), {k: v[:2] for k, v in losses.items()}, nets=slice(2, 4))
    run.complete_level(0)
    val = run.losses("val")[0]
    assert np.isnan(val[:2]).all() and np.all(val[2:] == 2.0)


def test_existing_run_is_never_overwritten(runs_dir):
    cfg = _config()
    Run.create(runs_dir / "r", cfg, dataset="d", split=SPLIT, scaler=SCALER)
    before = (runs_dir / "r" / "zarr.json").read_text()
    with pytest.raises(StoreError, match="already exists"):
        Run.create(runs_dir / "r", cfg, dataset="d", split=SPLIT, scaler=SCALER)
    assert (runs_dir / "r" / "zarr.json").read_text() == before


def test_damaged_and_foreign_stores(runs_dir):
    (runs_dir / "junk").mkdir()
    (runs_dir / "junk" / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group",
                                                             "attributes": {}}))
    with pytest.raises(StoreError, match="not a mothtui run"):
        open_run(runs_dir, "junk")
    with pytest.raises(StoreError, match="no run"):
        open_run(runs_dir, "missing")
    with pytest.raises(StoreError, match="bad run id"):
        run_path(runs_dir, "../escape")
    (summary,) = list_runs(runs_dir)
    assert summary.status == "damaged"


def test_running_with_a_dead_owner_is_interrupted(runs_dir):
    run = Run.create(runs_dir / "r", _config(), dataset="d", split=SPLIT, scaler=SCALER)
    me = OwnerRecord.of_process(os.getpid(), "mothtui train")
    write_record(run.path, dataclasses.replace(me, pid=2 ** 22 + 12345))  # no such process
    assert list_runs(runs_dir)[0].status == "interrupted"
    write_record(run.path, me)  # this process: alive
    assert list_runs(runs_dir)[0].status == "running" and list_runs(runs_dir)[0].pid == os.getpid()


def _corrupt_copies(runs_dir):
    """A good synthetic run and copies of it broken the ways disks and people break them."""
    import json
    import shutil

    from fixture_runs import make_fixture_run

    make_fixture_run(runs_dir, "good", nets=2, hidden=(8,), schedule=(0.5, 0.8), status="cancelled")
    cases = {}

    def copy(name):
        shutil.copytree(runs_dir / "good", runs_dir / name)
        cases[name] = runs_dir / name
        return runs_dir / name

    def set_attr(path, **values):
        meta = json.loads((path / "zarr.json").read_text())
        meta["attributes"].update(values)
        (path / "zarr.json").write_text(json.dumps(meta))

    set_attr(copy("lc_text"), levels_complete="x")
    set_attr(copy("lc_beyond"), levels_complete=7)
    (copy("loss_meta") / "loss" / "val" / "zarr.json").write_text("{trunc")
    shutil.rmtree(copy("lost_chunks") / "layer_0" / "weight" / "c")
    for chunk in (copy("bad_chunk") / "loss" / "val" / "c").rglob("*"):
        if chunk.is_file():
            chunk.write_bytes(b"garbage")
    shutil.rmtree(copy("no_losses") / "loss")
    return cases


def test_damaged_runs_give_one_line_and_are_never_written(runs_dir, capsys):
    from core.cli import main

    cases = _corrupt_copies(runs_dir)
    for name, path in cases.items():
        before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
        commands = [["export", name, "--threshold", "1", "--out", str(runs_dir.parent / f"out_{name}")],
                    ["resume", name]]
        if name != "lost_chunks":  # select reads only the losses, which are intact there
            commands.append(["select", name, "--threshold", "1"])
        for argv in commands:
            code = main([*argv, "--runs", str(runs_dir)])
            err = capsys.readouterr().err
            assert code == 2, (name, argv, err)
            assert len(err.strip().splitlines()) == 1, (name, argv, err)
            # resume reads only what it continues from (then stops at the fixture's missing dataset)
            assert "damaged" in err or (argv[0] == "resume" and name == "bad_chunk"), (name, argv, err)
        after = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
        assert after == before, name  # not a byte changed, not a file added
        assert not (runs_dir.parent / f"out_{name}").exists()


def test_runs_list_shows_broken_layouts_as_damaged(runs_dir, tmp_path):
    from core.runlist import list_runs

    _corrupt_copies(runs_dir)
    status = {s.run_id: (s.status, s.damaged) for s in list_runs(runs_dir)}
    for name in ("lc_text", "lc_beyond", "no_losses"):
        assert status[name][0] == "damaged" and status[name][1], name
    assert status["good"] == ("cancelled", None)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(StoreError, match="not a directory"):
        list_runs(tmp_path / "a_file")


def test_a_checkpoint_survives_a_kill_in_the_middle_of_writing_the_next(tmp_path):
    from fixture_runs import make_fixture_run

    run = make_fixture_run(tmp_path, "ckpt", levels_complete=2, status="running")
    leaves = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array(7, np.int32)]
    run.write_checkpoint(2, 300, slice(None), leaves)
    saved = run.checkpoint()
    assert (saved.level, saved.step) == (2, 300)
    for got, want in zip(saved.leaves, leaves):
        np.testing.assert_array_equal(got, want)
    # a writer killed mid-write leaves its temporary file; the previous checkpoint is what counts
    (run.path / "checkpoint" / ".nets-0-4.npz.writing").write_bytes(b"PK\x03\x04 half a zip")
    assert run.checkpoint().step == 300
    # a checkpoint of a level that completed since (or of another level) is not the level in progress
    run.write_checkpoint(1, 50, slice(None), leaves)
    assert run.checkpoint() is None
    run.clear_checkpoint()
    assert run.checkpoint() is None
