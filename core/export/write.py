"""`export_run`: the chosen networks of a run written into a new or empty directory.

For each network: its file in each chosen format (`net_007.npz`, `net_007.safetensors`,
`net_007.onnx`; core.export.formats), its compacted twin in each (`compact/net_007.npz`, ...) and
its edge list (`edges/net_007.csv`); `manifest.json` last, so an interrupted export never lists a
file that is not there, and a failed one leaves the directory as it was.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence, SupportsFloat

import numpy as np

from core import paths
from core.errors import MothError
from core.export.compaction import compact
from core.export.edges import edges_csv
from core.export.format import (COMPACT_DIR, EDGES_DIR, FORMAT, FORMAT_VERSION, MANIFEST, config_hash,
                                network_arrays, write_npz, write_text)
from core.export.formats import DEFAULT_FORMATS, SUFFIX, mothtui_version, parse_formats
from core.export.selection import choose
from core.runstore import StoredLevel
from core.schema import SPLITS
from core.select import Choice


def _finite(value: SupportsFloat) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def prepare_out(out: Path | str) -> Path:
    """Create `out` (and parents), or accept it if it is an empty directory; else MothError."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise MothError(f"--out {out} exists and is not a directory")
        if any(out.iterdir()):
            raise MothError(f"--out {out} is not empty: export into a new or empty directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / COMPACT_DIR).mkdir(exist_ok=True)
        (out / EDGES_DIR).mkdir(exist_ok=True)
    except OSError as err:
        raise MothError(f"cannot write to {out}: {err.strerror or err}") from None
    return out


def export_run(run, out: Path | str, *, threshold: float | None = None, split: str = "val",
               nets: Sequence[int] | None = None, level: int | None = None,
               overrides: Mapping[int, int] | None = None,
               formats: Sequence[str] = DEFAULT_FORMATS) -> dict[str, Any]:
    """Write the chosen networks of `run` into `out` (new or empty) in `formats` (core.export.formats:
    npz, safetensors, onnx); returns the manifest."""
    formats = parse_formats(formats)
    selection, choices = choose(run, threshold, split, nets, level, overrides)
    existed = Path(out).exists()
    out = prepare_out(out)
    try:
        return _write_export(run, out, selection, choices, split, formats)
    except BaseException:
        # leave `out` as it was (absent or empty), so a retry is not refused as "not empty"
        if existed:
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _write_export(run, out: Path, selection, choices, split: str, formats: Sequence[str]) -> dict[str, Any]:
    """The files of an export into the prepared directory `out`; the manifest last."""
    attrs = run.attrs
    scaler = run.scaler
    input_names = attrs.get("input_names")
    output_names = attrs.get("output_names")
    all_losses = {name: run.losses(name) for name in SPLITS}
    common = {"run": run.run_id, "threshold": selection.threshold, "split": split,
              "dataset": attrs.get("dataset"), "config_hash": config_hash(attrs["config"]),
              "activation": attrs.get("activation", "tanh"), "mothtui_version": mothtui_version()}
    entries = []
    by_level: dict[int, list[Choice]] = {}
    for c in choices:
        by_level.setdefault(c.level, []).append(c)
    try:
        for lvl in sorted(by_level):
            picked = by_level[lvl]
            arrays = run.level(lvl, [c.network for c in picked])
            for i, c in enumerate(picked):
                entries.append(_export_one(out, c, arrays.network(i), scaler, input_names, output_names,
                                           common, all_losses, formats))
        entries.sort(key=lambda e: e["network"])
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, **common, "formats": list(formats),
                    "layer_sizes": list(run.config.layer_sizes),
                    "input_names": list(input_names), "output_names": list(output_names),
                    "networks": entries}
        write_text(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    except OSError as err:
        raise MothError(f"cannot write the export to {out}: {err.strerror or err}") from None
    return manifest


def _export_one(out: Path, choice: Choice, layers: StoredLevel, scaler, input_names,
                output_names, common: dict[str, Any], all_losses: dict[str, np.ndarray],
                formats: Sequence[str] = DEFAULT_FORMATS) -> dict[str, Any]:
    net, lvl = choice.network, choice.level
    stem, edges = paths.export_stem(net), paths.export_edges(net)
    weights = [np.asarray(w, dtype=np.float32) for w in layers.weights]
    biases = [np.asarray(b, dtype=np.float32) for b in layers.biases]
    wmasks, bmasks = layers.weight_masks, layers.bias_masks
    total = sum(m.size for m in wmasks)
    remaining = sum(int(m.sum()) for m in wmasks) / total
    losses = {s: _finite(all_losses[s][lvl, net]) for s in all_losses}
    meta = {**common, "network": net, "level": lvl, "sparsity": choice.sparsity, "manual": choice.manual,
            "remaining": remaining, "losses": losses, "compacted": False}
    small = compact(weights, biases, wmasks, bmasks)
    sizes = [weights[0].shape[0], *(w.shape[1] for w in small.weights)]
    compact_meta = {**meta, "compacted": True, "ghosts_removed": small.removed, "layer_sizes": sizes}
    files = _write_formats(out, stem, formats, weights, biases, wmasks, bmasks, scaler, input_names,
                           output_names, meta)
    compacted = _write_formats(out, paths.export_compact_stem(net), formats, small.weights, small.biases,
                               small.weight_masks, small.bias_masks, scaler, input_names, output_names, compact_meta,
                               kept=small.kept)
    write_text(out / edges, edges_csv(weights, wmasks, input_names, output_names, small.kept))
    entry: dict[str, Any] = {"network": net, "level": lvl, "sparsity": choice.sparsity, "manual": choice.manual,
             "remaining": remaining, "losses": losses}
    if "npz" in files:  # the contract's keys name the npz files
        entry.update({"file": files["npz"], "compacted": compacted["npz"]})
    entry.update({"edges": edges, "files": files, "compacted_files": compacted,
                  "ghosts_removed": small.removed, "compacted_sizes": sizes})
    return entry


def _write_formats(out: Path, stem: str, formats: Sequence[str], weights, biases, wmasks, bmasks, scaler,
                   input_names, output_names, meta, kept=None) -> dict[str, str]:
    """One network in each format, `out/stem` + suffix; returns {format: path relative to `out`}."""
    arrays = network_arrays(weights, biases, wmasks, bmasks, scaler, input_names, output_names, meta, kept=kept)
    written = {}
    for fmt in formats:
        name = stem + SUFFIX[fmt]
        path = out / name
        if fmt == "npz":
            write_npz(path, arrays)
        elif fmt == "safetensors":
            from core.export.safetensors_file import safetensors_bytes

            write_bytes(path, safetensors_bytes(arrays))
        elif fmt == "onnx":
            from core.export.onnx_file import onnx_bytes

            write_bytes(path, onnx_bytes(weights, biases, scaler, input_names, output_names, meta))
        written[fmt] = name
    return written


def write_bytes(path: Path, data: bytes) -> None:
    """`data` into `path` under a `.partial` name, then renamed (never a half-written file)."""
    tmp = paths.partial_file(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)
