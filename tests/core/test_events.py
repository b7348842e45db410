"""The progress events: typed records that keep the file format, and the one reducer, on a real run.

A real smoke-sized run (the engine on the stand-in dataset) writes `events.jsonl` while the
console display and a collector listen as sinks: what the sinks got, what the file holds and what
the store holds must tell the same story, and the display must hold the same state the app folds.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from core.commands.display import RichDisplay
from core.config import PRESETS, from_dict
from core.data import prepare
from core.events import (EVENTS_FILE, EventTail, EventWriter, LevelEnd, LevelStart, RunEnd, RunProgress, RunStart,
                         StepProgress, event_span, fold, make, parse_line, read_events, reduce)
from core.formatting import fmt_duration
from core.runstore import Run
from engine_fixtures import write_dataset


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A finished 3-level run of 2 small networks, with the console display and a collector as sinks."""
    from core.engine.loop import Engine, run_levels

    root = tmp_path_factory.mktemp("events_run")
    dataset = write_dataset(root / "dataset", n=1500, seed=3)
    config = from_dict({**PRESETS["smoke"], "dataset": str(dataset), "nets": 2, "hidden": [8],
                        "batch": 32, "schedule": [0.5, 0.8], "epochs_per_level": 1.0,
                        "steps_per_call": 8, "eval_batch": 256})
    data = prepare(dataset, config.splits)
    run = Run.create(root / "runs" / "smoke", config, dataset=data.dataset, split=data.row_ranges,
                     scaler=data.scaler.to_dict())
    console_text = io.StringIO()
    display = RichDisplay(config.levels, console=Console(file=console_text, width=200))
    got: list = []
    with display:
        run_levels(run, Engine(config, data), sinks=[got.append, display])
    return Run.open(run.path), got, display, console_text.getvalue()


def test_the_sinks_get_what_the_file_holds(smoke_run):
    run, got, _, _ = smoke_run
    assert read_events(run.path) == got
    kinds = [type(e) for e in got]
    assert kinds[0] is RunStart and kinds[-1] is RunEnd
    assert kinds.count(LevelStart) == kinds.count(LevelEnd) == run.levels
    # every level reports progress at least once (at its last chunk), between its start and end
    for level in range(run.levels):
        inside = [e for e in got if isinstance(e, StepProgress) and e.level == level]
        assert inside and inside[-1].step <= inside[-1].max_steps


def test_every_line_of_a_real_run_round_trips_byte_for_byte(smoke_run):
    run, _, _, _ = smoke_run
    lines = (run.path / EVENTS_FILE).read_text().splitlines()
    assert len(lines) > 2 * run.levels + 2
    for line in lines:
        record = parse_line(line)
        assert record is not None and record.to_json() == line


def test_the_reducer_on_a_real_run_agrees_with_the_store(smoke_run):
    run, got, _, _ = smoke_run
    state = fold(read_events(run.path))
    assert state.ended and state.status == "done" and state.run == run.run_id
    assert (state.nets, state.levels, state.level) == (run.nets, run.levels, run.levels - 1)
    assert [e.level for e in state.finished] == list(range(run.levels))
    val = run.losses("val")
    for level, end in enumerate(state.finished):
        np.testing.assert_array_equal(np.asarray(end.loss["val"], np.float32), val[level])
        np.testing.assert_array_equal(end.steps, np.asarray(run.group["train/steps"][level]))
    last = [e for e in got if isinstance(e, StepProgress)][-1]
    assert state.step == last.step and state.losses == last.loss
    assert (state.active, state.samples_per_s, state.eta_s) == (None, None, None)  # it ended
    assert state.events == len(got) and state.last_t == got[-1].t and state.started_t == got[0].t


def test_the_console_display_holds_the_state_the_app_folds(smoke_run):
    run, got, display, text = smoke_run
    assert display.state == fold(got)
    lines = text.splitlines()
    level_lines = [line for line in lines if line.startswith("level ")]
    assert len(level_lines) == run.levels
    for line, end in zip(level_lines, display.state.finished):
        assert f"val median {end.median_loss('val'):.2e}" in line
    assert lines[-1] == f"run done: {run.levels} levels complete"


