"""A report's index: `index.md` (each figure, its caption and the numbers behind it) and `report.json`.

`report.json` holds the same numbers unrounded, per run: `select` is exactly the document
`mothtui select RUN --json` prints at the report's threshold and split, `compare` is the run's side
of `mothtui compare --json`, `weights` the surviving-weight quantiles; `figures` lists what was
drawn (or why not). The Markdown rounds to three significant digits. Pure Python.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

from core import paths
from core.report import FIGURES, seed
from core.report.gather import Report, weight_summary

INDEX = paths.REPORT_INDEX
NUMBERS = paths.REPORT_NUMBERS


def _g(value: Any) -> str:
    """A number in three significant digits, '–' for none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.3g}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|:---|" + "|".join("---:" for _ in header[1:]) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def numbers(report: Report, figures: Mapping[str, Any]) -> dict[str, Any]:
    """The `report.json` document."""
    return {"runs": [{"run": r.run_id, "shape": r.shape, "seed_comparable": r.seed_reason is None,
                      "seed_reason": r.seed_reason, "select": r.selection.to_dict(),
                      "compare": r.side.to_dict(), "weights": [weight_summary(w) for w in r.weights]}
                     for r in report.runs],
            "threshold": report.comparison.threshold, "split": report.split,
            "diff": report.comparison.to_dict()["diff"], "figures": dict(figures)}


def _seed_at(sparsity: float, values: Mapping[float, Any]) -> Any:
    return next((v for s, v in values.items() if abs(s - sparsity) < 1e-6), None)


def _loss_tables(report: Report) -> list[str]:
    lines = []
    keras = dict(zip(seed.SEED_SPARSITY, seed.KERAS_VAL_MSE))
    for r in report.runs:
        with_seed = r.seed_reason is None and report.split == "val"
        lines.append(f"`{r.run_id}`, {report.split} loss over {r.side.nets} networks (threshold {r.threshold:g}):")
        lines.append("")
        header = ["level", "sparsity %", "p10", "median", "p90", "finite"] + (["seed (Keras)"] if with_seed else [])
        rows = [[row.level, _g(100 * row.sparsity), _g(row.p10), _g(row.median), _g(row.p90), row.finite]
                + ([_g(_seed_at(row.sparsity, keras))] if with_seed else []) for row in r.selection.loss_by_level]
        lines += _table(header, rows)
    return lines


def _histogram_table(report: Report) -> list[str]:
    header = ["sparsity %"] + [f"`{r.run_id}`" for r in report.runs]
    bins: dict[float, list[Any]] = {}
    for i, r in enumerate(report.runs):
        for b in r.selection.histogram()["bins"]:
            bins.setdefault(round(b["sparsity"], 6), [0] * len(report.runs))[i] += b["count"]
    seeded = report.seed_comparable
    if seeded:
        header.append(seed.HISTOGRAM_LABEL)
        for s in seed.HISTOGRAM:
            bins.setdefault(round(s, 6), [0] * len(report.runs))
    rows = [[_g(100 * s)] + counts + ([_seed_at(s, seed.HISTOGRAM) or 0] if seeded else [])
            for s, counts in sorted(bins.items())]
    rows.append(["none"] + [r.selection.histogram()["none"] for r in report.runs] + ([0] if seeded else []))
    rows.append(["median %"] + [_g(None if r.selection.median_sparsity is None else 100 * r.selection.median_sparsity)
                                for r in report.runs] + (["93"] if seeded else []))
    return ["Networks per chosen sparsity (every level of each run's schedule):", ""] + _table(header, rows)


def _kept_table(report: Report) -> list[str]:
    depth = max(len(r.layer_sizes) - 1 for r in report.runs)
    header = ["layer"] + [f"`{r.run_id}` %" for r in report.runs]
    seeded = report.seed_comparable and depth == len(seed.KEPT_PER_LAYER)
    if seeded:
        header.append(seed.KEPT_LABEL + " %")
    names = report.runs[0].layer_names if len({r.layer_sizes for r in report.runs}) == 1 else \
        [f"layer {k}" for k in range(depth)]
    rows = []
    for k in range(depth):
        row = [names[k]] + [_g(100 * r.side.remaining[k]) if r.side.remaining and k < len(r.side.remaining)
                            else "–" for r in report.runs]
        rows.append(row + ([_g(100 * seed.KEPT_PER_LAYER[k])] if seeded else []))
    return ["Median over the chosen networks of the weights kept at their level:", ""] + _table(header, rows)


def _inputs_table(report: Report) -> list[str]:
    names = next((list(r.side.inputs) for r in report.runs if r.side.inputs), [])
    header = ["input"] + [f"`{r.run_id}` %" for r in report.runs]
    if report.seed_comparable:
        header.append(seed.KEPT_LABEL + " %")
    rows = [[n] + [_g(100 * r.side.inputs[n]) if r.side.inputs else "–" for r in report.runs]
            + ([_g(seed.INPUT_KEPT_PERCENT.get(n))] if report.seed_comparable else []) for n in names]
    return ["Median over the chosen networks of each input's first-layer connections kept:", ""] + \
        _table(header, rows)


