"""The engine's programs compiled for a GPU that is not here (XLA's deviceless ahead-of-time compilation).

`mothtui plan --gpu h100|h200` (core/plan.py) compiles the very training chunk and evaluation block a
run on that GPU would compile, for a compile-only CUDA device, and reads XLA's analyses of the GPU
program: its memory (argument, output, temporaries: does it fit?) and, from the optimised and fused
GPU module, its FLOPs and bytes accessed (what a roofline needs). No GPU is touched.

How (jaxlib 0.10.2, tried on a CPU-only machine):

- the CUDA PJRT plugin must be installed (`pip install -e '.[gpu-plan]'`: `jax-cuda12-plugin` with
  `nvidia-cuda-nvcc-cu12` for ptxas; no CUDA driver, no GPU). `jax.experimental.topologies.get_topology_desc(
  platform="cuda", target_config=TEXT, topology="1x1x1")` then gives a compile-only device, as JAX's own
  `test_deviceless_aot_compile` does. TEXT is a `stream_executor.GpuTargetConfigProto` in text format:
  this plugin embeds none by name, so `target_config_text` writes one from the GPU's published facts
  (`TARGETS`), or the caller passes XLA's own spec (`--target-config FILE`, e.g.
  xla/backends/gpu/target_config/specs/h100_sxm.txtpb of the openxla/xla repository; fields this jaxlib
  does not know are dropped, `load_target_config`).
- `compiled.memory_analysis()` works for the compile-only device; `compiled.cost_analysis()` returns
  None there (the compile-only client has no cost model: "GetCostAnalysis is not supported"), so the
  cost is XLA's `HloCostAnalysis` run on the compiled GPU module (`hlo_module_cost_analysis` with the
  CPU client: the same counting rules, applied to the GPU's fusions, so bytes are those of the kernels
  the GPU runs). As on a CPU, a loop body (the chunk's scan) is counted once.
- without a GPU, XLA cannot autotune: the GEMM tilings are its heuristics' (a real GPU may pick others;
  the memory and the bytes between kernels do not change with the tiling).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jax

from core.errors import MothError


@dataclass(frozen=True)
class Target:
    """One GPU model: what the target config and the roofline need (published figures)."""

    key: str
    name: str
    """As the CUDA driver names it (XLA's device description)."""
    memory: int
    """HBM bytes."""
    bandwidth: float
    """HBM bytes/s."""
    cores: int
    """Streaming multiprocessors."""
    clock_ghz: float
    l2: int


#: The GPUs `plan --gpu` knows (Hopper, compute capability 9.0; NVIDIA's data sheets).
TARGETS = {
    "h100": Target("h100", "NVIDIA H100 80GB HBM3", 84_942_979_072, 3.35e12, 132, 1.98, 50 * 2 ** 20),
    "h200": Target("h200", "NVIDIA H200 141GB HBM3e", 151_397_597_184, 4.8e12, 132, 1.98, 50 * 2 ** 20),
}
#: The share of a GPU's memory JAX lets its allocator take by default (XLA_PYTHON_CLIENT_MEM_FRACTION):
#: a device's `bytes_limit`, which the engine sizes its evaluation blocks by.
ALLOCATOR_FRACTION = 0.75


def target_config_text(target: Target) -> str:
    """A GpuTargetConfigProto (text format) for `target`: Hopper's per-SM limits (CUDA's documented
    compute capability 9.0 values) and the model's SMs, clock, L2, memory and bandwidth."""
    info = {
        "threads_per_block_limit": 1024, "threads_per_warp": 32, "shared_memory_per_block": 48 * 1024,
        "shared_memory_per_core": 228 * 1024, "threads_per_core_limit": 2048, "core_count": target.cores,
        "fpus_per_core": 128, "block_dim_limit_x": 2 ** 31 - 1, "block_dim_limit_y": 65535,
        "block_dim_limit_z": 65535, "memory_bandwidth": int(target.bandwidth), "l2_cache_size": target.l2,
        "clock_rate_ghz": target.clock_ghz, "device_memory_size": target.memory,
        "shared_memory_per_block_optin": 227 * 1024, "registers_per_core_limit": 65536,
        "registers_per_block_limit": 65536,
    }
    lines = ["gpu_device_info {"] + [f"  {k}: {v}" for k, v in info.items()]
    lines += ["  cuda_compute_capability { major: 9 minor: 0 }",
              "  thread_dim_limit_x: 1024", "  thread_dim_limit_y: 1024", "  thread_dim_limit_z: 64",
              '  device_vendor: "NVIDIA Corporation"', '  platform_version: "Compute Capability 9.0"',
              f'  name: "{target.name}"', "}", 'platform_name: "CUDA"',
              "dnn_version_info { major: 9 minor: 8 patch: 0 }", f'device_description_str: "{target.name}"']
    return "\n".join(lines) + "\n"


def _drop_field(text: str, field: str) -> str:
    """`text` without the field `field` (a scalar line, or a whole `field { ... }` block)."""
    out, depth = [], 0
    for line in text.splitlines():
        stripped = line.strip()
        if depth:
            depth += stripped.count("{") - stripped.count("}")
            continue
        if re.match(rf"{re.escape(field)}\s*[:{{]", stripped):
            depth = stripped.count("{") - stripped.count("}")
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def topology(target_config: str):
    """The compile-only CUDA topology of one device for `target_config` (text proto).

    MothError if the plugin is missing or XLA refuses the config."""
    from jax.experimental import topologies

    try:
        import jax_plugins.xla_cuda12  # noqa: F401  (the CUDA PJRT plugin; no GPU needed)
    except ImportError as err:
        raise MothError("plan --gpu needs the CUDA plugin (no GPU needed): pip install -e '.[gpu-plan]'") from err
    try:
        return topologies.get_topology_desc(platform="cuda", target_config=target_config, topology="1x1x1")
    except Exception as err:  # XLA logs the offending field on stderr
        raise MothError(f"the GPU target config was refused: {str(err).splitlines()[0]}") from err


def load_target_config(path: str) -> str:
    """XLA's spec file at `path`, less the fields the installed jaxlib's proto lacks (NEWER_FIELDS: XLA
    refuses the whole config for one unknown field; it logs the field's name on stderr)."""
    try:
        text = open(path).read()
    except OSError as err:
        raise MothError(f"--target-config {path}: {err.strerror}") from err
    for field in NEWER_FIELDS:
        text = _drop_field(text, field)
    return text


#: Fields of XLA's newer spec files that jaxlib 0.10.2's GpuTargetConfigProto lacks (found by trying
#: xla/backends/gpu/target_config/specs/h100_sxm.txtpb and h200.txtpb).
NEWER_FIELDS = ("collective_memory_granularity",)


def module_cost(compiled) -> dict[str, float] | None:
    """FLOPs and bytes accessed of the compiled GPU module (HloCostAnalysis with the CPU client's
    rules, on the GPU's optimised, fused HLO); None where this jaxlib cannot say."""
    from jax._src.lib import xla_client as xc

    try:
        modules = compiled.runtime_executable().hlo_modules()
        cpu = jax.devices("cpu")[0].client
        total = {"flops": 0.0, "bytes": 0.0}
        for module in modules:
            analysis = xc._xla.hlo_module_cost_analysis(cpu, module)
            total["flops"] += float(analysis.get("flops", 0.0))
            total["bytes"] += float(analysis.get("bytes accessed", 0.0))
    except Exception:
        return None
    return total if total["flops"] else None


def eval_rows(config, largest_split: int, target: Target) -> int:
    """Rows per evaluation block on `target`, as `core.engine.evaluate.block_rows` chooses them on a
    GPU whose `bytes_limit` is ALLOCATOR_FRACTION of its memory (whole ensemble at once)."""
    from core.engine.evaluate import EVAL_ACTIVATION_BYTES, EVAL_MEMORY_SHARE

    widest = max(config.layer_sizes)
    memory = min(EVAL_ACTIVATION_BYTES, int(target.memory * ALLOCATOR_FRACTION * EVAL_MEMORY_SHARE))
    cap = memory // (4 * widest * max(1, config.nets))
    return max(1, min(config.eval_batch, largest_split, cap // 256 * 256 or cap))


def compile_for(config, split_rows: dict[str, int], target: Target, target_config: str | None = None):
    """The run's training chunk (its own steps per call) and evaluation block compiled for one `target`
    GPU holding every network, as the engine runs them there (all networks at once, the GPU's block
    rows): `(setup, chunk, block)`, each program with XLA's memory analysis and the module's cost."""
    from core.engine import loop, measure
    from core.engine.sharding import AXIS, Placement
    from jax.experimental import topologies

    topo = topology(target_config or target_config_text(target))
    place = Placement(topologies.make_mesh(topo=topo, mesh_shape=(1,), axis_names=(AXIS,)))
    rows = eval_rows(config, max(split_rows.values()), target)
    # the engine's set-up on that GPU: every network in one group, the GPU's evaluation blocks
    setup = loop.Setup.of(config, split_rows, place=place, layout=loop.Layout(config.nets, rows, 0))
    programs = [measure.compile_chunk(setup, place, setup.budget.chunk, all_at_once=True),
                measure.compile_eval(setup, place, rows, all_at_once=True)]
    chunk, block = (p._replace(cost=module_cost(p.compiled)) for p in programs)
    return setup, chunk, block
