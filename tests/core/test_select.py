"""Selection: the rule checked against an independent reading of the stored losses, overrides,
only completed levels trusted, bad input refused, and the `select` command's contract."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import zarr

from core.cli import main
from core.errors import MothError
from core.runstore import open_run
from core.schema import SPLITS
from core.select import select, select_run
from fixture_runs import make_fixture_run


def _rule_by_hand(losses: np.ndarray, threshold: float) -> list[int | None]:
    """The seed's rule written the slow, obvious way: scan from the most pruned level down."""
    picks = []
    for net in range(losses.shape[1]):
        pick = None
        for level in range(losses.shape[0] - 1, -1, -1):
            value = losses[level, net]
            if not math.isnan(value) and value <= threshold:
                pick = level
                break
        picks.append(pick)
    return picks


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    """One fixture run for the read-only tests (writing it is the slow part)."""
    runs = tmp_path_factory.mktemp("runs")
    make_fixture_run(runs, "r", nets=6, schedule=(0.5, 0.8, 0.9, 0.93, 0.95), seed=3)
    return runs


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("threshold", [1e-4, 3e-4, 1e-3, 1e-2])
def test_selection_matches_rule_on_stored_losses(shared_run, split, threshold):
    runs_dir = shared_run
    raw = zarr.open_group(runs_dir / "r", mode="r")   # read the store directly, not via runstore
    done = raw.attrs["levels_complete"]
    losses = np.asarray(raw[f"loss/{split}"][:done], dtype=np.float64)
    sparsity = np.asarray(raw["sparsity"][:done])
    selection = select_run(open_run(runs_dir, "r"), threshold, split)
    expected = _rule_by_hand(losses, threshold)
    assert selection.levels == expected
    for choice, level in zip(selection.choices, expected):
        if level is None:
            assert choice.sparsity is None and choice.loss is None
        else:
            assert choice.sparsity == pytest.approx(sparsity[level])
            assert choice.loss == pytest.approx(losses[level, choice.network])
            assert choice.loss <= threshold


def test_rule_on_random_losses_with_nan_and_non_monotone_curves():
    rng = np.random.default_rng(0)
    losses = 10 ** rng.uniform(-5, -1, (9, 40))
    losses[rng.random(losses.shape) < 0.1] = np.nan        # diverged entries never pass
    losses[:, 0] = np.inf
    sparsity = np.linspace(0, 0.95, 9)
    for threshold in (1e-4, 1e-3, 1e-2):
        selection = select(losses, sparsity, threshold)
        assert selection.levels == _rule_by_hand(np.where(np.isinf(losses), np.nan, losses), threshold)
    assert selection.choices[0].level is None and selection.choices[0].best_loss is None


def test_threshold_defaults_to_run_config_and_median(runs_dir):
    run = make_fixture_run(runs_dir, "r", nets=4)
    selection = select_run(run)
    assert selection.threshold == run.config.threshold == 1e-3
    chosen = [c.sparsity for c in selection.choices if c.level is not None]
    assert selection.median_sparsity == pytest.approx(np.median(chosen))


def test_overrides_force_a_level_and_are_flagged(runs_dir):
    run = make_fixture_run(runs_dir, "r", nets=3)
    selection = select_run(run, 1e-3, overrides={1: 4})
    assert selection.choices[1].level == 4 and selection.choices[1].manual
    assert selection.choices[1].loss == pytest.approx(float(run.losses("val")[4, 1]))
    assert not selection.choices[0].manual
    with pytest.raises(MothError, match="level 9"):
        select_run(run, 1e-3, overrides={1: 9})
    with pytest.raises(MothError, match="network 7"):
        select_run(run, 1e-3, overrides={7: 0})


def test_only_completed_levels_are_trusted(runs_dir):
    run = make_fixture_run(runs_dir, "r", nets=4)
    full = select_run(run, 1.0)                           # every level passes at threshold 1
    assert set(full.levels) == {run.levels - 1}
    run.set_attrs(levels_complete=2, status="running")    # later levels exist but are not trusted
    partial = select_run(open_run(runs_dir, "r"), 1.0)
    assert set(partial.levels) == {1}