def _weights_table(report: Report) -> list[str]:
    header = ["run", "layer", "surviving weights", "magnitude p5 / p50 / p95", "dense: magnitude p5 / p50 / p95"]
    rows = []
    for r in report.runs:
        for w in r.weights:
            s = weight_summary(w)
            q = " / ".join(_g(v) for v in s["abs_quantiles_5_50_95"] or [])
            d = " / ".join(_g(v) for v in s["dense_abs_quantiles_5_50_95"] or [])
            rows.append([f"`{r.run_id}`", w.name, f"{w.chosen_total:,}", q or "–", d or "–"])
    return _table(header, rows)


def _extrapolation_table(report: Report) -> list[str]:
    lines = []
    for r in report.runs:
        e = r.side.extrapolation
        if not e:
            lines += [f"`{r.run_id}`: not evaluated (`mothtui evaluate {r.run_id} --scale 0.5,2`).", ""]
            continue
        header = ["level", "sparsity %", "own test"] + [f"s = {s:g}" for s in e["scales"]]
        rows = [[lv, _g(100 * e["sparsity"][lv]), _g(e["test_loss_median"][lv])]
                + [_g(m[lv]) for m in e["loss_median"]] for lv in range(e["levels"])]
        lines += [f"`{r.run_id}`, median test MSE per level (level 0 own test {_g(e['level0_test_median'])}; "
                  + "; ".join(f"s = {s:g}: {_g(q)}× at level 0, {_g(100 * v)} % of strokes valid"
                              for s, q, v in zip(e["scales"], e["ratio_to_level0"], e["valid_fraction"]))
                  + "):", ""]
        lines += _table(header, rows)
    if report.seed_comparable:
        lines += [f"{seed.EXTRAPOLATION_LABEL}: " + ", ".join(
            f"s = {s:g}: {v:g}" for s, v in seed.EXTRAPOLATION_TEST_MSE.items()) + ".", ""]
    return lines


CAPTIONS = {
    "loss_vs_sparsity": "Median loss over the networks at each pruning level, with the 10th–90th percentile "
                        "band; the dashed line is the selection threshold.",
    "chosen_sparsity": "For each network, the sparsest level whose loss is at or under the threshold "
                       "(the paper's main figure), as a share of the run's networks.",
    "kept_per_layer": "Fraction of each layer's weights kept at each chosen network's level "
                      "(median over the chosen networks).",
    "input_connections": "Fraction of each input's first-layer connections kept at the chosen levels "
                         "(median over the chosen networks).",
    "weight_distributions": "Values of the surviving weights of the chosen networks at their levels "
                            "(outlined) over the dense level-0 weights of the same networks (grey); "
                            "weights per network per bin, log scale.",
    "extrapolation": "Median test loss per level on held-out strokes simulated at other body scales "
                     "(stored by `mothtui evaluate`); the networks were trained at the run's own scale.",
}
TABLES = {"loss_vs_sparsity": _loss_tables, "chosen_sparsity": _histogram_table, "kept_per_layer": _kept_table,
          "input_connections": _inputs_table, "weight_distributions": _weights_table,
          "extrapolation": _extrapolation_table}


def markdown(report: Report, figures: Mapping[str, Any], command: str) -> str:
    """`index.md`: the runs, then each figure (or why it is missing), its caption and its numbers."""
    lines = [f"# Report: {', '.join(report.run_ids)}", "",
             f"Written by `{command}`. Split `{report.split}`; threshold "
             + ("each run's own" if report.comparison.threshold is None else f"{report.comparison.threshold:g}")
             + ". The numbers unrounded: [`report.json`](report.json) (its `select` is `mothtui select --json`'s).", ""]
    rows = [[f"`{r.run_id}`", r.shape, r.side.nets, len(r.side.sparsity), _g(r.threshold),
             f"{r.side.chosen} / {r.side.nets}",
             _g(None if r.side.chosen_median is None else 100 * r.side.chosen_median),
             "yes" if r.seed_reason is None else f"no: {r.seed_reason}"] for r in report.runs]
    lines += _table(["run", "network", "networks", "levels", "threshold", "chosen", "median sparsity %",
                     "seed's numbers drawn"], rows)
    diff = report.comparison.diff
    if diff:
        lines += ["Config keys that differ:", ""]
        lines += _table(["key"] + [f"`{i}`" for i in report.run_ids],
                        [[f"`{k}`"] + [json.dumps(v) for v in values] for k, values in diff.items()])
    for stem, title in FIGURES:
        lines += [f"## {title}", ""]
        drawn = figures.get(stem)
        if isinstance(drawn, list):
            lines += [f"![{title}]({stem}.png)", "", f"{CAPTIONS[stem]} Vector: [{stem}.svg]({stem}.svg).", ""]
        else:
            lines += [f"Not drawn: {drawn}.", ""]
        lines += TABLES[stem](report)
    return "\n".join(lines).rstrip() + "\n"
