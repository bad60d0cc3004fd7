"""scripts/benchmark.py's parts that are not timing: the peak measurement, one measurement subprocess, the table.

Speeds are measured by the benchmark itself, never asserted here; these tests only check that each part runs and
reports what the JSON promises (``peak_gflops``, ``models.<name>.{params, gflop_per_patch, forward_s, ...}``).
"""

from __future__ import annotations

import math

from bundle.perf.benchmark import _derive, _run_worker, build_model
from bundle.perf.flops import count_flops
from bundle.perf.machine import machine_info, measure_peak
from bundle.perf.report import format_table


def test_measure_peak_reports_each_kernel_and_their_maximum() -> None:
    peak = measure_peak(reps=1)
    assert set(peak) == {"matmul_4096", "conv2d_3x3", "conv3d_3x3x3", "peak"}
    assert all(value > 0 for value in peak.values())
    assert peak["peak"] == max(peak["matmul_4096"], peak["conv2d_3x3"], peak["conv3d_3x3x3"])


def test_forward_worker_runs_in_its_own_process_and_the_table_reports_it() -> None:
    """The small H-DenseUNet, one forward pass in a fresh subprocess; the derived fraction of peak is the analytical
    GFLOP over the measured time over the run's peak, and the table prints the model's row."""
    name = "hdenseunet_small"
    model, shape = build_model(name)
    entry = {"params": sum(p.numel() for p in model.parameters()), "gflop_per_patch": count_flops(model, shape) / 1e9}
    measured = _run_worker({"task": "forward", "model": name, "reps": 1, "warmup": 0}, timeout=300)
    assert "error" not in measured, measured
    assert measured["forward_s"] > 0 and measured["peak_rss_mb"] >= measured["rss_model_mb"] > 0
    entry.update(measured)
    peak = {"matmul_4096": 100.0, "conv2d_3x3": 120.0, "conv3d_3x3x3": 110.0, "peak": 120.0}
    machine = {**machine_info(), "loadavg_end": [0.0, 0.0, 0.0]}
    result = {"date": "2026-12-01", "machine": machine, "models": {name: entry}, "cases": {}}
    result.update(peak_measurements={"start": peak}, peak_gflops=120.0, run_seconds=1.0)
    _derive(result)
    expected = entry["gflop_per_patch"] / entry["forward_s"] / 120.0
    assert math.isclose(result["models"][name]["fraction_of_peak"], expected)
    table = format_table(result)
    assert f"| {name} | {entry['params'] / 1e6:.1f} | {entry['gflop_per_patch']:.1f} |" in table
    assert "| start | 100.0 | 120.0 | 110.0 | 120.0 |" in table
