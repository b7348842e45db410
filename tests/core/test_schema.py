"""One meaning per name: the split, input and output names are defined once (core.schema), the
stores are written with them, and only core/runstore.py indexes a run's zarr group."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import core.data
import core.runstore
import core.select
from core import schema
from core.errors import MothError, StoreError
from fixture_runs import make_fixture_run

CORE = Path(core.runstore.__file__).resolve().parent


def test_names_have_one_definition():
    assert core.select.SPLITS is schema.SPLITS and core.runstore.SPLITS is schema.SPLITS
    assert core.runstore.INPUT_NAMES is schema.INPUT_NAMES and core.runstore.OUTPUT_NAMES is schema.OUTPUT_NAMES
    assert (core.data.N_INPUTS, core.data.N_OUTPUTS) == (10, 7)
    assert list(core.data.split_ranges(100, (0.6, 0.2, 0.2))) == list(schema.SPLITS)


def test_stores_are_written_with_those_names(runs_dir):
    run = make_fixture_run(runs_dir, "r", nets=2)
    assert run.attrs["input_names"] == list(schema.INPUT_NAMES)
    assert run.attrs["output_names"] == list(schema.OUTPUT_NAMES)
    assert list(run.row_ranges) == list(schema.SPLITS)
    for name in schema.SPLITS:
        assert run.losses(name).shape == (run.levels_complete, 2)


def test_an_unknown_split_is_one_line_naming_the_choices(runs_dir):
    with pytest.raises(MothError, match=r"^unknown split 'dev' \(use train, val or test\)$"):
        schema.check_split("dev")
    run = make_fixture_run(runs_dir, "r", nets=2)
    with pytest.raises(StoreError, match="unknown split 'dev'"):
        run.losses("dev")


def test_only_the_run_store_indexes_a_runs_zarr_group():
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        rel = path.relative_to(CORE).as_posix()
        if rel == "runstore.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.group\[", line):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "index runs through core.runstore.Run accessors:\n" + "\n".join(offenders)
