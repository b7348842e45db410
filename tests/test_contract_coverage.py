"""The layering contract "lower layers never import the commands layer" names every module of core
but the commands layer: a new module is covered the day it is added, or this test says which."""

import pkgutil
import tomllib
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parents[1]
COMMANDS_LAYER = {"core.cli", "core.commands", "core.__main__"}


def test_every_core_module_is_under_the_commands_contract():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layered = next(c for c in contracts if c["name"] == "lower layers never import the commands layer")
    covered = set(layered["source_modules"])
    top = {f"core.{m.name}" for m in pkgutil.iter_modules(core.__path__)}
    assert top - COMMANDS_LAYER - covered == set(), "add them to the contract in pyproject.toml"
    assert covered - top == set(), "the contract names modules that do not exist"
