"""The benchmark reports consistent figures (tiny ensemble; the real figures come from the CLI)."""

import json

import pytest

from core.engine import bench
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


def test_bench_engine_json_reports_evaluation_throughput(capsys, monkeypatch):
    from core.cli import main

    fast_peak = bench.matmul_peak
    monkeypatch.setattr(bench, "matmul_peak", lambda sizes=None, repeats=5: fast_peak((128,), repeats=1))
    assert main(["bench", "engine", "--nets", "4", "--batch", "16", "--hidden", "8", "--steps", "4",
                 "--repeats", "2", "--eval-batch", "32", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    ev = result["evaluation"]
    for key in ("network_rows_per_s", "network_samples_per_s", "flops_per_s", "peak_fraction"):
        assert ev[key] > 0
        assert key in result or key == "network_rows_per_s"  # the names training uses
    assert ev["network_samples_per_s"] == ev["network_rows_per_s"]
    assert ev["flops_per_s"] == pytest.approx(2 * weight_count((10, 8, 7)) * ev["network_rows_per_s"])
    assert ev["peak_fraction"] == pytest.approx(ev["flops_per_s"] / result["matmul_peak_flops"])
    assert ev["block_rows"] == 32 and ev["rows"] % 32 == 0 and ev["rows"] >= 3 * 4 * 16 - 16
    assert 1 <= ev["group"] <= 4 and 1 <= result["group"] <= 4
