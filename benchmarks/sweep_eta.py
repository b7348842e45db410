"""How far a sweep's ETA (the runs list's sweep line) was from the truth, watched live.

    python benchmarks/sweep_eta.py RUNS_DIR [--preset smoke] [--grid seed=1,2,3] [--id eta-sweep]

Queues the sweep (`mothtui sweep`, its detached supervisor runs it), then once a second reads what
`mothtui runs` would show for it (`core.sweep_status.sweep_statuses`) until every run has ended,
and compares each ETA with the time the sweep really took from then: the median and worst relative
error, and the share within ±30 % (issue 20's goal), over the ETAs shown while at least one run was
still to finish. Also prints each member run's own ETA accuracy (`eta_accuracy.py`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--grid", default="seed=1,2,3")
    parser.add_argument("--id", default="eta-sweep")
    args = parser.parse_args()

    from core.runlist import list_runs
    from core.sweep_status import sweep_statuses

    subprocess.run([sys.executable, "-m", "core", "sweep", "--runs", str(args.runs), "--preset", args.preset,
                    "--grid", args.grid, "--id", args.id], check=True)
    seen: list[tuple[float, float]] = []  # (time, eta_s)
    while True:
        now = time.time()
        status = next(s for s in sweep_statuses(args.runs, list_runs(args.runs), now=now) if s.name == args.id)
        if status.done + status.failed >= status.total:
            end = now
            break
        if status.eta_s is not None:
            seen.append((now, status.eta_s))
        time.sleep(1.0)
    errors = [eta / (end - t) - 1.0 for t, eta in seen if end - t > 1.0]
    if not errors:
        print(f"sweep {args.id}: no ETA was shown")
        return 1
    print(f"sweep {args.id} ({status.total} runs of {args.preset}, {args.grid}): {len(errors)} ETAs shown; "
          f"median error {statistics.median(errors):+.0%}, worst {max(errors, key=abs):+.0%}, "
          f"within ±30 %: {sum(abs(e) <= 0.3 for e in errors) / len(errors):.0%}")
    members = [s.run_id for s in list_runs(args.runs) if s.sweep == args.id]
    subprocess.run([sys.executable, str(Path(__file__).with_name("eta_accuracy.py")), "--runs", str(args.runs),
                    *members])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
