"""The vmapped train-and-prune engine: N MLPs trained at once, pruned level by level.

Modules (each small, each importing JAX itself; nothing here is imported by the UI):

- `model`     the network (flax nnx) and its split state as stacked plain arrays `(N, ...)`
- `train`     the compiled multi-step training chunk (lax.scan, donated buffers, masks,
              per-network early stopping and divergence freezing)
- `prune`     per-network magnitude pruning (layer-wise or global, optional biases)
- `evaluate`  per-network MSE over whole splits, streamed in blocks
- `sharding`  the network axis over local devices, and a process's slice of it
- `loop`      the level loop: run store writes, events, resume
- `bench`     throughput, the seed's loop structure, and the float32 matmul peak
"""
