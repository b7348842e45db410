"""What users of terminal tools expect, headless: --version, completion, settings, tags and notes,
disk use, and the engine log every run keeps (core/runlog.py)."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from core.config import PRESETS
from core.runlist import disk_usage, summarize
from core.runlog import LOG_FILE, keep_output
from core.runstore import open_run
from core.settings import load_settings, save_theme
from fixture_runs import make_fixture_run

ROOT = Path(__file__).resolve().parents[2]


def cli(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`mothtui ARGV` in a fresh interpreter (the worktree's packages first)."""
    return subprocess.run([sys.executable, "-m", "mothtui", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=120)


# ---- --version -------------------------------------------------------------------------------------

def test_version_in_a_fresh_interpreter_imports_neither_jax_nor_textual():
    probe = ("import sys, json\nfrom mothtui.cli import main\n"
             "try:\n    main(['--version'])\nexcept SystemExit as e:\n    code = e.code\n"
             "print(json.dumps([code, sorted({m.split('.')[0] for m in sys.modules})]))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    version_line, modules_line = out.stdout.strip().splitlines()[-2:]
    code, modules = json.loads(modules_line)
    from importlib.metadata import version

    assert code == 0
    assert version_line.startswith(f"mothtui {version('mothtui')} (Python ")
    assert f"textual {version('textual')}" in version_line  # from the metadata, not imported
    assert "jax" not in modules and "jaxlib" not in modules and "textual" not in modules


# ---- shell completion --------------------------------------------------------------------------------

SUBCOMMANDS = ("simulate", "train", "plan", "resume", "runs", "select", "export", "analyze", "bench",
               "tag", "note", "settings", "completion")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_name_every_subcommand(shell, capsys):
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in script, name
    assert "mothtui completion --list runs" in script  # run ids come from the store
    assert "smoke quick paper" in script


def test_completion_presets_are_the_config_presets():
    from core.cli import PRESET_COMPLETION

    assert PRESET_COMPLETION["zsh"] == f"({' '.join(PRESETS)})"


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_run_ids_presets_and_commands(runs_dir, tmp_path, capsys):
    make_fixture_run(runs_dir, "2026-11-24_101500_smoke")
    make_fixture_run(runs_dir, "other")
    main(["completion", "bash"])
    (tmp_path / "c.bash").write_text(capsys.readouterr().out)
    bin_dir = _shim(tmp_path)

    def complete(*words: str) -> list[str]:
        line = " ".join(f"'{w}'" for w in words)
        script = (f"source {tmp_path / 'c.bash'}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
                  "_shtab_mothtui; printf '%s\\n' \"${COMPREPLY[@]}\"")
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True,
                             env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                                  "MOTHTUI_RUNS": str(runs_dir)})
        return [w for w in out.stdout.split() if w]

    assert complete("mothtui", "resume", "2026") == ["2026-11-24_101500_smoke"]
    assert sorted(complete("mothtui", "tag", "")) == ["2026-11-24_101500_smoke", "other"]
    assert complete("mothtui", "train", "--preset", "q") == ["quick"]
    assert sorted(complete("mothtui", "t")) == ["tag", "train"]


