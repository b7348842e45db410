"""The user's settings file: one TOML file in the platform's config directory, read by the app and the CLI.

    theme = "ansi-dark"              # a Textual theme; ansi-dark / ansi-light follow the terminal's colours
    runs = "~/moth/runs"             # default run store (after --runs and $MOTHTUI_RUNS)
    compilation_cache = "off"        # JAX's compiled programs kept between starts: a directory, or off
                                     # (default <user cache dir>/mothtui/jax; $MOTHTUI_COMPILATION_CACHE first)

    [keys]                           # key overrides by binding id (`?` in the app lists the keys)
    "runs.filter" = "f"
    "app.quit" = "q,ctrl+q"

    [notifications]                  # when a run ends while the app is open
    enabled = true                   # false: none of the three below
    bell = true                      # the terminal bell
    desktop = "osc9"                 # osc9 | osc777 | off (a desktop notification through the terminal)

Where: `$MOTHTUI_SETTINGS` if set (a file path), else `<user config dir>/mothtui/settings.toml`
(platformdirs: `~/.config/mothtui/settings.toml` on Linux). A missing file means defaults. A bad
value never stops anything: it becomes one line in `Settings.problems` naming the key, and that
key keeps its default. Standard library plus platformdirs (no textual, no jax): the CLI reads the
default run store from here.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import paths

SETTINGS_ENV = "MOTHTUI_SETTINGS"
SETTINGS_FILE = "settings.toml"
DESKTOP_KINDS = ("osc9", "osc777", "off")
TOP_KEYS = ("theme", "runs", "compilation_cache", "keys", "notifications")
#: Where JAX keeps compiled programs between processes (a directory, or `off`); over the settings' key.
COMPILATION_CACHE_ENV = "MOTHTUI_COMPILATION_CACHE"
_OFF = ("off", "false", "no", "none", "0")
NOTIFY_KEYS = {"enabled": bool, "bell": bool, "desktop": str}


@dataclass
class Settings:
    """The settings in effect: the file's valid values over the defaults, and what was wrong."""

    path: Path
    theme: str | None = None
    runs: str | None = None
    compilation_cache: str | None = None
    """JAX's persistent compilation cache: a directory, `off`, or None for the default (`compilation_cache_dir`)."""
    keys: dict[str, str] = field(default_factory=dict)
    notify: bool = True
    bell: bool = True
    desktop: str = "osc9"
    problems: list[str] = field(default_factory=list)
    exists: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "exists": self.exists, "theme": self.theme, "runs": self.runs,
                "compilation_cache": self.compilation_cache,
                "keys": dict(self.keys),
                "notifications": {"enabled": self.notify, "bell": self.bell, "desktop": self.desktop},
                "problems": list(self.problems)}


def settings_path() -> Path:
    """Where the settings file is (it need not exist)."""
    if os.environ.get(SETTINGS_ENV):
        return Path(os.environ[SETTINGS_ENV]).expanduser()
    from platformdirs import user_config_path

    return user_config_path("mothtui", appauthor=False) / SETTINGS_FILE