@pytest.mark.parametrize("bad", [0, -1e-3, float("nan"), float("inf"), "abc"])
def test_bad_thresholds_are_refused(shared_run, bad):
    run = open_run(shared_run, "r")
    with pytest.raises(MothError, match="threshold"):
        select_run(run, bad)


def test_bad_split_and_empty_run(runs_dir):
    run = make_fixture_run(runs_dir, "r", nets=2, levels_complete=0, status="running")
    with pytest.raises(MothError, match="split"):
        select_run(run, 1e-3, "validation")
    with pytest.raises(MothError, match="no completed level"):
        select_run(run, 1e-3)


def _cli(capsys, *argv):
    """The real command line, in-process (the same path as `mothtui ...`)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_select_and_export_import_no_jax():
    code = "import sys, core.select, core.export, core.commands.select; print('jax' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_select_command_json_and_errors(runs_dir, capsys):
    make_fixture_run(runs_dir, "r", nets=4)
    code, out, err = _cli(capsys, "select", "r", "--runs", str(runs_dir), "--json", "--split", "test")
    assert code == 0, err
    document = json.loads(out)
    assert set(document) >= {"run", "threshold", "split", "networks"}
    assert document["run"] == "r" and document["split"] == "test" and document["threshold"] == 1e-3
    assert [n["network"] for n in document["networks"]] == [0, 1, 2, 3]
    assert all({"network", "level", "sparsity", "loss"} <= set(n) for n in document["networks"])
    expected = _rule_by_hand(open_run(runs_dir, "r").losses("test").astype(np.float64), 1e-3)
    assert [n["level"] for n in document["networks"]] == expected

    for argv, needle in [(("select", "nope"), "no run 'nope'"),
                         (("select", "r", "--threshold", "-1"), "threshold"),
                         (("select", "r", "--threshold", "1e-9"), "no network"),
                         (("select", "r", "--split", "dev"), "split")]:
        code, out, err = _cli(capsys, *argv, "--runs", str(runs_dir))
        assert code != 0
        assert len(err.strip().splitlines()) == 1 and needle in err


def test_select_command_overrides_by_hand(runs_dir, capsys):
    make_fixture_run(runs_dir, "r", nets=4)
    code, out, err = _cli(capsys, "select", "r", "--runs", str(runs_dir), "--json", "--override", "1=0",
                          "--override", "3=4")
    assert code == 0, err
    networks = {n["network"]: n for n in json.loads(out)["networks"]}
    assert (networks[1]["level"], networks[1]["manual"], networks[1]["sparsity"]) == (0, True, 0.0)
    assert (networks[3]["level"], networks[3]["manual"]) == (4, True)
    assert networks[0]["manual"] is False
    for bad, needle in [("x", "NET=LEVEL"), ("1=9", "level 9"), ("7=1", "network 7")]:
        code, out, err = _cli(capsys, "select", "r", "--runs", str(runs_dir), "--override", bad)
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


def test_select_json_of_an_empty_selection_is_printed_then_fails(runs_dir, capsys):
    make_fixture_run(runs_dir, "r", nets=3)
    code, out, err = _cli(capsys, "select", "r", "--runs", str(runs_dir), "--json", "--threshold", "1e-9")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no network" in err
    document = json.loads(out)
    assert [n["level"] for n in document["networks"]] == [None, None, None]



def _histogram_by_hand(raw, split: str, threshold: float) -> tuple[dict[float, int], int]:
    """Counts per chosen sparsity straight from the store's arrays, with the slow rule above."""
    done = raw.attrs["levels_complete"]
    losses = np.asarray(raw[f"loss/{split}"][:done], dtype=np.float64)
    sparsity = np.asarray(raw["sparsity"][:done], dtype=np.float64)
    counts = {float(s): 0 for s in sparsity}
    none = 0
    for level in _rule_by_hand(losses, threshold):
        if level is None:
            none += 1
        else:
            counts[float(sparsity[level])] += 1
    return counts, none


