"""The benchmark reports consistent figures (tiny ensemble; the real figures come from the CLI)."""

import pytest

from core.engine.bench import benchmark
from core.engine.model import weight_count


def test_benchmark_reports_rates_flops_and_peak_fraction():
    result = benchmark(nets=4, batch=16, hidden=(8,), steps=5, repeats=2, peak_sizes=(128,))
    assert result["network_samples_per_s"] == pytest.approx(result["steps_per_s"] * 16 * 4)
    assert result["flops_per_s"] == pytest.approx(6 * 16 * weight_count((10, 8, 7)) * 4 * result["steps_per_s"])
    assert result["peak_fraction"] == pytest.approx(result["flops_per_s"] / result["matmul_peak_flops"])
    seed = result["seed_loop"]
    assert seed["steps_per_s"] > 0
    assert result["speedup_vs_seed_loop"] == pytest.approx(result["steps_per_s"] / seed["steps_per_s"])