def load_settings(path: Path | None = None) -> Settings:
    """The settings of `path` (default: `settings_path()`); problems are collected, never raised."""
    path = Path(path) if path is not None else settings_path()
    settings = Settings(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return settings
    except (OSError, UnicodeDecodeError) as err:
        settings.problems.append(f"settings {path}: unreadable ({getattr(err, 'strerror', None) or err}); "
                                 "using defaults")
        return settings
    settings.exists = True
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        settings.problems.append(f"settings {path}: not valid TOML ({err}); using defaults")
        return settings

    def bad(key: str, why: str) -> None:
        settings.problems.append(f"settings {path}: key '{key}' {why}; using the default")

    for key in data:
        if key not in TOP_KEYS:
            bad(key, f"is unknown (known: {', '.join(TOP_KEYS)})")
    for key in ("theme", "runs", "compilation_cache"):
        if key in data:
            if isinstance(data[key], str) and data[key].strip():
                setattr(settings, key, data[key].strip())
            else:
                bad(key, "must be a non-empty string")
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        bad("keys", "must be a table of binding id = \"key[,key…]\"")
    else:
        for binding_id, value in keys.items():
            if not re.fullmatch(r"[a-z_]+\.[a-z0-9_]+", binding_id):
                bad(f"keys.{binding_id}", "is not a binding id (like runs.filter)")
            elif not isinstance(value, str) or not re.fullmatch(r"[\w+\-]+(,[\w+\-]+)*", value.replace(" ", "")):
                bad(f"keys.{binding_id}", "must be a key name or comma-separated names, e.g. \"f\" or \"f,ctrl+f\"")
            else:
                settings.keys[binding_id] = value.replace(" ", "")
    notify = data.get("notifications", {})
    if not isinstance(notify, dict):
        bad("notifications", "must be a table")
        notify = {}
    for key, value in notify.items():
        kind = NOTIFY_KEYS.get(key)
        if kind is None:
            bad(f"notifications.{key}", f"is unknown (known: {', '.join(NOTIFY_KEYS)})")
        elif not isinstance(value, kind):
            bad(f"notifications.{key}", f"must be {'true or false' if kind is bool else 'a string'}")
        elif key == "desktop" and value not in DESKTOP_KINDS:
            bad("notifications.desktop", f"must be one of {', '.join(DESKTOP_KINDS)}")
        else:
            setattr(settings, {"enabled": "notify"}.get(key, key), value)
    return settings


def compilation_cache_dir(settings: Settings | None = None) -> Path | None:
    """Where JAX's persistent compilation cache lives, or None when it is off.

    `$MOTHTUI_COMPILATION_CACHE` (a directory, or `off`), else the settings' `compilation_cache`, else
    `<user cache dir>/mothtui/jax` (platformdirs: `~/.cache/mothtui/jax` on Linux). With it, a second
    start of the same config loads its compiled programs instead of compiling them again.
    """
    text = os.environ.get(COMPILATION_CACHE_ENV, "").strip()
    if not text:
        text = ((settings or load_settings()).compilation_cache or "").strip()
    if text.lower() in _OFF:
        return None
    if text:
        return Path(text).expanduser()
    from platformdirs import user_cache_path

    return user_cache_path("mothtui", appauthor=False) / "jax"


def enable_compilation_cache() -> Path | None:
    """Turn JAX's persistent compilation cache on for this process (and the processes it starts) at
    `compilation_cache_dir()`; returns the directory, None when off. Call it before JAX is imported
    (it sets the variables JAX reads at import; if JAX is already imported, its config is updated).

    An explicit `$JAX_COMPILATION_CACHE_DIR` is left as it is. Every compiled program is kept
    (`$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS` defaults to 0 here, not JAX's 1 s): a start
    compiles many programs of well under a second each, and they are what the second start saves.
    """
    import sys

    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    path = compilation_cache_dir()
    if path is None:
        return None
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(path)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if "jax" in sys.modules:
        jax = sys.modules["jax"]
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs",
                          float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
    return path


def save_theme(theme: str, path: Path | None = None) -> Path:
    """Write `theme = "..."` into the settings file, keeping every other line (comments included).

    OSError if the file or its directory cannot be written (the caller reports it).
    """
    path = Path(path) if path is not None else settings_path()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    entry = f"theme = {_toml_string(theme)}"
    first_table = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    for i in range(first_table):
        if re.match(r"\s*theme\s*=", lines[i]):
            lines[i] = entry
            break
    else:
        lines.insert(0, entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


#: The run store when nothing names one.
DEFAULT_RUNS = paths.DEFAULT_RUNS


def default_runs_dir() -> Path:
    """The run store: `$MOTHTUI_RUNS` if set, else the settings file's `runs`, else `./runs`."""
    if os.environ.get("MOTHTUI_RUNS"):
        return Path(os.environ["MOTHTUI_RUNS"])
    runs = load_settings().runs
    return Path(runs).expanduser() if runs else Path(DEFAULT_RUNS)
