"""JAX's persistent compilation cache for the commands that compile (core.settings.enable_compilation_cache).

Real processes: `mothtui simulate` keeps its compiled programs in the user's cache dir (here a temporary
XDG_CACHE_HOME), in `$MOTHTUI_COMPILATION_CACHE` or the settings' directory when given, nowhere when
`off`. The test suite itself never writes to the user's cache dir (conftest turns it off).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.settings import compilation_cache_dir, load_settings

REPO = Path(__file__).resolve().parents[2]


def _simulate(tmp_path: Path, name: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("JAX_COMPILATION_CACHE_DIR", "MOTHTUI_COMPILATION_CACHE", "XDG_CACHE_HOME")}
    base["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "core", "simulate", "--samples", "64", "--chunk", "64",
                           "--out", str(tmp_path / name)], env={**base, **env}, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120, check=True)


def _entries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []


def test_the_commands_keep_compiled_programs_in_the_cache_dir_unless_it_is_off(tmp_path):
    xdg = tmp_path / "xdg"
    _simulate(tmp_path, "default", XDG_CACHE_HOME=str(xdg))
    assert _entries(xdg / "mothtui" / "jax"), "nothing cached in <user cache dir>/mothtui/jax"
    _simulate(tmp_path, "off", XDG_CACHE_HOME=str(tmp_path / "xdg-off"), MOTHTUI_COMPILATION_CACHE="off")
    assert not (tmp_path / "xdg-off").exists()


def test_the_cache_dir_is_moved_by_the_variable_then_the_settings(tmp_path, monkeypatch):
    settings = tmp_path / "settings.toml"
    settings.write_text(f'compilation_cache = "{tmp_path / "from-settings"}"\n')
    monkeypatch.setenv("MOTHTUI_SETTINGS", str(settings))
    monkeypatch.setenv("MOTHTUI_COMPILATION_CACHE", "")
    assert compilation_cache_dir() == tmp_path / "from-settings"
    monkeypatch.setenv("MOTHTUI_COMPILATION_CACHE", str(tmp_path / "moved"))
    assert compilation_cache_dir() == tmp_path / "moved"
    settings.write_text('compilation_cache = "off"\n')
    monkeypatch.setenv("MOTHTUI_COMPILATION_CACHE", "")
    assert compilation_cache_dir() is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    settings.unlink()
    assert compilation_cache_dir() == tmp_path / "xdg" / "mothtui" / "jax"


def test_the_test_suite_never_uses_the_users_cache_dir(tmp_path):
    assert os.environ.get("MOTHTUI_COMPILATION_CACHE") == "off" and compilation_cache_dir() is None
    settings = tmp_path / "s.toml"
    settings.write_text('compilation_cache = 7\n')
    assert any("compilation_cache" in p for p in load_settings(settings).problems)