@pytest.mark.parametrize("threshold", [1e-4, 3e-4, 1e-3])
def test_select_json_histogram_and_loss_by_level_match_the_store(shared_run, capsys, threshold):
    raw = zarr.open_group(shared_run / "r", mode="r")
    code, out, _ = _cli(capsys, "select", "r", "--runs", str(shared_run), "--json", "--threshold", str(threshold))
    doc = json.loads(out)
    counts, none = _histogram_by_hand(raw, "val", threshold)
    hist = doc["histogram"]
    assert {b["sparsity"]: b["count"] for b in hist["bins"]} == pytest.approx(counts)
    assert [b["level"] for b in hist["bins"]] == list(range(len(counts)))
    assert hist["none"] == none and sum(counts.values()) + none == len(doc["networks"])
    assert code == (0 if none < len(doc["networks"]) else 1)
    # Median / p10 / p90 per level, recomputed by sorting (numpy's linear interpolation by hand).
    losses = np.asarray(raw["loss/val"][:raw.attrs["levels_complete"]], dtype=np.float64)
    for row, values in zip(doc["loss_by_level"], losses):
        ordered = np.sort(values)

        def quantile(q):
            pos = q * (ordered.size - 1)
            low = int(math.floor(pos))
            high = min(low + 1, ordered.size - 1)
            return ordered[low] + (pos - low) * (ordered[high] - ordered[low])
        assert row["median"] == pytest.approx(quantile(0.5), rel=1e-12)
        assert row["p10"] == pytest.approx(quantile(0.1), rel=1e-12)
        assert row["p90"] == pytest.approx(quantile(0.9), rel=1e-12)
        assert row["finite"] == values.size
    assert len(doc["loss_by_level"]) == losses.shape[0]


def test_select_text_shows_the_histogram_and_the_loss_table(shared_run, capsys):
    raw = zarr.open_group(shared_run / "r", mode="r")
    code, out, _ = _cli(capsys, "select", "r", "--runs", str(shared_run), "--threshold", "3e-4")
    assert code == 0
    counts, none = _histogram_by_hand(raw, "val", 3e-4)
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("chosen sparsity over 6 networks"))
    bars = lines[start + 1:start + 2 + len(counts)]
    for line, (sparsity, count) in zip(bars, list(counts.items()) + [("none", none)]):
        label = "none" if sparsity == "none" else f"{sparsity:.3f}"
        assert line.split()[0] == label and int(line.split()[-1]) == count
        assert (line.count("█") > 0) == (count > 0)
    table = lines[lines.index("val loss per level over the ensemble:") + 2:]
    losses = np.asarray(raw["loss/val"][:raw.attrs["levels_complete"]], dtype=np.float64)
    assert len(table) == losses.shape[0]
    for line, values in zip(table, losses):
        level, _, p10, median, p90, nets = line.split()
        assert float(median) == pytest.approx(np.median(values), rel=5e-3)  # printed to 3 significant digits
        assert float(p10) == pytest.approx(np.percentile(values, 10), rel=5e-3)  # printed to 3 significant digits
        assert float(p90) == pytest.approx(np.percentile(values, 90), rel=5e-3)  # printed to 3 significant digits
        assert int(nets) == values.size


def test_histogram_counts_overrides_and_leaves_out_diverged_losses():
    losses = np.array([[1e-4, 2e-4, np.nan, 5e-4], [5e-4, 3e-3, np.nan, 2e-3], [2e-3, 1e-2, np.nan, 1e-1]])
    selection = select(losses, np.array([0.0, 0.5, 0.9]), 1e-3, overrides={3: 2})
    hist = selection.histogram()
    assert [b["count"] for b in hist["bins"]] == [1, 1, 1] and hist["none"] == 1
    assert [row.finite for row in selection.loss_by_level] == [3, 3, 3]
    assert selection.loss_by_level[0].median == pytest.approx(2e-4)
    empty = select(np.full((2, 2), np.nan), np.array([0.0, 0.5]), 1e-3)
    assert empty.histogram()["none"] == 2 and empty.loss_by_level[0].median is None
