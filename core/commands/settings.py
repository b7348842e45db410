"""`mothtui settings path|show [--json]`: where the settings file is, and the settings in effect."""

from __future__ import annotations

import argparse
import json
import sys

from core.cli import json_option
from core.settings import compilation_cache_dir, load_settings, settings_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("path", "show"), help="path: print its path; show: the settings in effect")
    json_option(parser)


def run(args) -> int:
    if args.what == "path":
        print(settings_path())
        return 0
    settings = load_settings()
    for problem in settings.problems:
        print(f"mothtui: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps(settings.to_dict()))
        return 0
    print(f"# {settings.path}" + ("" if settings.exists else " (not written yet: defaults)"))
    print(f"theme = {json.dumps(settings.theme or 'textual-dark')}")
    print(f"runs = {json.dumps(settings.runs or './runs')}")
    cache = compilation_cache_dir(settings)
    print(f"compilation_cache = {json.dumps(str(cache) if cache else 'off')}")
    print("\n[keys]")
    for binding_id, keys in sorted(settings.keys.items()):
        print(f"{json.dumps(binding_id)} = {json.dumps(keys)}")
    print("\n[notifications]")
    print(f"enabled = {str(settings.notify).lower()}")
    print(f"bell = {str(settings.bell).lower()}")
    print(f"desktop = {json.dumps(settings.desktop)}")
    return 0
