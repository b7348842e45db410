"""core.paths, the one owner of every artefact path: each helper gives the path docs/store-format.md
specifies (the literals here are the on-disk contract, spelled on purpose)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core import paths
from core.errors import StoreError

RUNS = Path("store")
RUN = RUNS / "quick-1"


def test_inside_a_run():
    assert paths.run_dir(RUNS, "quick-1") == RUN
    assert paths.meta_file(RUN) == RUN / "zarr.json"
    assert paths.events_file(RUN) == RUN / "events.jsonl"
    assert paths.owner_file(RUN) == RUN / "owner.json"
    assert paths.engine_log(RUN) == RUN / "engine.log"
    assert paths.engine_log(RUN, 3) == RUN / "engine.3.log"
    checkpoint = paths.checkpoint_file(RUN, 4, 8)
    assert checkpoint == RUN / "checkpoint" / "nets-4-8.npz"
    assert paths.checkpoint_staging(checkpoint) == RUN / "checkpoint" / ".nets-4-8.npz.writing"
    assert paths.slice_marker(RUN, 2, 0, 4) == RUN / "slices" / "level_002" / "nets_0-4.json"
    assert paths.process_marker(RUN, 1) == RUN / "slices" / "process_1.json"
    assert paths.analysis_dir(RUN) == RUN / "analysis"
    assert paths.analysis_dir(RUN, paths.EXTRAPOLATION_GROUP) == RUN / "extrapolation"
    assert paths.deleted_file(RUN) == RUN / "deleted.json"


def test_beside_the_runs():
    assert paths.log_file(RUNS, "quick-1") == RUNS / ".logs" / "quick-1.log"
    assert paths.trash_entry(RUNS, "quick-1") == RUNS / ".trash" / "quick-1"
    assert paths.trash_entry(RUNS, "quick-1", 2) == RUNS / ".trash" / "quick-1~2"
    assert paths.trashed_id(RUNS / ".trash" / "quick-1~2") == "quick-1"
    assert paths.dataset_dir(RUNS, "sim_n1") == RUNS / ".datasets" / "sim_n1"
    staging = paths.dataset_staging(RUNS / ".datasets" / "sim_n1", 77)
    assert staging == RUNS / ".datasets" / ".sim_n1.writing-77" and paths.dataset_staging_pid(staging) == 77
    assert paths.chunks_done_dir(staging) == staging / ".chunks_done"
    assert paths.sweep_file(RUNS, "s1") == RUNS / ".sweeps" / "s1.json"
    assert paths.queue_file(RUNS) == RUNS / ".queue" / "queue.json"
    assert paths.queue_lock(RUNS) == RUNS / ".queue" / "queue.lock"
    assert paths.supervisor_dir(RUNS) == RUNS / ".queue" / "supervisor"
    assert paths.supervisor_log(RUNS) == RUNS / ".queue" / "supervisor.log"
    assert paths.disk_cache_file(RUNS) == RUNS / ".cache" / "disk.json"
    assert paths.report_dir(RUNS, "quick-1") == RUNS / ".reports" / "quick-1"
    assert paths.export_dir(RUNS, "quick-1", "0.9", "val") == RUNS.absolute().parent / "exports" / "quick-1_0.9_val"


def test_report_and_export_files():
    out = Path("out")
    assert paths.figure_files(out, "sparsity") == [out / "sparsity.svg", out / "sparsity.png"]
    assert (paths.REPORT_INDEX, paths.REPORT_NUMBERS, paths.EXPORT_MANIFEST) == ("index.md", "report.json",
                                                                                  "manifest.json")
    assert (paths.export_stem(7), paths.export_compact_stem(7), paths.export_edges(7)) == \
        ("net_007", "compact/net_007", "edges/net_007.csv")
    assert paths.partial_file(out / "net_007.npz") == out / "net_007.npz.partial"


def test_temporary_siblings():
    target = RUN / "owner.json"
    tmp = paths.tmp_sibling(target)
    assert tmp == RUN / f".owner.json.{os.getpid()}.tmp" and paths.is_tmp_of(tmp.name, "owner.json")
    assert paths.tmp_sibling(RUN / "3", per_process=False) == RUN / ".3.tmp"
    assert not paths.is_tmp_of("owner.json", "owner.json")


@pytest.mark.parametrize("bad", ["", "../escape", ".hidden", "a/b", "a\\b"])
def test_ids_that_would_escape_the_store_are_refused(bad):
    with pytest.raises(StoreError, match="bad run id"):
        paths.run_dir(RUNS, bad)
    with pytest.raises(StoreError, match="bad run id"):
        paths.sweep_file(RUNS, bad)
