"""The JAX moth flight simulator: `simulate`, `simulate_checked`, `sample_inputs`.

    final = simulate(initial (n, 8), controls (n, 3), scale=1.0)          # state at t = 0.02 s
    final, valid = simulate_checked(initial, controls, scale=1.0)          # plus per-sample check

Samples are independent, so the sample axis is split over every local JAX device
(`shard_map`, no communication) and, on each device, processed in fixed-size blocks with
`lax.map`. Every block has the same shape whatever the device count, so one device and four
give bit-identical results. Integration scheme, accuracy and validity check: `integrate.py`
and docs/sim.md.

Importing this package does not import JAX: the sampling names are pure numpy, and the
simulator names are loaded on first use (so the UI and the dataset reader stay light).
"""

from core.sim.sampling import (SAMPLING_BLOCK, SAMPLING_RANGES, SCALE_RANGE, sample_inputs, sample_rows,
                               validate_scale)

def use_all_cpu_cores() -> None:
    """Expose every CPU core as a JAX host device, so a CPU-only run shards over all of them.

    XLA runs one CPU device's elementwise kernels on one thread, so without this a CPU run
    uses one core. Only effective before JAX is first imported, and only if the user has not
    set the device count; harmless on GPU machines (JAX then uses the GPUs, not these).
    """
    import os
    import sys

    if "jax" in sys.modules or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={os.cpu_count() or 1}".strip()


_LAZY = {"INTEGRATOR", "integrator_settings", "simulate", "simulate_checked"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module("core.sim.api"), name)
    raise AttributeError(f"module 'core.sim' has no attribute {name!r}")


__all__ = ["use_all_cpu_cores", "INTEGRATOR", "SAMPLING_BLOCK", "SAMPLING_RANGES", "SCALE_RANGE", "integrator_settings", "sample_inputs",
           "sample_rows", "simulate", "simulate_checked", "validate_scale"]
