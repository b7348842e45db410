"""Who owns a run (core.owner) and the trash (core.trash): real locks, real processes, real records.

The process-level races (two resumes at once, two trains of one id, analyze beside training, a
full disk) are in test_train_cli.py; here are the pieces: the kernel lock and its release when
the holder dies, and how liveness is judged for a reused pid, a reboot, another host and a
stale record.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.cli import main
from core.errors import StoreError
from core.owner import OwnerRecord, claim, claim_new, liveness, write_record
from core.runlist import list_runs, summarize
from fixture_runs import make_fixture_run

REPO = Path(__file__).resolve().parents[2]


def _holder(path: Path) -> subprocess.Popen:
    """Another process that claims `path` and sleeps, as an engine would."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; from core.owner import claim; "
                             f"claim({str(path)!r}, 'mothtui train --id x'); print('held', flush=True); "
                             "time.sleep(120)"], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_claimed_run_is_refused_naming_its_owner_and_freed_when_the_owner_dies(runs_dir):
    run = make_fixture_run(runs_dir, "r", status="running", levels_complete=2)
    proc = _holder(run.path)
    try:
        with pytest.raises(StoreError) as err:
            claim(run.path)
        message = str(err.value)
        assert message.startswith("run 'r' is in use by mothtui train --id x (pid ")
        assert f"pid {proc.pid} on {os.uname().nodename}, since " in message
        assert summarize(run.path).status == "running" and summarize(run.path).pid == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the kernel dropped the lock; the record it left says a dead process: interrupted, claimable
    assert summarize(run.path).status == "interrupted" and summarize(run.path).owner is None
    with claim(run.path, "mothtui resume r") as mine:
        assert liveness(run.path).record == mine.record and liveness(run.path).pid == os.getpid()
    assert not (run.path / "owner.json").exists()


def test_claim_new_lets_exactly_one_creator_win(runs_dir):
    # The winner holds the run until all have answered (one that exits without writing a store abandons
    # the directory, and the next creator takes it over: test_train_cli).
    script = ("import sys; from core.owner import claim_new; from core.errors import StoreError\n"
              "try:\n    claim_new(sys.argv[1]); print('won', flush=True)\n"
              "except StoreError as e:\n    print('lost:', e, flush=True)\nsys.stdin.read()")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(runs_dir / "new")], stdout=subprocess.PIPE,
                              stdin=subprocess.PIPE, text=True, cwd=REPO) for _ in range(4)]
    outcomes = sorted(p.stdout.readline().strip() for p in procs)
    for p in procs:
        p.communicate(timeout=60)
    assert outcomes.count("won") == 1 and len(outcomes) == 4, outcomes
    assert all(o.startswith("lost: run 'new' already exists in") for o in outcomes if o != "won")


def test_claim_new_of_an_existing_run_is_refused(runs_dir):
    make_fixture_run(runs_dir, "taken")
    with pytest.raises(StoreError, match="run 'taken' already exists"):
        claim_new(runs_dir / "taken")


def _record(**changes) -> OwnerRecord:
    return dataclasses.replace(OwnerRecord.of_process(os.getpid(), "mothtui train"), **changes)


def test_a_reused_pid_and_a_reboot_are_recognised_as_dead(runs_dir):
    run = make_fixture_run(runs_dir, "r", status="running", levels_complete=2)
    write_record(run.path, _record())
    assert liveness(run.path).alive
    write_record(run.path, _record(started=_record().started - 3600))  # same pid, another process
    assert not liveness(run.path).alive and summarize(run.path).status == "interrupted"
    write_record(run.path, _record(boot_id="an-earlier-boot"))         # written before a reboot
    assert not liveness(run.path).alive and summarize(run.path).status == "interrupted"