def _shim(tmp_path: Path) -> Path:
    """A directory with `mothtui` on it, as an install gives it (this checkout's code)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "mothtui"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m mothtui "$@"\n')
    shim.chmod(0o755)
    return bin_dir


@pytest.mark.skipif(shutil.which("fish") is None, reason="no fish shell here")
def test_fish_completes_run_ids_and_presets(runs_dir, tmp_path, capsys):
    make_fixture_run(runs_dir, "2026-11-24_101500_smoke")
    main(["completion", "fish"])
    (tmp_path / "c.fish").write_text(capsys.readouterr().out)
    env = {**os.environ, "PATH": f"{_shim(tmp_path)}:{os.environ['PATH']}", "MOTHTUI_RUNS": str(runs_dir)}

    def complete(line: str) -> list[str]:
        out = subprocess.run(["fish", "--no-config", "-c", f"source {tmp_path / 'c.fish'}; complete -C '{line}'"],
                             capture_output=True, text=True, check=True, env=env)
        return [row.split("\t")[0] for row in out.stdout.splitlines()]

    assert complete("mothtui resume 2026") == ["2026-11-24_101500_smoke"]
    assert complete("mothtui train --preset p") == sorted(p for p in PRESETS if p.startswith("p"))


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh here")
def test_zsh_script_parses(tmp_path, capsys):
    main(["completion", "zsh"])
    (tmp_path / "_mothtui").write_text(capsys.readouterr().out)
    subprocess.run(["zsh", "-n", str(tmp_path / "_mothtui")], check=True)


# ---- settings ------------------------------------------------------------------------------------

def test_settings_loaded_and_bad_keys_named(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('theme = "ansi-light"\nruns = "~/moth/runs"\ncolour = "red"\n'
                    '[keys]\n"runs.filter" = "f"\n"not an id" = "x"\n'
                    '[notifications]\nbell = false\ndesktop = "growl"\n')
    s = load_settings(path)
    assert (s.theme, s.runs, s.keys, s.bell) == ("ansi-light", "~/moth/runs", {"runs.filter": "f"}, False)
    assert s.desktop == "osc9" and s.notify is True  # the bad value keeps its default
    assert len(s.problems) == 3
    assert any("'colour'" in p for p in s.problems)
    assert any("'keys.not an id'" in p for p in s.problems)
    assert any("'notifications.desktop'" in p for p in s.problems)
    assert all("\n" not in p for p in s.problems)


def test_settings_not_toml_gives_defaults(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("theme = \n")
    s = load_settings(path)
    assert s.theme is None and len(s.problems) == 1 and "not valid TOML" in s.problems[0]


def test_save_theme_keeps_the_rest_of_the_file(tmp_path):
    path = tmp_path / "deep" / "settings.toml"
    save_theme("nord", path)
    assert load_settings(path).theme == "nord"
    path.write_text('# mine\ntheme = "nord"\n[keys]\n"runs.sort" = "o"\n')
    save_theme("ansi-dark", path)
    assert path.read_text() == '# mine\ntheme = "ansi-dark"\n[keys]\n"runs.sort" = "o"\n'


def test_settings_commands_and_default_runs_dir(tmp_path, monkeypatch, runs_dir):
    settings = Path(os.environ["MOTHTUI_SETTINGS"])
    out = cli("settings", "path")
    assert out.returncode == 0 and out.stdout.strip() == str(settings)
    settings.parent.mkdir(parents=True)
    settings.write_text(f'runs = "{runs_dir}"\nbogus = 1\n')
    make_fixture_run(runs_dir, "alpha")
    env = {"MOTHTUI_RUNS": ""}  # unset: the settings' run store is the default
    out = cli("settings", "show", "--json", env=env)
    assert out.returncode == 0
    assert json.loads(out.stdout)["runs"] == str(runs_dir)
    assert out.stderr.count("\n") == 1 and "'bogus'" in out.stderr and "Traceback" not in out.stderr
    listed = cli("runs", "--json", env=env)
    assert [r["id"] for r in json.loads(listed.stdout)["runs"]] == ["alpha"]


# ---- tags and notes ----------------------------------------------------------------------------------

def test_tags_and_note_round_trip_through_the_cli(runs_dir, capsys):
    make_fixture_run(runs_dir, "alpha")
    assert main(["tag", "alpha", "+global", "scale1.3", "--runs", str(runs_dir)]) == 0
    assert main(["tag", "alpha", "-scale1.3", "+seed2", "--runs", str(runs_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "global seed2"
    assert main(["note", "alpha", "the", "global-pruning", "run", "--runs", str(runs_dir)]) == 0
    run = open_run(runs_dir, "alpha")
    assert run.tags == ["global", "seed2"] and run.note == "the global-pruning run"
    summary = summarize(runs_dir / "alpha")
    assert summary.tags == ("global", "seed2") and summary.note == "the global-pruning run"
    assert main(["runs", "--json", "--runs", str(runs_dir)]) == 0
    entry = json.loads(capsys.readouterr().out.splitlines()[-1])["runs"][0]
    assert entry["tags"] == ["global", "seed2"] and entry["note"] == "the global-pruning run"
    assert main(["note", "alpha", "", "--runs", str(runs_dir)]) == 0
    assert open_run(runs_dir, "alpha").note == ""


def test_bad_tag_is_one_line_and_writes_nothing(runs_dir):
    make_fixture_run(runs_dir, "alpha")
    out = cli("tag", "alpha", "+ok", "+no/slash", "--runs", str(runs_dir))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no/slash" in out.stderr
    assert open_run(runs_dir, "alpha").tags == []


def test_labels_survive_the_engines_attribute_writes(runs_dir):
    """The engine's handle was opened before the tag was set; its next write must not drop the tag."""
    engine_side = make_fixture_run(runs_dir, "alpha", status="running", levels_complete=2)
    open_run(runs_dir, "alpha").set_labels(tags=["keep"], note="mine")
    engine_side.complete_level(2)
    engine_side.set_status("done")
    run = open_run(runs_dir, "alpha")
    assert run.tags == ["keep"] and run.note == "mine" and run.levels_complete == 3