#: Lines exactly as the engine wrote them before events were typed (the file format other tools read).
FILE_AS_WRITTEN = [
    '{"t":1796150000.125,"event":"run_start","run":"r1","nets":3,"levels":4,"pid":4242,"resumed_from":null,'
    '"max_steps":800,"devices":2}',
    '{"t":1796150001.5,"event":"level_start","level":0,"sparsity":0.0,"max_steps":800}',
    '{"t":1796150002.0,"event":"progress","level":0,"step":96,"max_steps":800,"active":2,'
    '"loss":[0.0012,null,0.003],"samples_per_s":61440.5,"eta_s":3720.4}',
    '{"t":1796150003.0,"event":"level_end","level":0,"sparsity":0.0,"steps":[800,800,96],"stopped_early":1,'
    '"diverged":1,"loss":{"train":[0.001,0.002,null],"val":[0.0011,0.0021,null],"test":[0.0012,0.0022,null]},'
    '"seconds":12.345}',
    '{"t":1796150004.0,"event":"run_end","status":"cancelled","message":"cancelled; 1 levels complete"}',
]


def test_typed_records_read_and_write_the_same_lines():
    records = [parse_line(line) for line in FILE_AS_WRITTEN]
    assert [type(r) for r in records] == [RunStart, LevelStart, StepProgress, LevelEnd, RunEnd]
    assert [r.to_json() for r in records] == FILE_AS_WRITTEN
    start, _, progress, end, stop = records
    assert (start.nets, start.resumed_from, start.max_steps, start.devices) == (3, None, 800, 2)
    assert progress.loss == (0.0012, None, 0.003) and progress.eta_s == 3720.4
    assert end.loss["val"] == (0.0011, 0.0021, None) and end.median_loss("val") == pytest.approx(0.0016)
    assert stop.status == "cancelled" and stop.event == "run_end"
    # a record made by the writer, from the engine's keyword fields, is the same line
    assert make("progress", 1796150002.0, level=0, step=96, max_steps=800, active=2,
                loss=[0.0012, float("nan"), 0.003], samples_per_s=61440.5, eta_s=3720.4) == progress


def test_readers_skip_what_they_cannot_parse_and_keep_what_they_do_not_know(tmp_path):
    future = '{"t":5.0,"event":"run_end","status":"done","message":"ok","host":"node-3"}'
    assert parse_line(future).to_json() == future and parse_line(future).extra == {"host": "node-3"}
    for bad in ('{"t":1.0,"event":"level_start","level":"two","sparsity":0.5,"max_steps":8}',  # wrong type
                '{"t":1.0,"event":"level_start","level":true,"sparsity":0.5,"max_steps":8}',   # a bool is no int
                '{"t":1.0,"event":"level_start","sparsity":0.5,"max_steps":8}',               # field missing
                '{"t":1.0,"event":"checkpoint","level":2}',                                   # unknown kind
                '[1, 2]', '{"t":1.0,"event":"run_end","sta', b'\xff\xfe'):
        assert parse_line(bad) is None, bad
    with open(tmp_path / EVENTS_FILE, "w") as f:
        f.write(FILE_AS_WRITTEN[0] + "\n" + '{"t":9.0,"event":"checkpoint"}\n' + FILE_AS_WRITTEN[1][:30])
    tail = EventTail(tmp_path)
    assert [type(e) for e in tail.read()] == [RunStart]  # the half-written last line is not trusted
    with open(tmp_path / EVENTS_FILE, "a") as f:
        f.write(FILE_AS_WRITTEN[1][30:] + "\n")
    assert [type(e) for e in tail.read()] == [LevelStart]


def test_the_writer_refuses_a_field_its_kind_does_not_have(tmp_path):
    writer = EventWriter(tmp_path)
    with pytest.raises(TypeError, match="stepz"):
        writer.emit("progress", level=0, stepz=3, max_steps=8, active=1, loss=[], samples_per_s=1.0, eta_s=None)
    with pytest.raises(ValueError, match="unknown event kind"):
        writer.emit("checkpointed", level=0)
    assert not (tmp_path / EVENTS_FILE).exists()  # nothing half-valid reached the file


