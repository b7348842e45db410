"""The two import rules, checked in fresh interpreters (a module imported by another test would hide a leak).

- The UI (mothtui.app and every module under mothtui/) never imports jax: it must start fast and
  leave the GPU to the engine.
- The core modules the UI uses, and the CLI, never import textual.
- `mothtui --help` imports neither jax nor textual.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import mothtui

ROOT = Path(__file__).resolve().parents[1]


def ui_modules() -> list[str]:
    """mothtui and all its submodules (found on disk, so a new screen is checked without edits)."""
    names = ["mothtui", "mothtui.app"]
    for info in pkgutil.walk_packages(mothtui.__path__, "mothtui."):
        if info.name != "mothtui.__main__":  # runs the CLI when imported
            names.append(info.name)
    return sorted(set(names))


def imported_after(code: str) -> set[str]:
    """Top-level package names in sys.modules after running `code` in a new interpreter."""
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_ui_never_imports_jax():
    modules = ui_modules()
    assert "mothtui.screens.picker" in modules and "mothtui.widgets.plots" in modules
    loaded = imported_after("\n".join(f"import {name}" for name in modules))
    assert "textual" in loaded  # the probe really imported the UI
    assert "jax" not in loaded and "jaxlib" not in loaded and "flax" not in loaded


CORE_USED_BY_UI = ("core.cli", "core.config", "core.errors", "core.events", "core.runlist", "core.runstore", "core.select",
                   "core.export", "core.analysis.store", "core.schema", "core.settings", "core.runlog",
                   "core.owner", "core.trash")


def test_core_used_by_ui_never_imports_textual():
    loaded = imported_after("\n".join(f"import {name}" for name in CORE_USED_BY_UI))
    assert "zarr" in loaded
    assert "textual" not in loaded
    assert "jax" not in loaded  # the UI imports these: they must stay light too


def test_help_imports_neither_jax_nor_textual():
    code = ("import sys\nfrom mothtui.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    loaded = imported_after(code)
    assert "jax" not in loaded and "textual" not in loaded


def test_runs_list_needs_no_array_stack():
    """The runs list's first paint (core.runlist) must not pay for importing zarr or numpy."""
    loaded = imported_after("import core.runlist")
    assert not {"zarr", "numpy", "jax", "textual"} & loaded


def test_events_and_formatting_need_no_array_stack():
    """The runs list tails events and formats durations at first paint: standard library only."""
    loaded = imported_after("import core.events, core.formatting")
    assert not {"zarr", "numpy", "jax", "textual", "rich"} & loaded


def test_paths_is_standard_library():
    """core.paths (every artefact's path) is imported by the first paint and `--version`: beyond what
    a bare interpreter loads, only the standard library and core itself."""
    bare = imported_after("pass")
    loaded = imported_after("import core.paths")
    assert loaded - bare <= set(sys.stdlib_module_names) | {"core"}, loaded - bare
