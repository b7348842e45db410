"""Exporting chosen sparse networks as files that plain numpy can run, and loading them back.

`export_run` writes, into a new or empty directory:

- `net_007.npz` per chosen network, the contract's keys (`layer_{k}_weight`, `layer_{k}_bias`,
  their masks, `x_min`, `x_max`, `y_min`, `y_max`, `input_names`, `output_names`, `meta`);
- `compact/net_007.npz`, the same network with its ghost units removed (hidden units left with
  no input or no output): a smaller dense network with the same outputs;
- `edges/net_007.csv`, the surviving connections (`layer,source,target,weight,...`) for graph tools;
- `manifest.json`, written last so an interrupted export never lists a file that is not there.

Reproducible: the same run, picks and options give identical bytes (no timestamps; zip entries
carry a fixed date; keys in a fixed order). `load(path).predict(x)` runs a file with numpy only.

Must not import JAX: the UI exports from its own process.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from core.errors import MothError
from core.select import Choice, Selection, require_any, select_run

FORMAT = "mothtui.export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
COMPACT_DIR = "compact"
EDGES_DIR = "edges"
#: Zip entries get this date instead of "now", so identical inputs give identical bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
EDGE_COLUMNS = ("layer", "source", "target", "weight", "source_node", "target_node", "ghost")


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


@dataclass
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
    """An exported network from an `.npz` file, or from an export directory and a network index."""
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
        path = path / entry["compacted" if compacted else "file"]
    try:
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


# ---- ghost units ----------------------------------------------------------------------------

@dataclass
class Compacted:
    """A network without ghost units. `kept[h]` are the original indices of hidden layer h's units."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    weight_masks: list[np.ndarray]
    bias_masks: list[np.ndarray]
    kept: list[np.ndarray]
    removed: list[int]


def compact(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
            weight_masks: Sequence[np.ndarray], bias_masks: Sequence[np.ndarray]) -> Compacted:
    """Remove hidden units with no remaining output or no remaining input, outputs unchanged.

    A unit with no output contributes exactly 0 downstream: dropped. A unit with no input is
    the constant tanh(bias): its contribution is folded into the next layer's biases (kept in
    float64 so the sum is exact to rounding), then dropped. Removing units can orphan others, so
    this repeats until nothing changes. Inputs and outputs of the network are never removed.
    """
    w = [np.asarray(a, dtype=np.float32).copy() for a in weights]
    b = [np.asarray(a, dtype=np.float64).copy() for a in biases]
    wm = [np.asarray(a, dtype=bool).copy() for a in weight_masks]
    bm = [np.asarray(a, dtype=bool).copy() for a in bias_masks]
    kept = [np.arange(a.shape[1]) for a in w[:-1]]   # hidden layer h = output of weight layer h
    changed = True
    while changed:
        changed = False
        for h in range(len(kept)):
            no_out = ~wm[h + 1].any(axis=1)
            no_in = ~wm[h].any(axis=0)
            ghost = no_out | no_in
            if not ghost.any():
                continue
            constant = no_in & ~no_out
            if constant.any():
                values = np.tanh(np.where(bm[h][constant], b[h][constant], 0.0))
                outgoing = np.where(wm[h + 1][constant], w[h + 1][constant], 0.0).astype(np.float64)
                b[h + 1] = b[h + 1] + values @ outgoing
                bm[h + 1] = bm[h + 1] | (wm[h + 1][constant] & (values[:, None] != 0)).any(axis=0)
            keep = ~ghost
            w[h], wm[h] = w[h][:, keep], wm[h][:, keep]
            b[h], bm[h] = b[h][keep], bm[h][keep]
            w[h + 1], wm[h + 1] = w[h + 1][keep], wm[h + 1][keep]
            kept[h] = kept[h][keep]
            changed = True
    removed = [int(np.asarray(weights[h]).shape[1] - kept[h].size) for h in range(len(kept))]
    return Compacted(w, b, wm, bm, kept, removed)


