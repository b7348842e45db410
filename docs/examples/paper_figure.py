"""The paper's main figure from a run, in a few lines of a notebook (run as a script here).

    python docs/examples/paper_figure.py RUN_DIR [FIGURE.png]

Left: the loss of every level over the ensemble (median, 10th-90th percentile band) against the
level's sparsity, with the threshold. Right: the histogram of chosen sparsity (per network, the
most-pruned level whose validation loss is at or under the threshold). Needs the `xarray` extra and
matplotlib; reads the run with `core.api` (read-only, no JAX). Each `# %%` is a notebook cell.
"""

# %% open the run
import sys

import matplotlib

matplotlib.use("Agg")                                   # a file, not a window (delete in a notebook)
import matplotlib.pyplot as plt  # noqa: E402

from core import api  # noqa: E402

run = api.open_run(sys.argv[1])
out = sys.argv[2] if len(sys.argv) > 2 else f"{run.run_id}-figure.png"

# %% the ensemble's loss per level, as xarray: dims (level, net), `sparsity` a coordinate of `level`
val = run.to_xarray()["loss/val"]
bands = val.quantile([0.1, 0.5, 0.9], dim="net")

# %% the selection at the run's threshold, and its histogram of chosen sparsity
selection = run.select()
bins = selection.histogram()["bins"]

# %% the figure
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
x = val["sparsity"]
left.fill_between(x, bands.sel(quantile=0.1), bands.sel(quantile=0.9), alpha=0.3, label="p10-p90")
left.plot(x, bands.sel(quantile=0.5), marker="o", label="median")
left.axhline(selection.threshold, color="k", linestyle="--", label="threshold")
left.set(yscale="log", xlabel="sparsity (fraction of weights pruned)", ylabel="validation loss (scaled MSE)")
left.legend()
right.bar([f"{b['sparsity']:.3g}" for b in bins], [b["count"] for b in bins])
right.set(xlabel="chosen sparsity", ylabel="networks",
          title=f"{selection.passing} of {run.nets} networks under {selection.threshold:g}")
fig.savefig(out, dpi=120)
print(out)
