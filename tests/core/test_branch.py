"""Branch runs (`mothtui train --from RUN:LEVEL`, core.branch) on real runs of a tiny network.

A branch's level 0 is its parent's level as stored (copied, evaluated, not trained); its later
levels prune further under its own schedule and per-layer options; it records its parent, which
`runs --json`, `compare --json` and a branch of the branch show. Bad input is one line and exit 2
with nothing created. The kill/resume equality and ownership of a branch are in the slow test at
the end (real processes, as test_train_cli.py does for plain runs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from core.branch import config_digest
from core.cli import main
from core.engine.prune import prune_count
from core.runstore import StoredLevel, open_run
from engine_fixtures import write_dataset

TINY = ["--preset", "smoke", "--set", "hidden=[12, 8]", "--set", "max_steps=30", "--set", "steps_per_call=15",
        "--set", "early_stop_every=1000000", "--set", "schedule=[0.5, 0.8]", "--set", "eval_batch=512",
        "--set", "batch=32", "--quiet"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("branch") / "dataset", n=2000, seed=6)


def _train(runs, *args) -> int:
    return main(["train", *args, "--runs", str(runs)])


def _json(capsys, *argv) -> dict:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def _pruned(mask: np.ndarray) -> np.ndarray:
    """(n,) pruned weights of each network of one layer's `(n, in, out)` mask."""
    return (~mask).reshape(mask.shape[0], -1).sum(1)


def test_a_branch_starts_from_the_stored_level_and_prunes_only_the_hidden_layers_further(runs_dir, dataset, capsys):
    assert _train(runs_dir, *TINY, "--set", f"dataset={dataset}", "--id", "parent") == 0
    assert _train(runs_dir, "--from", "parent:2", "--set", "schedule=[0.9, 0.95]", "--set", "prune_first_layer=false",
                  "--set", "prune_output_layer=false", "--id", "hidden", "--quiet") == 0
    parent, branch = open_run(runs_dir, "parent"), open_run(runs_dir, "hidden")
    assert branch.status == "done" and branch.levels_complete == 3
    assert branch.sparsity.tolist() == [0.8, 0.9, 0.95]  # level 0 is the parent level's target
    assert branch.attrs["parent"] == {"run": "parent", "level": 2, "sparsity": 0.8, "moments": None,
                                      "config_digest": config_digest(parent.attrs["config"])}
    assert branch.attrs["scaler"] == parent.attrs["scaler"]
    start, level0 = parent.level(2), branch.level(0)
    for name, copied, stored in zip(StoredLevel._fields, level0, start):  # copied, not retrained
        for k in range(3):
            np.testing.assert_array_equal(copied[k], stored[k], err_msg=f"{name} {k}")
    np.testing.assert_array_equal(branch.losses("val")[0], parent.losses("val")[2])  # same data, same scaler
    assert branch.group["train/steps"][0].tolist() == [0, 0] and branch.group["train/steps"][1].tolist() == [30, 30]
    for level, target in ((1, 0.9), (2, 0.95)):
        masks = branch.weight_masks(level)
        np.testing.assert_array_equal(masks[0], start.weight_masks[0])  # first layer as it came
        np.testing.assert_array_equal(masks[2], start.weight_masks[2])  # output layer as it came
        assert _pruned(masks[1]).tolist() == [prune_count(target, 12 * 8)] * 2
        assert not np.any(masks[1] & ~branch.weight_masks(level - 1)[1]), "a pruned weight came back"

    # a branch of the branch, with the output layer capped below where it already is: it stays
    assert _train(runs_dir, "--from", "hidden:1", "--set", "schedule=[0.97]", "--set", "max_layer_sparsity=[1, 1, 0.5]",
                  "--set", "prune_first_layer=true", "--id", "twig", "--quiet") == 0
    twig = open_run(runs_dir, "twig")
    assert twig.sparsity.tolist() == [0.9, 0.97] and twig.attrs["parent"]["run"] == "hidden"
    assert twig.config.prune_first_layer and not twig.config.prune_output_layer  # the parent's, then --set
    np.testing.assert_array_equal(twig.level(0).weights[1], branch.level(1).weights[1])
    masks = twig.weight_masks(1)
    assert _pruned(masks[0]).tolist() == [prune_count(0.97, 10 * 12)] * 2
    np.testing.assert_array_equal(masks[2], start.weight_masks[2])  # left out (and over its cap): as it came

    runs = {r["id"]: r for r in _json(capsys, "runs", "--runs", str(runs_dir), "--json")["runs"]}
    assert runs["hidden"]["parent"] == {"run": "parent", "level": 2}
    assert runs["twig"]["parent"] == {"run": "hidden", "level": 1} and runs["parent"]["parent"] is None
    assert main(["runs", "--runs", str(runs_dir)]) == 0
    assert "from hidden:1" in capsys.readouterr().out
    compared = _json(capsys, "compare", "parent", "hidden", "twig", "--runs", str(runs_dir), "--json")
    assert [r["parent"] for r in compared["runs"]] == [None, {"run": "parent", "level": 2},
                                                       {"run": "hidden", "level": 1}]
    assert main(["compare", "parent", "twig", "--runs", str(runs_dir)]) == 0
    assert "lineage: twig from hidden level 1" in capsys.readouterr().out

    # without --set schedule a branch goes on with its parent's targets beyond its level
    assert _train(runs_dir, "--from", "parent:1", "--id", "again", "--quiet") == 0
    assert open_run(runs_dir, "again").sparsity.tolist() == [0.5, 0.8]