def ghost_units(weight_masks: Sequence[np.ndarray], bias_masks: Sequence[np.ndarray]) -> list[int]:
    """Number of ghost units per hidden layer (what `compact` would remove), from the masks only."""
    zeros = [np.zeros(m.shape, np.float32) for m in weight_masks]
    return compact(zeros, [np.zeros(m.shape) for m in bias_masks], weight_masks, bias_masks).removed


def edge_rows(weights: Sequence[np.ndarray], weight_masks: Sequence[np.ndarray],
              input_names: Sequence[str], output_names: Sequence[str],
              kept: Sequence[np.ndarray] | None = None) -> Iterable[tuple]:
    """Surviving connections as (layer, source, target, weight, source_node, target_node, ghost).

    Node names: `in:<input name>`, `h<k>:<unit>` for hidden layer k (1-based, original unit
    index), `out:<output name>`. `ghost` is 1 where the connection touches a ghost unit.
    """
    last = len(weights) - 1
    alive = [None if kept is None else set(int(i) for i in kept[h]) for h in range(last)]

    def node(layer_out: int, index: int) -> str:
        if layer_out < 0:
            return f"in:{input_names[index]}"
        if layer_out == last:
            return f"out:{output_names[index]}"
        return f"h{layer_out + 1}:{index}"

    def is_ghost(layer_out: int, index: int) -> bool:
        return 0 <= layer_out < last and alive[layer_out] is not None and index not in alive[layer_out]

    for k, (w, m) in enumerate(zip(weights, weight_masks)):
        for i, j in zip(*np.nonzero(m)):
            ghost = is_ghost(k - 1, int(i)) or is_ghost(k, int(j))
            yield (k, int(i), int(j), format(float(w[i, j]), ".9g"), node(k - 1, int(i)), node(k, int(j)),
                   int(ghost))


# ---- writing --------------------------------------------------------------------------------

