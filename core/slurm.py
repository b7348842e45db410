"""A sweep as a SLURM job array: past one node, the cluster's scheduler is the queue.

`mothtui sweep ... --slurm FILE` writes a bash script for `sbatch`: one array task per sweep point,
each running `mothtui train` on the shared run store with the point's `--id` and `--sweep`, exactly
the arguments the local queue would use (`SweepSpec.train_args`). The script is resumable by
submitting it again: a task whose run is done does nothing, one whose run exists is resumed
(`mothtui resume`, from its last complete level), one whose run never got its store starts afresh.
`$MOTHTUI` names the command (default `mothtui`; e.g. `MOTHTUI="python -m core"`). Partition,
account, time and GPUs are the site's: the script has a place for them and `sbatch` options override.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from core import paths
from core.errors import StoreError
from core.sweep import SweepRecord, SweepSpec

HEADER = """#!/bin/bash
# mothtui sweep {name}: {count} runs, one SLURM array task each, on the run store {runs}.
# Submit: sbatch {script}   (submit it again to resume: done runs are skipped, the others continue)
# Made by: mothtui sweep --slurm; each task runs `mothtui train ... --id <run> --sweep {name}`.
#SBATCH --job-name=mothtui-{name}
#SBATCH --array=0-{last}
#SBATCH --output={runs}/{logs}/{name}-%a.slurm.log
#SBATCH --gres=gpu:1
# Add your site's options here (or on the sbatch command line), e.g.:
# #SBATCH --partition=gpu
# #SBATCH --time=24:00:00
set -euo pipefail
MOTHTUI=${{MOTHTUI:-mothtui}}  # word-split on purpose: MOTHTUI="python -m core" works
RUNS={runs_q}
SWEEP={name_q}
TASK=${{SLURM_ARRAY_TASK_ID:?submit with sbatch, or set SLURM_ARRAY_TASK_ID}}
case "$TASK" in
"""

FOOTER = """  *) echo "mothtui: sweep {name} has no point $TASK (0-{last})" >&2; exit 2 ;;
esac
RUN="$RUNS/$ID"
if [ -f "$RUN/{meta}" ]; then
  if grep -q '"status": *"done"' "$RUN/{meta}"; then
    echo "$ID is done"
    exit 0
  fi
  exec $MOTHTUI resume "$ID" --runs "$RUNS" --quiet
fi
if [ -d "$RUN" ]; then  # claimed by an earlier attempt that died before writing its store
  rm -f "$RUN/{owner}"
  rmdir "$RUN" 2>/dev/null || true
fi
exec $MOTHTUI train "${{ARGS[@]}}" --runs "$RUNS" --id "$ID" --sweep "$SWEEP" --quiet
"""


def script_text(record: SweepRecord, spec: SweepSpec, runs_dir: Path | str, script: Path | str) -> str:
    """The job-array script of a sweep (absolute paths: tasks run wherever SLURM starts them)."""
    runs = str(Path(runs_dir).resolve())
    last = len(record.points) - 1
    lines = [HEADER.format(name=record.name, count=len(record.points), runs=runs, runs_q=shlex.quote(runs),
                           name_q=shlex.quote(record.name), script=script, last=last, logs=paths.LOGS_DIR)]
    for task, point in enumerate(record.points):
        args = " ".join(shlex.quote(a) for a in spec.train_args(point.values))
        lines.append(f"  {task}) ID={shlex.quote(point.run)}; ARGS=({args}) ;;\n")
    lines.append(FOOTER.format(name=record.name, last=last, meta=paths.ZARR_META, owner=paths.OWNER_FILE))
    return "".join(lines)


def write_script(path: Path, record: SweepRecord, spec: SweepSpec, runs_dir: Path | str) -> Path:
    """Write the script (executable); StoreError rather than overwrite an existing file."""
    path = Path(path)
    paths.log_dir(runs_dir).mkdir(parents=True, exist_ok=True)  # SLURM does not create --output's folder
    try:
        with open(path, "x") as f:
            f.write(script_text(record, spec, runs_dir, path))
    except FileExistsError:
        raise StoreError(f"{path} exists: choose another --slurm file") from None
    except OSError as err:
        raise StoreError(f"cannot write {path}: {err.strerror or err}") from None
    os.chmod(path, 0o755)
    return path