def test_a_carried_branch_goes_on_with_its_parents_adam_state_when_the_parent_still_holds_it(runs_dir, dataset):
    assert _train(runs_dir, *TINY, "--set", f"dataset={dataset}", "--set", "optimizer_state=carried", "--id", "p") == 0
    parent = open_run(runs_dir, "p")
    assert parent.moments(2)[0] == 90
    for level, count in ((2, 90), (1, 60), (0, None)):  # level 0's slot was written over by level 2
        run_id = f"b{level}"
        assert _train(runs_dir, "--from", f"p:{level}", "--set", "schedule=[0.9]", "--id", run_id, "--quiet") == 0
        branch = open_run(runs_dir, run_id)
        assert branch.attrs["parent"]["moments"] == count
        assert branch.moments(0)[0] == (count or 0)
        assert branch.moments(1)[0] == (count or 0) + 30  # the step count goes on (fresh: from 0)


def test_bad_branches_are_one_line_exit_2_and_create_nothing(runs_dir, dataset, capsys):
    assert _train(runs_dir, *TINY, "--set", f"dataset={dataset}", "--id", "p") == 0
    parent = open_run(runs_dir, "p", mode="r+")
    parent.set_attrs(levels_complete=2, status="cancelled")  # level 2 is not complete
    before = sorted(p.name for p in runs_dir.iterdir())
    cases = [
        (["--from", "nosuch:3"], "no run 'nosuch'"),
        (["--from", "p:2"], "level 2 of run 'p' is not complete"),
        (["--from", "p"], "expected RUN:LEVEL"),
        (["--from", "p:1", "--set", "hidden=[16, 16]"], "'hidden'"),
        (["--from", "p:1", "--set", "nets=3"], "'nets'"),
        (["--from", "p:1", "--preset", "quick"], "'nets'"),
        (["--from", "p:1", "--set", "schedule=[0.5, 0.9]", "--id", "b"], "'schedule'"),  # p:1 is at 0.5 already
        (["--from", "p:1", "--set", "max_layer_sparsity=[1]"], "'max_layer_sparsity'"),
    ]
    for args, needle in cases:
        capsys.readouterr()
        assert _train(runs_dir, *args, "--quiet") == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mothtui: ") and needle in lines[0], (args, lines)
    assert sorted(p.name for p in runs_dir.iterdir()) == before
    # from the parent's last target with no schedule named: nothing to go on to
    parent.set_attrs(levels_complete=3, status="done")
    capsys.readouterr()
    assert _train(runs_dir, "--from", "p:2", "--quiet") == 2
    assert "'schedule'" in capsys.readouterr().err
    assert sorted(p.name for p in runs_dir.iterdir()) == before


