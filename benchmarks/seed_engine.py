"""Engine vs the seed's loop structure vs this machine's matmul peak, in one run.

    python benchmarks/seed_engine.py [--nets 8] [--batch 128] [--hidden 400,400,400,16] [--steps 200]
        [--also-hidden 64,64,16]

Prints one JSON document per ensemble: the engine (K steps per compiled call, donated buffers,
losses pulled once per call) and the seed's structure (one compiled step per Python call, host
batches, no donation, per-network losses pulled every step), both on the same ensemble, and the
float32 matmul peak measured in the same process. See core/engine/bench.py for the protocol.
"""

from __future__ import annotations

import argparse
import json

from core.engine.bench import benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", default="400,400,400,16")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--also-hidden", action="append", default=[],
                        help="another ensemble to measure in the same run (e.g. the quick preset's 64,64,16)")
    args = parser.parse_args()
    for hidden in [args.hidden, *args.also_hidden]:
        widths = tuple(int(v) for v in hidden.split(","))
        print(json.dumps(benchmark(args.nets, args.batch, widths, args.steps, repeats=args.repeats)), flush=True)


if __name__ == "__main__":
    main()
