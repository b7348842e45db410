"""The names the stores and the network share, defined once (docs/store-format.md).

- `SPLITS`: the names of the three parts of a dataset, in row order. A *split* in mothtui is one
  of these names; its rows are a *row range* (`[start, stop)`), the config key `splits` holds the
  *fractions* of rows they get, and a split's scaled data are *split arrays*.
- `INPUT_NAMES` / `OUTPUT_NAMES`: the network's 10 inputs and 7 outputs in the contract's order
  (`core.dataset.features` computes them from a dataset store's rows; runs and exports store them).
- `DATASET_ARRAYS`: the arrays of a dataset store and their widths (None: one value per row).

Plain Python (and core.errors): every layer, the UI included, may import it.
"""

from core.errors import MothError

SPLITS = ("train", "val", "test")
INPUT_NAMES = ("phi_0", "theta_0", "x_f", "y_f", "phi_f", "theta_f", "xd_0", "yd_0", "phid_0", "thetad_0")
OUTPUT_NAMES = ("Fx", "Fy", "tau", "xd_f", "yd_f", "phid_f", "thetad_f")
DATASET_ARRAYS = {"initial": 8, "controls": 3, "final": 8, "valid": None}


def check_split(name: str, error: type[MothError] = MothError) -> str:
    """`name` if it is one of SPLITS, else `error` (one line, naming the choices)."""
    if name not in SPLITS:
        raise error(f"unknown split {name!r} (use {', '.join(SPLITS[:-1])} or {SPLITS[-1]})")
    return name