def test_a_branch_resumed_at_level_0_reads_its_parent_again_and_equals_one_run_straight(runs_dir, dataset, capsys):
    assert _train(runs_dir, *TINY, "--set", f"dataset={dataset}", "--id", "p") == 0
    for run_id in ("straight", "again"):
        assert _train(runs_dir, "--from", "p:1", "--set", "schedule=[0.9]", "--id", run_id, "--quiet") == 0
    again = open_run(runs_dir, "again", mode="r+")
    again.set_attrs(levels_complete=0, status="cancelled")  # as if stopped before its level 0 was complete
    assert main(["resume", "again", "--quiet", "--runs", str(runs_dir)]) == 0
    a, b = open_run(runs_dir, "again"), open_run(runs_dir, "straight")
    for level in range(2):
        for name, mine, theirs in zip(StoredLevel._fields, a.level(level), b.level(level)):
            for k, (array, other) in enumerate(zip(mine, theirs, strict=True)):
                np.testing.assert_array_equal(array, other, err_msg=f"{level} {name} {k}")
    np.testing.assert_array_equal(a.losses("val"), b.losses("val"))
    # a parent that is gone, or not the run the branch was made from, is one line
    again.set_attrs(levels_complete=0, status="cancelled")
    parent = open_run(runs_dir, "p", mode="r+")
    parent.set_attrs(config={**parent.attrs["config"], "seed": 99})
    capsys.readouterr()
    assert main(["resume", "again", "--quiet", "--runs", str(runs_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not the run it was branched from" in err[0], err


# ---- kill / resume equality and ownership of a branch: real processes -----------------------------

ENV = dict(os.environ)


def _cli(*args, runs):
    return subprocess.run([sys.executable, "-m", "core", *args, "--runs", str(runs)], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, env=ENV)


def _branch_process(runs, run_id):
    return subprocess.Popen([sys.executable, "-m", "core", "train", "--from", "parent:1", "--set", "max_steps=3000",
                             "--set", "steps_per_call=50", "--set", "schedule=[0.6, 0.8, 0.9, 0.95]",
                             "--set", "prune_output_layer=false", "--runs", str(runs), "--id", run_id, "--quiet"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=ENV)


@pytest.mark.slow
def test_a_branch_killed_and_resumed_equals_one_run_straight(runs_dir, dataset, tmp_path, capsys):
    from test_train_cli import _same, _wait_for_level_end

    global ENV
    ENV = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    assert _train(runs_dir, *TINY, "--set", f"dataset={dataset}", "--id", "parent") == 0
    straight = _branch_process(runs_dir, "straight")
    out, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err

    proc = _branch_process(runs_dir, "killed")
    _wait_for_level_end(runs_dir / "killed", 1, proc)  # level 0 (the copy) and one pruned level are stored
    capsys.readouterr()
    assert main(["resume", "killed", "--runs", str(runs_dir)]) == 2  # the branch has one owner, as any run
    busy = capsys.readouterr().err.strip().splitlines()
    assert len(busy) == 1 and "mothtui train" in busy[0], busy
    assert proc.poll() is None, "the branch ended before the kill: give its levels more steps"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed = open_run(runs_dir, "killed")
    assert killed.levels_complete >= 2 and killed.status == "running"
    resumed = _cli("resume", "killed", "--quiet", runs=runs_dir)
    assert resumed.returncode == 0, resumed.stderr
    a, b = open_run(runs_dir, "killed"), open_run(runs_dir, "straight")
    assert a.status == "done" and a.attrs["parent"] == b.attrs["parent"]
    _same(a, b)
    for k in range(3):
        np.testing.assert_array_equal(a.group[f"layer_{k}/weight_mask"][:], b.group[f"layer_{k}/weight_mask"][:])
