"""Exported networks as ONNX models: a drop-in controller that onnxruntime runs and Netron draws.

Each model maps float32 physical inputs `x (n, 10)` (core.schema.INPUT_NAMES order) to physical
outputs `y (n, 7)` (OUTPUT_NAMES order), as `ExportedNetwork.predict` does: the min-max scaling
is folded into the first layer and the unscaling into the last, so the graph is only
`MatMul -> Add -> Tanh -> ... -> MatMul -> Add`:

    x_s = x * a + c,      a = 1 / (x_max - x_min),  c = -x_min * a - 0.5
    W0' = a[:, None] * W0,  b0' = c @ W0 + b0
    y   = h @ (W_L * s) + (b_L * s + 0.5 s + y_min),  s = y_max - y_min

computed in float64 and stored float32. A pruned weight stays exactly 0 (a * 0 = 0), so the
sparsity is visible in the initializers. Provenance (run, network, level, sparsity, config hash,
mothtui version, the `.npz`'s `meta`) is in the model's `metadata_props`; the input and output
names are in the graph's doc string and in `metadata_props`.

Needs the `onnx` package (the `onnx` extra); nothing here runs a model (tests use onnxruntime).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np

#: Opset and IR version: old enough for every onnxruntime of the last years (opset 17: ORT >= 1.14).
OPSET = 17
IR_VERSION = 8
INPUT, OUTPUT = "x", "y"


def folded_layers(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                  scaler: Mapping[str, Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The network's layers with the input scaling folded into the first and the output unscaling
    into the last (float64), so that `forward` on physical units is the plain layer stack."""
    w = [np.asarray(a, dtype=np.float64).copy() for a in weights]
    b = [np.asarray(a, dtype=np.float64).copy() for a in biases]
    x_min, x_max = (np.asarray(scaler[k], dtype=np.float64) for k in ("x_min", "x_max"))
    y_min, y_max = (np.asarray(scaler[k], dtype=np.float64) for k in ("y_min", "y_max"))
    a = 1.0 / (x_max - x_min)
    c = -x_min * a - 0.5
    b[0] = c @ w[0] + b[0]
    w[0] = a[:, None] * w[0]
    s = y_max - y_min
    w[-1] = w[-1] * s[None, :]
    b[-1] = b[-1] * s + 0.5 * s + y_min
    return w, b


def onnx_bytes(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], scaler: Mapping[str, Any],
               input_names: Sequence[str], output_names: Sequence[str], meta: Mapping[str, Any]) -> bytes:
    """The serialized, checked ONNX model of one network (byte-reproducible for the same arguments)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b = folded_layers(weights, biases, scaler)
    nodes, initializers = [], []
    h = INPUT
    last = len(w) - 1
    for k in range(len(w)):
        initializers += [numpy_helper.from_array(w[k].astype(np.float32), f"layer_{k}_weight"),
                         numpy_helper.from_array(b[k].astype(np.float32), f"layer_{k}_bias")]
        nodes.append(helper.make_node("MatMul", [h, f"layer_{k}_weight"], [f"layer_{k}_matmul"]))
        out = OUTPUT if k == last else f"layer_{k}_linear"
        nodes.append(helper.make_node("Add", [f"layer_{k}_matmul", f"layer_{k}_bias"], [out]))
        if k < last:
            nodes.append(helper.make_node("Tanh", [out], [f"layer_{k}_tanh"]))
            h = f"layer_{k}_tanh"
    doc = (f"mothtui sparse network: {INPUT} (n, {len(input_names)}) physical inputs "
           f"[{', '.join(input_names)}] -> {OUTPUT} (n, {len(output_names)}) physical outputs "
           f"[{', '.join(output_names)}]; scaling folded into the first and last layers.")
    graph = helper.make_graph(
        nodes, f"net_{int(meta.get('network', 0)):03d}",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["n", len(input_names)])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", len(output_names)])],
        initializer=initializers, doc_string=doc)
    model = helper.make_model(graph, producer_name="mothtui", producer_version=str(meta.get("mothtui_version", "")),
                              opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              doc_string=doc)
    props = {"format": "mothtui.export.onnx", "format_version": "1",
             **{k: _text(meta[k]) for k in ("run", "network", "level", "sparsity", "config_hash",
                                            "mothtui_version", "compacted") if k in meta},
             "input_names": json.dumps(list(input_names)), "output_names": json.dumps(list(output_names)),
             "meta": json.dumps(dict(meta), sort_keys=True)}
    helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
