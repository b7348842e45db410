"""A store of many small runs: how long `mothtui runs --json` and the app's first paint take.

Builds `--runs N` copies (hard links: seconds, no extra disk) of one synthetic finished run
(`tests/fixture_runs.make_fixture_run`) in a temporary directory, then times, in fresh processes:
`mothtui runs --json` the first time (every run's disk use measured and remembered in
`<runs>/.cache/disk.json`) and again (from the cache), and the app until its runs table holds
every run (Textual's headless Pilot). Wall time and the child's CPU time (user + system), which
a loaded machine inflates less. Prints a summary, or one JSON document with `--json`.

    python benchmarks/large_store.py [--runs 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

APP_PROBE = """
import asyncio, sys, time
sys.path.insert(0, {tests!r})
t0 = time.perf_counter()
from tui.helpers import make_app
from mothtui.screens.runs import RunsTable

async def main():
    app = make_app({runs!r})
    async with app.run_test(size=(160, 50)):
        while True:
            tables = list(app.screen.query(RunsTable))
            if tables and tables[0].row_count >= {count}:
                break
            await asyncio.sleep(0.01)
        print(time.perf_counter() - t0)

asyncio.run(main())
"""


def timed(command: list[str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, stdout) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from fixture_runs import make_fixture_run

    with tempfile.TemporaryDirectory(prefix="mothtui-large-store-") as tmp:
        runs = Path(tmp) / "runs"
        make_fixture_run(runs, "r00000")
        for i in range(1, args.runs):
            shutil.copytree(runs / "r00000", runs / f"r{i:05d}", copy_function=os.link)
        listing = [sys.executable, "-m", "core", "runs", "--json", "--runs", str(runs)]
        first = timed(listing)[:2]
        cached = min((timed(listing)[:2] for _ in range(3)), key=lambda x: x[0])
        probe = APP_PROBE.format(tests=str(ROOT / "tests"), runs=str(runs), count=args.runs)
        wall, cpu, out = timed([sys.executable, "-c", probe])
        result = {"runs": args.runs, "load_average": os.getloadavg()[0],
                  "runs_json_first": {"wall_s": first[0], "cpu_s": first[1]},
                  "runs_json_cached": {"wall_s": cached[0], "cpu_s": cached[1]},
                  "app_first_paint": {"wall_s": float(out.strip().splitlines()[-1]), "process_cpu_s": cpu}}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.runs} runs (load average {result['load_average']:.1f})")
    for name, key in (("runs --json, first (measures disk use)", "runs_json_first"),
                      ("runs --json, again (cached disk use)", "runs_json_cached")):
        print(f"  {name:<40} {result[key]['wall_s']:.2f} s wall · {result[key]['cpu_s']:.2f} s CPU")
    app = result["app_first_paint"]
    print(f"  {'app: every run in the table':<40} {app['wall_s']:.2f} s wall · "
          f"{app['process_cpu_s']:.2f} s CPU (whole process)")


if __name__ == "__main__":
    main()
