"""The file formats `mothtui export --format` writes, and what each needs installed.

- `npz`          numpy's zip of arrays (core.export.format): the default, the contract's files
- `safetensors`  the weights, pickle-free, for any safetensors reader (core.export.safetensors_file);
                 written with numpy alone, so it needs no extra
- `onnx`         the network as a graph with the scaling folded in (core.export.onnx_file), for
                 onnxruntime, Netron and the rest: needs the `onnx` extra (`pip install 'mothtui[onnx]'`)

`parse_formats` turns `--format npz,onnx` into the tuple the writer takes, refusing an unknown
format or a missing extra in one line before anything is written.
"""

from __future__ import annotations

import importlib.util
from typing import Iterable

from core.errors import MothError

FORMATS = ("npz", "safetensors", "onnx")
DEFAULT_FORMATS = ("npz",)
#: File suffix of each format (the stem is the network's: `net_007.onnx` beside `net_007.npz`).
SUFFIX = {"npz": ".npz", "safetensors": ".safetensors", "onnx": ".onnx"}
#: format -> (module it imports, the optional extra that installs it)
NEEDS = {"onnx": ("onnx", "onnx")}


def parse_formats(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """`"npz,onnx"` (or a list) -> the formats in FORMATS order; MothError names a bad one or a missing extra."""
    if text is None:
        return DEFAULT_FORMATS
    items = text.split(",") if isinstance(text, str) else list(text)
    names = {item.strip().lower() for item in items if item.strip()}
    unknown = sorted(names - set(FORMATS))
    if unknown or not names:
        raise MothError(f"bad --format {','.join(unknown) or repr(text)}: choose from {', '.join(FORMATS)} "
                        "(comma-separated)")
    for name in sorted(names):
        if name in NEEDS:
            module, extra = NEEDS[name]
            if importlib.util.find_spec(module) is None:
                raise MothError(f"--format {name} needs the {module!r} package: pip install 'mothtui[{extra}]'")
    return tuple(f for f in FORMATS if f in names)


def mothtui_version() -> str:
    """The installed mothtui's version (package metadata), for the provenance of exported files."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mothtui")
    except PackageNotFoundError:
        return "unknown"