# ---- disk use --------------------------------------------------------------------------------------

def test_disk_use_equals_the_size_on_disk(runs_dir, capsys):
    make_fixture_run(runs_dir, "alpha")
    make_fixture_run(runs_dir, "beta", nets=6)
    (runs_dir / "alpha" / LOG_FILE).write_text("x" * 12345)
    found = subprocess.run(["find", str(runs_dir / "alpha"), "-type", "f", "-printf", "%s\\n"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert disk_usage(runs_dir / "alpha") == sum(int(n) for n in found) > 12345
    assert main(["runs", "--json", "--runs", str(runs_dir)]) == 0
    listing = json.loads(capsys.readouterr().out)
    sizes = {r["id"]: r["disk_bytes"] for r in listing["runs"]}
    assert sizes == {"alpha": disk_usage(runs_dir / "alpha"), "beta": disk_usage(runs_dir / "beta")}
    assert listing["disk_bytes"] == sum(sizes.values())


# ---- the engine log ----------------------------------------------------------------------------------

def test_keep_output_copies_both_streams_and_the_crash(tmp_path):
    with pytest.raises(ValueError):
        with keep_output(tmp_path):
            os.write(1, b"to stdout\n")
            os.write(2, b"\x1b[1mbold\x1b[0m to stderr\r\x1b[2Krewritten\n")
            raise ValueError("engine broke")
    log = (tmp_path / LOG_FILE).read_text()
    assert "to stdout\n" in log and "rewritten\n" in log
    assert "\x1b" not in log and "bold" not in log  # what the terminal finally showed
    assert "Traceback" in log and "ValueError: engine broke" in log
    os.write(1, b"")  # the descriptors are back


@pytest.mark.slow
def test_a_run_started_from_a_terminal_keeps_its_log(runs_dir):
    """`mothtui train` in a (pseudo-)terminal: the progress display still draws, and the run has a clean log."""
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "mothtui", "train", "--preset", "smoke", "--runs",
                                str(runs_dir), "--id", "shell-run"], stdin=slave, stdout=slave, stderr=slave,
                               cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    os.close(slave)
    seen = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        seen += data
    os.close(master)
    assert process.wait(timeout=120) == 0
    assert b"\x1b[" in seen and b"shell-run" in seen  # the terminal got the live display and the id
    log = (runs_dir / "shell-run" / LOG_FILE).read_text()
    assert log.startswith("--- ") and "\x1b" not in log
    assert "level  2" in log and "run done" in log and log.rstrip().endswith("shell-run")
    from core.events import read_events

    start = next(e for e in read_events(runs_dir / "shell-run") if e.event == "run_start")
    assert start.device_kind == "cpu" and start.devices >= 1  # what the run header shows
