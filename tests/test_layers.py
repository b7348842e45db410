"""The layering (pyproject.toml's import-linter contracts) holds, and a wrong import breaks it.

`lint-imports` reads the import graph statically, function-level imports included, so a lazy
`import jax` in a screen fails here even if no test ever runs that function.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())"]


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}
    return subprocess.run([*LINT, "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_contracts_are_kept():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_screen_that_imports_jax_breaks_a_contract(tmp_path):
    for name in ("core", "mothtui"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    runs = tmp_path / "mothtui" / "screens" / "runs.py"
    runs.write_text(runs.read_text() + "\n\ndef _later():\n    import jax  # noqa: F401\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "the UI never imports jax or the engine" in result.stdout and "BROKEN" in result.stdout
    assert "mothtui.screens.runs -> jax" in result.stdout
