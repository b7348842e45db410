"""Exported networks as safetensors files: the same arrays as the `.npz`, pickle-free, for any
safetensors reader (`safetensors.numpy.load_file`, PyTorch, Rust, JAX tooling).

The format (https://huggingface.co/docs/safetensors): 8 bytes little-endian header length, a JSON
header `{name: {"dtype", "shape", "data_offsets"}, "__metadata__": {str: str}}` padded with spaces
to a multiple of 8, then the tensors' bytes, in header order. It is written here with numpy alone
(so the format needs no extra, and the bytes are reproducible: tensors and metadata in sorted
order); tests read the files back with the safetensors library.

Tensors: every numeric key of the network's `.npz` (`layer_{k}_weight`, `..._bias`, masks (BOOL),
`layer_{h}_units` for a compacted file, `x_min` ... `y_max`). Metadata (strings): `format`,
`format_version`, `input_names` and `output_names` (JSON lists), `meta` (the `.npz`'s JSON: run,
network, level, sparsity, config_hash, mothtui_version, ...).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from core.errors import MothError

FORMAT = "mothtui.export.safetensors"
FORMAT_VERSION = 1
_DTYPES: dict[np.dtype, str] = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int64"): "I64",
           np.dtype("int32"): "I32", np.dtype("bool"): "BOOL"}
_NUMPY = {code: dtype for dtype, code in _DTYPES.items()}
_TEXT_KEYS = ("input_names", "output_names", "meta")


def safetensors_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The file for a network's `.npz` arrays (core.export.format.network_arrays)."""
    tensors = {k: np.ascontiguousarray(v).astype(np.asarray(v).dtype.newbyteorder("<"))
               for k, v in arrays.items() if k not in _TEXT_KEYS}
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
                "input_names": json.dumps([str(s) for s in arrays["input_names"]]),
                "output_names": json.dumps([str(s) for s in arrays["output_names"]]),
                "meta": str(arrays["meta"])}
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    offset, blobs = 0, []
    for name in sorted(tensors):
        data = tensors[name]
        blob = data.tobytes()
        header[name] = {"dtype": _DTYPES[data.dtype.newbyteorder("=")], "shape": list(data.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def read_safetensors(path: Path | str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of a safetensors file, numpy only; MothError if it is not one."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        (size,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + size])
        metadata = header.pop("__metadata__", {}) or {}
        data = memoryview(raw)[8 + size:]
        tensors = {}
        for name, spec in header.items():
            start, stop = spec["data_offsets"]
            dtype = _NUMPY[spec["dtype"]].newbyteorder("<")
            tensors[name] = np.frombuffer(data[start:stop], dtype=dtype).reshape(spec["shape"]).astype(
                dtype.newbyteorder("="))
    except FileNotFoundError:
        raise MothError(f"no exported network at {path}") from None
    except (OSError, ValueError, KeyError, struct.error) as err:
        raise MothError(f"{path} is not a readable safetensors file ({err})") from None
    return tensors, metadata


def npz_arrays(path: Path | str) -> dict[str, np.ndarray]:
    """A safetensors export read back as the `.npz`'s arrays (what `core.export.load` takes)."""
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != FORMAT:
        raise MothError(f"{path} is not a mothtui exported network (no {FORMAT!r} metadata)")
    return {**tensors, "input_names": np.asarray(json.loads(metadata["input_names"]), dtype=str),
            "output_names": np.asarray(json.loads(metadata["output_names"]), dtype=str),
            "meta": np.asarray(metadata["meta"])}
