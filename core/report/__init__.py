"""`mothtui report`: the paper's figures for one run or several, with the numbers behind each.

- `seed`     the seed's published numbers and when a run is comparable with them (pure Python)
- `gather`   the numbers: selection, loss bands, structure, surviving weights (numpy + zarr)
- `figures`  the drawings (matplotlib, the optional `report` extra; imported only by the command)
- `index`    `index.md` and `report.json` beside the figures (pure Python)

Importing this package imports nothing heavy: matplotlib loads only in `figures`.
"""

#: The figures of a report, in the index's order: (file stem, title).
FIGURES = (
    ("loss_vs_sparsity", "Loss vs sparsity"),
    ("chosen_sparsity", "Chosen sparsity"),
    ("kept_per_layer", "Weights kept per layer"),
    ("input_connections", "First-layer connections per input"),
    ("weight_distributions", "Surviving weight distributions"),
    ("extrapolation", "Other body sizes"),
)
