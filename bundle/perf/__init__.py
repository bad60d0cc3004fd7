"""Performance: analytical FLOP counts and the benchmark behind ``scripts/benchmark.py``."""

from __future__ import annotations

from bundle.perf.flops import COUNTED_MODULES, FlopCounter, count_flops, module_macs

__all__ = ["COUNTED_MODULES", "FlopCounter", "count_flops", "module_macs"]
