"""benchmarks/device_check: every step's command is one the real CLI accepts, and the wrapper's usage."""

import importlib.util
import subprocess
from pathlib import Path

import pytest

from core.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _device_check():
    spec = importlib.util.spec_from_file_location("device_check", ROOT / "benchmarks" / "device_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("tiny", [False, True])
def test_every_step_is_a_command_the_cli_accepts(tiny, tmp_path):
    """A renamed option would otherwise only show on the GPU machine, after minutes of device time."""
    parser = build_parser()
    steps = _device_check().commands(tiny, tmp_path / "runs")
    assert [name.split()[0] for name, *_ in steps] == ["plan", "plan", "engine", "engine", "engine", "engine",
                                                       "sim", "train"]
    for name, args, budget, _ in steps:
        parsed = parser.parse_args(args)
        assert parsed.command == args[0], name
    full = dict((name, args) for name, args, *_ in _device_check().commands(False, tmp_path))
    assert "10000000" in full["sim 10,000,000 strokes"]
    assert full["engine 400 nets bf16"][full["engine 400 nets bf16"].index("--precision") + 1] == "bf16"
    assert sum(budget for _, _, budget, _ in steps) >= 480  # the deadline, not the steps, bounds the run


def test_the_wrapper_wants_a_directory():
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh")], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("usage: benchmarks/device_check.sh DIR")