def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """An .npz (deflated) that np.load reads, byte-identical for identical arrays; atomic rename."""
    tmp = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buffer.getvalue())
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _network_arrays(weights, biases, weight_masks, bias_masks, scaler, input_names, output_names,
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


def _finite(value: float) -> float | None:
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


def choose(run, threshold: float | None = None, split: str = "val", nets: Sequence[int] | None = None,
           level: int | None = None, overrides: Mapping[int, int] | None = None):
    """The selection and the list of choices to export (validated; MothError if nothing to export)."""
    n_nets = run.nets
    if nets is not None:
        nets = sorted(set(int(n) for n in nets))
        bad = [n for n in nets if not 0 <= n < n_nets]
        if bad:
            raise MothError(f"network {bad[0]} is not in run {run.run_id!r} (networks 0..{n_nets - 1})")
    overrides = dict(overrides or {})
    if level is not None:
        if not 0 <= level < run.levels_complete:
            raise MothError(f"level {level} is not complete in run {run.run_id!r} "
                            f"(levels 0..{run.levels_complete - 1} are)")
        overrides.update({n: level for n in (nets if nets is not None else range(n_nets))})
    selection = select_run(run, threshold, split, overrides)
    choices = [c for c in selection.choices if nets is None or c.network in nets]
    missing = [c.network for c in choices if c.level is None]
    if nets is not None and missing:
        raise MothError(f"network {missing[0]} has no level with {split} loss <= {selection.threshold:g}; "
                        f"pass --level to export one anyway")
    require_any(Selection(selection.threshold, split, tuple(choices), selection.run))
    return selection, [c for c in choices if c.level is not None]


def export_run(run, out: Path | str, *, threshold: float | None = None, split: str = "val",
               nets: Sequence[int] | None = None, level: int | None = None,
               overrides: Mapping[int, int] | None = None) -> dict[str, Any]:
    """Write the chosen networks of `run` into `out` (new or empty); returns the manifest."""
    selection, choices = choose(run, threshold, split, nets, level, overrides)
    existed = Path(out).exists()
    out = prepare_out(out)
    try:
        return _write_export(run, out, selection, choices, split)
    except BaseException:
        # leave `out` as it was (absent or empty), so a retry is not refused as "not empty"
        if existed:
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _write_export(run, out: Path, selection, choices, split: str) -> dict[str, Any]:
    """The files of an export into the prepared directory `out`; the manifest last."""
    attrs = run.attrs
    scaler = run.scaler
    input_names = attrs.get("input_names")
    output_names = attrs.get("output_names")
    all_losses = {s: run.losses(s) for s in ("train", "val", "test")}
    common = {"run": run.run_id, "threshold": selection.threshold, "split": split,
              "dataset": attrs.get("dataset"), "config_hash": config_hash(attrs["config"]),
              "activation": attrs.get("activation", "tanh")}
    entries = []
    by_level: dict[int, list[Choice]] = {}
    for c in choices:
        by_level.setdefault(c.level, []).append(c)
    try:
        for lvl in sorted(by_level):
            group = by_level[lvl]
            arrays = run.level(lvl, [c.network for c in group])
            for i, c in enumerate(group):
                layers = {key: [a[i] for a in arrays[key]] for key in arrays}
                entries.append(_export_one(out, c, layers, scaler, input_names, output_names,
                                           common, all_losses))
        entries.sort(key=lambda e: e["network"])
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, **common,
                    "layer_sizes": list(run.config.layer_sizes),
                    "input_names": list(input_names), "output_names": list(output_names),
                    "networks": entries}
        _write_text(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    except OSError as err:
        raise MothError(f"cannot write the export to {out}: {err.strerror or err}") from None
    return manifest


def _export_one(out: Path, choice: Choice, layers: dict[str, list[np.ndarray]], scaler, input_names,
                output_names, common: dict[str, Any], all_losses: dict[str, np.ndarray]) -> dict[str, Any]:
    net, lvl = choice.network, choice.level
    stem = f"net_{net:03d}"
    weights = [np.asarray(w, dtype=np.float32) for w in layers["weight"]]
    biases = [np.asarray(b, dtype=np.float32) for b in layers["bias"]]
    wmasks, bmasks = layers["weight_mask"], layers["bias_mask"]
    total = sum(m.size for m in wmasks)
    remaining = sum(int(m.sum()) for m in wmasks) / total
    losses = {s: _finite(all_losses[s][lvl, net]) for s in all_losses}
    meta = {**common, "network": net, "level": lvl, "sparsity": choice.sparsity, "manual": choice.manual,
            "remaining": remaining, "losses": losses, "compacted": False}
    write_npz(out / f"{stem}.npz",
              _network_arrays(weights, biases, wmasks, bmasks, scaler, input_names, output_names, meta))
    small = compact(weights, biases, wmasks, bmasks)
    sizes = [weights[0].shape[0], *(w.shape[1] for w in small.weights)]
    compact_meta = {**meta, "compacted": True, "ghosts_removed": small.removed, "layer_sizes": sizes}
    write_npz(out / COMPACT_DIR / f"{stem}.npz",
              _network_arrays(small.weights, small.biases, small.weight_masks, small.bias_masks, scaler,
                              input_names, output_names, compact_meta, kept=small.kept))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(EDGE_COLUMNS)
    writer.writerows(edge_rows(weights, wmasks, input_names, output_names, small.kept))
    _write_text(out / EDGES_DIR / f"{stem}.csv", text.getvalue())
    return {"network": net, "level": lvl, "sparsity": choice.sparsity, "manual": choice.manual,
            "remaining": remaining, "losses": losses, "file": f"{stem}.npz",
            "compacted": f"{COMPACT_DIR}/{stem}.npz", "edges": f"{EDGES_DIR}/{stem}.csv",
            "ghosts_removed": small.removed, "compacted_sizes": sizes}
