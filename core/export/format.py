"""The export file format: one `.npz` per network plus `manifest.json`, written byte-reproducibly,
and `load`, which reads a file back into something plain numpy runs.

`forward` is the contract's forward pass in float64 numpy: the documented plain-numpy twin of
the engine's JAX forward pass (`core.engine.model.forward`, float32). The two are tested equal
on a trained run (tests/core/test_engine_run.py); this one exists so that
`core.export.load(path).predict(x)` needs numpy and nothing else.

Keys of a network file (docs/store-format.md, docs/export.md): `layer_{k}_weight`, `layer_{k}_bias`, their masks,
`x_min`, `x_max`, `y_min`, `y_max`, `input_names`, `output_names`, `meta` (JSON); a compacted
file adds `layer_{h}_units`. Reproducible: no timestamps, zip entries carry a fixed date, keys
in a fixed order.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from core import paths
from core.errors import MothError

FORMAT = "mothtui.export"
FORMAT_VERSION = 1
MANIFEST = paths.EXPORT_MANIFEST
COMPACT_DIR = paths.EXPORT_COMPACT_DIR
EDGES_DIR = paths.EXPORT_EDGES_DIR
#: Zip entries get this date instead of "now", so identical inputs give identical bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# ---- the forward pass (the contract's, in float64) -----------------------------------------

def forward(x: np.ndarray, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
            x_min: np.ndarray, x_max: np.ndarray, y_min: np.ndarray, y_max: np.ndarray) -> np.ndarray:
    """Physical inputs (n, 10) -> physical outputs (n, 7): scale, tanh layers, linear last, unscale."""
    x = np.asarray(x, dtype=np.float64)
    h = (x - x_min) / (x_max - x_min) - 0.5
    last = len(weights) - 1
    for k, (w, b) in enumerate(zip(weights, biases)):
        h = h @ np.asarray(w, dtype=np.float64) + np.asarray(b, dtype=np.float64)
        if k < last:
            h = np.tanh(h)
    return (h + 0.5) * (y_max - y_min) + y_min


@dataclass(repr=False)
class ExportedNetwork:
    """One exported network: its layers (float arrays), masks, scaler, names and `meta` dict."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    weight_masks: list[np.ndarray]
    bias_masks: list[np.ndarray]
    x_min: np.ndarray
    x_max: np.ndarray
    y_min: np.ndarray
    y_max: np.ndarray
    input_names: list[str]
    output_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def layer_sizes(self) -> list[int]:
        return [self.weights[0].shape[0], *(w.shape[1] for w in self.weights)]

    @property
    def nonzeros(self) -> int:
        """Surviving weights and biases (the masks' count)."""
        return int(sum(int(np.count_nonzero(m)) for m in (*self.weight_masks, *self.bias_masks)))

    def __repr__(self) -> str:
        """One line a REPL can show (the dataclass's default printed every array: hundreds of lines)."""
        meta = self.meta
        run = f" of run {meta['run']!r}" if meta.get("run") else ""
        level = f" level {meta['level']}" if meta.get("level") is not None else ""
        sparsity = f" sparsity {meta['sparsity']:.3f}" if isinstance(meta.get("sparsity"), (int, float)) else ""
        total = sum(m.size for m in (*self.weight_masks, *self.bias_masks))
        return (f"<ExportedNetwork net {meta.get('network', '?')}{run}{level}{sparsity}"
                f"{' compacted' if meta.get('compacted') else ''} · layers {'-'.join(map(str, self.layer_sizes))}"
                f" · {self.nonzeros:,}/{total:,} nonzero{f' · {self.path.name}' if self.path else ''}>")

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n, 10) physical inputs in the order of `input_names` -> (n, 7) physical outputs."""
        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 1
        x2 = x[None, :] if single else x
        if x2.ndim != 2 or x2.shape[1] != len(self.x_min):
            raise ValueError(f"predict expects (n, {len(self.x_min)}) inputs, got shape {x.shape}")
        y = forward(x2, self.weights, self.biases, self.x_min, self.x_max, self.y_min, self.y_max)
        return y[0] if single else y


def load(path: Path | str, network: int | None = None, *, compacted: bool = False) -> ExportedNetwork:
    """An exported network from an `.npz` (or `.safetensors`) file, or from an export directory and a
    network index (its npz file; its safetensors file in an export without npz)."""
    path = Path(path)
    if path.is_dir():
        manifest = read_manifest(path)
        entries = manifest["networks"]
        if network is None:
            if len(entries) != 1:
                raise MothError(f"{path} holds {len(entries)} networks: name one "
                                f"({', '.join(str(e['network']) for e in entries)})")
            entry = entries[0]
        else:
            matches = [e for e in entries if e["network"] == int(network)]
            if not matches:
                raise MothError(f"network {network} is not in the export at {path}")
            entry = matches[0]
        key = "compacted" if compacted else "file"
        if key not in entry:  # exported without npz (`--format safetensors,onnx`): read the safetensors file
            files = entry.get("compacted_files" if compacted else "files", {})
            if "safetensors" not in files:
                raise MothError(f"the export at {path} has no npz or safetensors files (formats: "
                                f"{', '.join(files) or 'none'}); load the onnx files with onnxruntime")
            return load(path / files["safetensors"])
        name: str = entry[key]
        path = path / name
    try:
        if path.suffix == ".safetensors":  # the same arrays, pickle-free (core.export.safetensors_file)
            from core.export.safetensors_file import npz_arrays

            arrays = npz_arrays(path)
        else:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise MothError(f"no exported network at {path}") from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise MothError(f"{path} is not a readable exported network ({err})") from None
    n_layers = sum(1 for k in arrays if k.startswith("layer_") and k.endswith("_weight"))
    try:
        return ExportedNetwork(
            weights=[arrays[f"layer_{k}_weight"] for k in range(n_layers)],
            biases=[arrays[f"layer_{k}_bias"] for k in range(n_layers)],
            weight_masks=[arrays[f"layer_{k}_weight_mask"] for k in range(n_layers)],
            bias_masks=[arrays[f"layer_{k}_bias_mask"] for k in range(n_layers)],
            x_min=arrays["x_min"], x_max=arrays["x_max"], y_min=arrays["y_min"], y_max=arrays["y_max"],
            input_names=[str(s) for s in arrays["input_names"]],
            output_names=[str(s) for s in arrays["output_names"]],
            meta=json.loads(str(arrays["meta"])), path=path)
    except (KeyError, ValueError) as err:
        raise MothError(f"{path} is not a mothtui exported network (missing {err})") from None


def read_manifest(directory: Path | str) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MothError(f"no {MANIFEST} in {directory}: not a finished export") from None
    except (OSError, ValueError) as err:
        raise MothError(f"{path} is unreadable ({err})") from None


# ---- writing --------------------------------------------------------------------------------

def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """An .npz (deflated) that np.load reads, byte-identical for identical arrays; atomic rename."""
    tmp = paths.partial_file(path)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buffer.getvalue())
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    tmp = paths.partial_file(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def network_arrays(weights, biases, weight_masks, bias_masks, scaler, input_names, output_names,
                    meta, kept=None) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for k in range(len(weights)):
        arrays[f"layer_{k}_weight"] = weights[k]
        arrays[f"layer_{k}_bias"] = biases[k]
        arrays[f"layer_{k}_weight_mask"] = np.asarray(weight_masks[k], dtype=bool)
        arrays[f"layer_{k}_bias_mask"] = np.asarray(bias_masks[k], dtype=bool)
    if kept is not None:
        for h, units in enumerate(kept):
            arrays[f"layer_{h}_units"] = np.asarray(units, dtype=np.int64)
    for key in ("x_min", "x_max", "y_min", "y_max"):
        arrays[key] = np.asarray(scaler[key], dtype=np.float64)
    arrays["input_names"] = np.asarray(list(input_names), dtype=str)
    arrays["output_names"] = np.asarray(list(output_names), dtype=str)
    arrays["meta"] = np.asarray(json.dumps(meta, sort_keys=True))
    return arrays


def config_hash(config_dict: Mapping[str, Any]) -> str:
    """sha256 of the run's resolved config (canonical JSON): names the exact recipe."""
    return hashlib.sha256(json.dumps(config_dict, sort_keys=True).encode()).hexdigest()