def test_a_resumed_run_forgets_the_levels_it_trains_again():
    events = [parse_line(line) for line in FILE_AS_WRITTEN]
    later = [make("level_start", 10.0, level=1, sparsity=0.5, max_steps=800),
             make("level_end", 11.0, level=1, sparsity=0.5, steps=[5, 5, 5], stopped_early=0, diverged=0,
                  loss={"train": [1.0] * 3, "val": [2.0] * 3, "test": [3.0] * 3}, seconds=1.0)]
    state = fold(events + later)
    assert [e.level for e in state.finished] == [0, 1]
    resumed = reduce(state, make("run_start", 20.0, run="r1", nets=3, levels=4, pid=1, resumed_from=1))
    assert [e.level for e in resumed.finished] == [0] and resumed.status == "running" and not resumed.ended
    again = fold(later, resumed)
    assert [e.level for e in again.finished] == [0, 1] and again.level_end(1).median_loss() == 2.0
    assert fold([], again) is again and RunProgress().loss_stats() == (None, None, None)


def test_event_span_reads_only_the_ends(tmp_path):
    assert event_span(tmp_path) == (None, None, False)
    writer = EventWriter(tmp_path)
    first = writer.emit("run_start", run="r", nets=1, levels=1, pid=1, resumed_from=None)
    for step in range(200):  # more than the 4 KiB read from the end
        writer.emit("progress", level=0, step=step, max_steps=200, active=1, loss=[0.5], samples_per_s=1e3,
                    eta_s=1.0)
    last = writer.emit("run_end", status="done", message="1 levels complete")
    with open(tmp_path / EVENTS_FILE, "a") as f:
        f.write('{"t":99999999999.0,"event":"run_start"')  # being written: not trusted
    assert event_span(tmp_path) == (first.t, last.t, True)


def test_durations_past_a_day_read_the_same_in_the_console_and_the_app():
    from mothtui.model import progress_line

    assert [fmt_duration(s) for s in (38, 725, 7440, 86399, 86400, 93600, 100 * 86400 + 5 * 3600)] == \
        ["38s", "12m05s", "2h04m", "23h59m", "1d00h", "1d02h", "100d05h"]
    assert fmt_duration(None) == fmt_duration(float("nan")) == fmt_duration(-1) == "–"
    display = RichDisplay(4, console=Console(file=io.StringIO()))
    with display:
        for line in FILE_AS_WRITTEN[:2]:
            display(parse_line(line))
        display(make("progress", 3.0, level=0, step=96, max_steps=800, active=2, loss=[1e-3, None, 3e-3],
                     samples_per_s=61440.5, eta_s=93600.0))
        info = display.bar.tasks[0].fields["info"]
    assert "ETA 1d02h" in info and "61.4k samples/s" in info and "loss 2.00e-03" in info
    line = progress_line(display.state)
    assert "ETA 1d02h" in line and "61.4k samples/s" in line


def test_array_values_from_the_engine_are_written_as_plain_json(tmp_path):
    record = EventWriter(tmp_path).emit(
        "level_end", level=np.int64(2), sparsity=np.float32(0.5), steps=np.array([3, 4]), stopped_early=np.int32(1),
        diverged=0, loss={s: np.array([0.25, np.nan], np.float32) for s in ("train", "val", "test")},
        seconds=np.float64(1.5))
    assert record == read_events(tmp_path)[0]
    assert record.level == 2 and type(record.level) is int and record.steps == (3, 4)
    assert record.loss["val"] == (0.25, None)


