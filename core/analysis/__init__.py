"""Per-level analysis of a run: what survives pruning and whether the networks still fly.

- `structure`   remaining weights per layer, ghost units, inputs' first-layer connections,
                distribution of surviving weights (numpy only)
- `performance` per-output error, input-noise robustness, closed-loop flight check (JAX and
                the simulator, imported inside the functions)
- `motifs`      network motifs of the masks and their z-scores against random networks (numpy only)
- `store`       the `<run>/analysis` group: written once with a completion marker, read by the UI
- `summary`     `AnalysisSummary`, the stored per-level summary as typed records (numpy only)
- `pipeline`    `analyze_run`, which computes all of it and stores it

Importing this package does not import JAX: the UI reads stored results through `load_analysis`.
"""

from core.analysis.pipeline import AnalysisParams, analyze_run
from core.analysis.store import load_analysis, read_array
from core.analysis.summary import AnalysisSummary

__all__ = ["AnalysisParams", "AnalysisSummary", "analyze_run", "load_analysis", "read_array"]
