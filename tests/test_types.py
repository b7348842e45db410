"""The type check (mypy, configured by pyproject.toml's [tool.mypy]) passes on core/ and mothtui/.

mypy keeps its incremental cache in the repository's `.mypy_cache` (git-ignored): the first run of
a fresh clone checks everything (about 20 s of one CPU), later runs only what changed (about 1 s).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_mypy_finds_no_errors():
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"mypy (python -m mypy in {REPO}):\n{result.stdout}{result.stderr}"
