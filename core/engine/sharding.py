"""The network axis over devices: a mesh on the local devices, and a process's slice of the networks.

Networks are independent, so the stacked arrays are split along their leading axis with
`NamedSharding(mesh, P('nets'))` and XLA needs no communication; the data are replicated.
The mesh uses the largest number of local devices that divides the network count and leaves
every device at least two networks. Why two: XLA compiles a batch of one network to a plain
GEMM whose rounding differs (by an ulp) from the batched kernel used for two or more, and a
run's results must not depend on how its networks are spread over devices.

Multi-host (a later issue): each process owns a contiguous `NetSlice` of the network axis,
initialises only those networks (network i is drawn from fold_in(seed, i)), trains them on its
local devices and writes its own chunks of the run store (`Run.write_level(..., nets=slice)`;
`Run.create(chunk_nets=...)` aligns chunks with slices). Only process 0 advances
`levels_complete`, after every process has written its slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "nets"


@dataclass(frozen=True)
class NetSlice:
    """The networks [start, stop) owned by one process."""

    start: int
    stop: int

    @property
    def count(self) -> int:
        return self.stop - self.start

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)

    @property
    def range(self) -> range:
        return range(self.start, self.stop)


def process_slice(nets: int, process_index: int = 0, process_count: int = 1) -> NetSlice:
    """Contiguous, near-equal slices of the network axis, one per process."""
    per = -(-nets // process_count)
    start = min(nets, process_index * per)
    return NetSlice(start, min(nets, start + per))


#: Fewest networks per device (see the module docstring).
MIN_NETS_PER_DEVICE = 2


def make_mesh(nets: int, devices: list | None = None) -> Mesh:
    """A 1-D mesh over as many local devices as evenly divide `nets`, at least two networks each."""
    devices = list(devices if devices is not None else jax.local_devices())
    count = max(d for d in range(1, len(devices) + 1)
                if nets % d == 0 and (d == 1 or nets // d >= MIN_NETS_PER_DEVICE))
    return Mesh(np.array(devices[:count]), (AXIS,))


class Placement:
    """Puts arrays on a mesh: network-axis arrays sharded `by_network`, everything else replicated."""

    def __init__(self, mesh: Mesh):
        self.mesh = mesh
        self.by_network = NamedSharding(mesh, P(AXIS))
        self.replicated = NamedSharding(mesh, P())

    @property
    def devices(self) -> int:
        return self.mesh.devices.size

    @property
    def device_kind(self) -> str:
        """What the devices are: "cpu", or the accelerator's name ("NVIDIA H200")."""
        device = self.mesh.devices.flat[0]
        return "cpu" if device.platform == "cpu" else str(device.device_kind)

    def sharded(self, tree):
        """Arrays whose leading axis is the network axis (params, masks, flags), sharded `by_network`."""
        return jax.device_put(tree, self.by_network)

    def state(self, tree):
        """A pytree mixing network-axis arrays and scalars (the optimizer's step count)."""
        return jax.tree.map(lambda a: jax.device_put(a, self.by_network if np.ndim(a) else self.replicated), tree)

    def data(self, array):
        """Data every network sees (batches, split arrays, indices)."""
        return jax.device_put(array, self.replicated)
