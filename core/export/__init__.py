"""Exporting chosen sparse networks as files that plain numpy can run, and loading them back.

`export_run` writes, into a new or empty directory:

- `net_007.npz` per chosen network, the contract's keys (`layer_{k}_weight`, `layer_{k}_bias`,
  their masks, `x_min`, `x_max`, `y_min`, `y_max`, `input_names`, `output_names`, `meta`);
- `compact/net_007.npz`, the same network with its ghost units removed (hidden units left with
  no input or no output): a smaller dense network with the same outputs;
- `edges/net_007.csv`, the surviving connections (`layer,source,target,weight,...`) for graph tools;
- with `formats` (`mothtui export --format npz,safetensors,onnx`; npz the default), the same
  networks as `net_007.safetensors` and `net_007.onnx` (and under `compact/`): core.export.formats;
- `manifest.json`, written last so an interrupted export never lists a file that is not there.

Reproducible: the same run, picks and options give identical bytes (no timestamps; zip entries
carry a fixed date; keys in a fixed order). `load(path).predict(x)` runs a file with numpy only.

One module per responsibility (this package re-exports their public names):

- `format`     the file format: npz + manifest, `load`, and `forward`, the plain-numpy twin of
               the engine's forward pass
- `compaction` ghost units: `compact`, `ghost_units`
- `edges`      the edge CSVs
- `formats`    which formats exist and what each needs (`parse_formats`); `safetensors_file`
               and `onnx_file` write them (the ONNX model with the scaling folded in)
- `selection`  what gets exported (`choose`, on top of core.select)
- `write`      `export_run`, which puts them together

The format: docs/store-format.md (the directory) and docs/export.md (the files). Must not
import JAX: the UI exports from its own process.
"""

from core.export.compaction import Compacted, compact, ghost_units
from core.export.edges import EDGE_COLUMNS, edge_rows, edges_csv
from core.export.formats import DEFAULT_FORMATS, FORMATS, parse_formats
from core.export.format import (COMPACT_DIR, EDGES_DIR, FORMAT, FORMAT_VERSION, MANIFEST, ExportedNetwork,
                                config_hash, forward, load, read_manifest, write_npz)
from core.export.selection import choose
from core.export.write import export_run, prepare_out

__all__ = ["COMPACT_DIR", "DEFAULT_FORMATS", "EDGES_DIR", "EDGE_COLUMNS", "FORMAT", "FORMATS", "FORMAT_VERSION",
           "MANIFEST", "Compacted", "ExportedNetwork", "choose", "compact", "config_hash", "edge_rows", "edges_csv",
           "export_run", "forward", "ghost_units", "load", "parse_formats", "prepare_out", "read_manifest",
           "write_npz"]
