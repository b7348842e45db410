"""The settings file (core/settings.py) applied to the app: theme, key overrides; and the theme saved.

Bad values never stop the app: each becomes one line (printed on stderr at start and shown as a
notification) naming the key, and the app goes on with that key's default.
"""

from __future__ import annotations

import importlib
from typing import Iterable

from textual.app import App
from textual.binding import Binding

#: Modules whose classes define the app's bindings (their ids are what `[keys]` may name).
BINDING_MODULES = ("mothtui.app", "mothtui.screens.runs", "mothtui.screens.run", "mothtui.screens.picker",
                   "mothtui.screens.new_run", "mothtui.screens.export", "mothtui.screens.dialogs",
                   "mothtui.screens.log", "mothtui.screens.labels")


def binding_ids() -> set[str]:
    """Every binding id of the app's screens and widgets (imports the screens: call off the UI thread)."""
    ids = set()
    for name in BINDING_MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == name:
                for binding in Binding.make_bindings(getattr(value, "BINDINGS", [])):
                    if binding.id:
                        ids.add(binding.id)
    return ids


def unknown_keys(keymap: Iterable[str], settings_path) -> list[str]:
    """One problem line per `[keys]` entry that names no binding."""
    known = binding_ids()
    return [f"settings {settings_path}: key 'keys.{binding_id}' names no binding "
            f"(ids look like runs.filter; `?` lists a screen's keys); ignored"
            for binding_id in keymap if binding_id not in known]


def apply_theme(app: App, settings) -> str | None:
    """Set the settings' theme on the app; the problem line if it is not a theme Textual knows."""
    if not settings.theme:
        return None
    if settings.theme not in app.available_themes:
        names = ", ".join(sorted(app.available_themes))
        return (f"settings {settings.path}: key 'theme' is {settings.theme!r}, not a theme "
                f"(one of {names}); using the default")
    app.theme = settings.theme
    return None