def test_the_training_curve_is_the_last_levels_progress_on_a_real_run(smoke_run):
    """`RunProgress.curve`: one (step, median, p10, p90) per progress event of the level in training."""
    import statistics

    run, got, _, _ = smoke_run
    state = fold(read_events(run.path))
    last_level = [e for e in got if isinstance(e, StepProgress) and e.level == state.level]
    assert [c[0] for c in state.curve] == [e.step for e in last_level]
    for (step, med, p10, p90), event in zip(state.curve, last_level):
        finite = [v for v in event.loss if v is not None]
        assert med == pytest.approx(statistics.median(finite))
        np.testing.assert_allclose((p10, p90), np.percentile(finite, [10, 90]))


def test_the_curve_starts_again_at_each_level_and_stays_bounded():
    from core.events import CURVE_POINTS

    state = fold([make("run_start", 0.0, run="r", nets=2, levels=3, pid=None, resumed_from=None),
                  make("level_start", 1.0, level=0, sparsity=0.0, max_steps=10**6)])
    for step in range(1, 3 * CURVE_POINTS):
        state = reduce(state, make("progress", 1.0 + step, level=0, step=step, max_steps=10**6, active=2,
                                   loss=[1.0 / step, None], samples_per_s=None, eta_s=None))
    steps = [c[0] for c in state.curve]
    assert len(steps) <= CURVE_POINTS and steps[0] == 1 and steps[-1] == 3 * CURVE_POINTS - 1
    assert steps == sorted(steps) and steps[-50:] == list(range(3 * CURVE_POINTS - 50, 3 * CURVE_POINTS))
    assert state.curve[-1][1] == pytest.approx(1.0 / steps[-1])    # None (a stopped network) left out
    state = reduce(state, make("level_start", 9e3, level=1, sparsity=0.5, max_steps=10))
    assert state.curve == ()
    state = reduce(state, make("progress", 9e3 + 1, level=1, step=5, max_steps=10, active=0,
                               loss=[None, None], samples_per_s=None, eta_s=None))
    assert state.curve == ()                                        # nothing trains: no point


def _bar_text(display) -> str:
    out = io.StringIO()
    Console(file=out, width=240, color_system=None, force_terminal=True).print(display.bar.get_renderable())
    return out.getvalue()


def test_the_terminal_display_labels_sparsity_ticks_elapsed_and_leaves_no_stale_bar(smoke_run):
    """The real run's events fed again to a display on a (captured) terminal, at chosen wall times."""
    _, got, _, _ = smoke_run
    start = got[0].t
    now = {"t": start}
    stream = io.StringIO()
    display = RichDisplay(3, console=Console(file=stream, width=240, force_terminal=True, color_system=None),
                          clock=lambda: now["t"])
    seen = {}
    with display:
        for event in got:
            display(event)
            if isinstance(event, StepProgress):
                now["t"] = start + 71 + 100 * event.level  # 1m11s into level 0, later in the later levels
                seen[event.level] = _bar_text(display)
    assert "level 1/3 · sparsity 0.50" in seen[1] and "level 2/3 · sparsity 0.80" in seen[2]
    assert "50%" not in seen[1].split("step")[0]  # the sparsity no longer reads as progress
    # the run's elapsed time goes on after level 0 (it froze at level 0's end: Rich's task time)
    assert "elapsed 1m11s" in seen[0] and "elapsed 2m51s" in seen[1] and "elapsed 4m31s" in seen[2]
    text = stream.getvalue()
    after = text[text.rindex("run done: 3 levels complete"):]
    assert "level 2/3" not in after and "step " not in after, after  # no stale bar below `run done`


def test_a_cancelled_run_is_told_once_by_the_command_not_by_the_display(smoke_run):
    _, got, _, _ = smoke_run
    stream = io.StringIO()
    display = RichDisplay(3, console=Console(file=stream, width=240))
    ended = [e for e in got if not isinstance(e, RunEnd)]
    with display:
        for event in ended[: next(i for i, e in enumerate(ended) if isinstance(e, LevelStart) and e.level == 2)]:
            display(event)
        display(make("run_end", ended[-1].t, status="cancelled",
                     message="cancelled; 2 levels complete, resume with `mothtui resume smoke --runs r`"))
    lines = stream.getvalue().splitlines()
    assert [line.split(" ·")[0] for line in lines] == ["level  0", "level  1"], lines
