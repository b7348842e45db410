#!/usr/bin/env bash
# One-shot GPU check of mothtui: `benchmarks/device_check.sh DIR [--tiny] [--deadline S]`.
#
# Runs as it is on a GPU machine that has CUDA JAX installed but may have no network: it installs
# this checkout without dependencies (pip --no-deps --no-build-isolation, so nothing is fetched),
# checks that the modules the engine needs import, then runs benchmarks/device_check.py, which
# writes DIR/device_check.json and DIR/device_check.md (at most 8 minutes on one H100 or H200).
#
# Besides CUDA JAX (jax, jaxlib, the CUDA plugin; numpy, scipy and ml_dtypes come with it) the
# headless commands need these wheels: flax, optax, chex, zarr (with numcodecs, donfig, crc32c),
# rich, psutil, platformdirs, shtab. flax brings msgpack, orbax-checkpoint, tensorstore, treescope,
# PyYAML; optax brings absl-py and toolz. All but psutil, msgpack, tensorstore, numcodecs, crc32c
# and PyYAML are pure Python. On a machine with a network:
#   pip download flax optax zarr rich psutil platformdirs shtab -d wheels/
# and on the GPU machine: pip install --no-index --find-links wheels/ flax optax zarr rich psutil platformdirs shtab
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: benchmarks/device_check.sh DIR [--tiny] [--deadline SECONDS]" >&2
  exit 2
fi
out=$1; shift
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
mkdir -p "$out"

missing=$("$python" - <<'PY'
import importlib.util
need = ["jax", "numpy", "scipy", "flax", "optax", "zarr", "rich", "psutil", "platformdirs", "shtab"]
print(" ".join(m for m in need if importlib.util.find_spec(m) is None))
PY
)
if [ -n "$missing" ]; then
  echo "device_check: missing Python modules: $missing (see the top of $0 for the wheels to bring)" >&2
  exit 2
fi

# The project itself, without dependencies; if even that cannot be installed (no setuptools, a
# read-only site-packages), run it from the checkout.
if "$python" -m pip install --quiet --no-deps --no-build-isolation -e "$repo" >"$out/pip.log" 2>&1; then
  mothtui="$python -m core.cli"
else
  echo "device_check: pip install failed (see $out/pip.log); running from the checkout" >&2
  export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
  mothtui="$python -m core.cli"
fi
cd "$repo"
exec "$python" benchmarks/device_check.py "$out" --mothtui "$mothtui" "$@"
