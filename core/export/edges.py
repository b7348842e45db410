"""Edge lists: a network's surviving connections as CSV rows, for graph tools. Pure numpy."""

from __future__ import annotations

import csv
import io
from typing import Iterable, Sequence

import numpy as np

EDGE_COLUMNS = ("layer", "source", "target", "weight", "source_node", "target_node", "ghost")


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
        if not 0 <= layer_out < last:
            return False
        kept_here = alive[layer_out]
        return kept_here is not None and index not in kept_here

    for k, (w, m) in enumerate(zip(weights, weight_masks)):
        for i, j in zip(*np.nonzero(m)):
            ghost = is_ghost(k - 1, int(i)) or is_ghost(k, int(j))
            yield (k, int(i), int(j), format(float(w[i, j]), ".9g"), node(k - 1, int(i)), node(k, int(j)),
                   int(ghost))


def edges_csv(weights: Sequence[np.ndarray], weight_masks: Sequence[np.ndarray],
              input_names: Sequence[str], output_names: Sequence[str],
              kept: Sequence[np.ndarray] | None = None) -> str:
    """The CSV text of `edge_rows`, header `EDGE_COLUMNS` first."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(EDGE_COLUMNS)
    writer.writerows(edge_rows(weights, weight_masks, input_names, output_names, kept))
    return text.getvalue()