def test_another_hosts_record_is_judged_by_its_last_event_and_goes_stale(runs_dir, monkeypatch):
    run = make_fixture_run(runs_dir, "r", status="running", levels_complete=2)
    write_record(run.path, _record(host="gpu7", pid=4242))
    (run.path / "events.jsonl").write_text('{"event": "progress"}\n')
    owner = liveness(run.path)
    assert owner.alive and owner.elsewhere and owner.pid is None  # cannot be signalled from here
    assert owner.where().startswith("gpu7 (last heard from ") and summarize(run.path).status == "running"
    old = time.time() - 2 * 3600
    for name in ("events.jsonl", "owner.json"):
        os.utime(run.path / name, (old, old))
    assert not liveness(run.path).alive and summarize(run.path).status == "interrupted"
    monkeypatch.setenv("MOTHTUI_STALE_AFTER_S", str(3 * 3600))  # a longer documented timeout
    assert liveness(run.path).alive


def test_resume_of_a_run_alive_on_another_host_says_where(runs_dir, capsys):
    run = make_fixture_run(runs_dir, "r", status="running", levels_complete=2)
    write_record(run.path, _record(host="gpu7", pid=4242))
    assert main(["resume", "r", "--runs", str(runs_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mothtui: run 'r' is running on gpu7 (last heard from ") and "\n" not in err


def test_delete_restore_and_purge(runs_dir, capsys):
    for name in ("a", "b"):
        make_fixture_run(runs_dir, name)
    assert main(["delete", "a", "--runs", str(runs_dir)]) == 0
    assert [s.run_id for s in list_runs(runs_dir)] == ["b"] and (runs_dir / ".trash" / "a" / "zarr.json").exists()
    assert main(["restore", "a", "--runs", str(runs_dir)]) == 0
    assert sorted(s.run_id for s in list_runs(runs_dir)) == ["a", "b"]
    assert not (runs_dir / "a" / "deleted.json").exists()
    # the same id deleted twice: both kept, the newest comes back first
    assert main(["delete", "a", "--runs", str(runs_dir)]) == 0
    make_fixture_run(runs_dir, "a", nets=3)
    assert main(["delete", "a", "--runs", str(runs_dir)]) == 0
    assert sorted(p.name for p in (runs_dir / ".trash").iterdir()) == ["a", "a~2"]
    assert main(["restore", "a", "--runs", str(runs_dir)]) == 0
    assert summarize(runs_dir / "a").nets == 3
    capsys.readouterr()
    assert main(["purge", "--older-than", "7d", "--runs", str(runs_dir)]) == 0
    assert "purged 0 runs" in capsys.readouterr().out and (runs_dir / ".trash" / "a").exists()
    assert main(["restore", "a", "--runs", str(runs_dir)]) == 2  # the live "a" is never overwritten
    assert "run 'a' already exists" in capsys.readouterr().err
    assert main(["purge", "--yes", "--runs", str(runs_dir)]) == 0
    assert "purged 1 run: a" in capsys.readouterr().out and not list((runs_dir / ".trash").iterdir())
    for argv, needle in [(["restore", "zz"], "no run 'zz' in the trash"),
                         (["delete", "zz"], "no run 'zz'"), (["purge", "--older-than", "soon"], "bad age")]:
        assert main([*argv, "--runs", str(runs_dir)]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err, err


def test_delete_is_refused_while_another_process_owns_the_run(runs_dir, capsys):
    run = make_fixture_run(runs_dir, "r", status="running", levels_complete=2)
    proc = _holder(run.path)
    try:
        assert main(["delete", "r", "--runs", str(runs_dir)]) == 2
        assert "run 'r' is in use by mothtui train --id x" in capsys.readouterr().err
        assert (run.path / "zarr.json").exists()
    finally:
        proc.kill()
        proc.wait()


def test_tags_and_notes_are_refused_while_another_process_owns_the_run(runs_dir, capsys):
    run = make_fixture_run(runs_dir, "r", status="running", levels_complete=2)
    proc = _holder(run.path)
    try:
        assert main(["tag", "r", "+keep", "--runs", str(runs_dir)]) == 2
        assert main(["note", "r", "later", "--runs", str(runs_dir)]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 2 and all("run 'r' is in use by mothtui train --id x" in line for line in lines)
    finally:
        proc.kill()
        proc.wait()
    assert main(["tag", "r", "+keep", "--runs", str(runs_dir)]) == 0
    assert summarize(run.path).tags == ("keep",) and not (run.path / "owner.json").exists()


def test_every_writer_refuses_a_run_alive_on_another_host(runs_dir, capsys):
    """The check lives in claim(): analyze, delete and tag refuse like resume, naming the host."""
    run = make_fixture_run(runs_dir, "r", status="running", levels_complete=2)
    write_record(run.path, _record(host="gpu7", pid=4242))
    (run.path / "events.jsonl").write_text('{"event": "progress"}\n')
    for argv in (["analyze", "r", "--structure-only"], ["delete", "r"], ["tag", "r", "+x"]):
        assert main([*argv, "--runs", str(runs_dir)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("mothtui: run 'r' is running on gpu7") and "\n" not in err, err
    assert (run.path / "zarr.json").exists() and not (run.path / "analysis").exists()


def _purge(runs_dir: Path, *args: str, answer: str | None = None) -> subprocess.CompletedProcess:
    """`mothtui purge` as a real process: stdin is /dev/null, or a terminal (a pty) typing `answer`."""
    command = [sys.executable, "-m", "core", "purge", *args, "--runs", str(runs_dir)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if answer is None:
        return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, timeout=60)
    import pty
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode() + b"\n")
        return subprocess.run(command, capture_output=True, text=True, stdin=terminal, env=env, timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)


def test_purge_never_deletes_unasked_and_wants_an_age_with_a_unit(runs_dir):
    make_fixture_run(runs_dir, "a")
    assert main(["delete", "a", "--runs", str(runs_dir)]) == 0
    trashed_run = runs_dir / ".trash" / "a"
    # a bare number was read as seconds and purged a run deleted a moment ago: now refused, in one line
    proc = _purge(runs_dir, "--older-than", "7", "--yes")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "bad age '7'" in proc.stderr \
        and "7d" in proc.stderr, proc.stderr
    assert trashed_run.exists()
    # no terminal, no --yes: refused, and it says what to pass
    proc = _purge(runs_dir)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--yes" in proc.stderr, proc.stderr
    assert trashed_run.exists()
    # on a terminal it asks: no (the default) keeps the run, y purges it
    proc = _purge(runs_dir, answer="")
    assert proc.returncode == 1 and "[y/N]" in proc.stderr and "nothing purged" in proc.stderr, proc.stderr
    assert trashed_run.exists()
    proc = _purge(runs_dir, "--older-than", "30m", answer="y")  # deleted just now: not old enough, nothing asked
    assert proc.returncode == 0 and "purged 0 runs" in proc.stdout and "[y/N]" not in proc.stderr
    proc = _purge(runs_dir, answer="y")
    assert proc.returncode == 0 and "delete 1 run for good: a? [y/N]" in proc.stderr \
        and "purged 1 run: a" in proc.stdout, proc.stderr
    assert not trashed_run.exists()


@pytest.mark.parametrize("argv", [["select", "quik-1"], ["export", "quik-1", "--out", "x"], ["resume", "quik-1"],
                                  ["analyze", "quik-1"], ["evaluate", "quik-1", "--scale", "2"], ["tag", "quik-1"],
                                  ["note", "quik-1"], ["delete", "quik-1"], ["compare", "quick-1", "quik-1"]])
def test_a_misspelled_run_id_gets_a_suggestion(runs_dir, capsys, argv):
    for name in ("quick-1", "paper-7"):
        make_fixture_run(runs_dir, name)
    assert main([*argv, "--runs", str(runs_dir)]) == 2
    assert capsys.readouterr().err == f"mothtui: no run 'quik-1' in {runs_dir}; did you mean 'quick-1'?\n"


def test_an_id_like_none_gets_no_suggestion_and_the_trash_suggests_its_own(runs_dir, capsys):
    make_fixture_run(runs_dir, "quick-1")
    assert main(["select", "zzzz", "--runs", str(runs_dir)]) == 2
    assert capsys.readouterr().err == f"mothtui: no run 'zzzz' in {runs_dir}\n"
    assert main(["delete", "quick-1", "--runs", str(runs_dir)]) == 0
    assert main(["restore", "quik-1", "--runs", str(runs_dir)]) == 2
    assert capsys.readouterr().err.endswith("in the trash of " f"{runs_dir}; did you mean 'quick-1'?\n")
