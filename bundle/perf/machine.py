"""The machine a benchmark runs on: what it is (:func:`machine_info`) and its measured fp32 peak (:func:`measure_peak`).

The peak is measured, never a constant: this machine is shared and its speed varies between runs.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

__all__ = ["best_times", "machine_info", "measure_peak"]


def machine_info() -> dict:
    """CPU model and flags, threads, memory, library versions, load average."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    import monai

    return {
        "cpu_model": fields.get("model name", platform.processor() or "unknown"),
        "cpu_flags": sorted(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "mem_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "python": platform.python_version(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "loadavg": list(os.getloadavg()),
    }


def best_times(fn: Callable[[], object], reps: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``reps`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def measure_peak(reps: int = 5) -> dict:
    """Best fp32 GFLOP/s of a 4096² matmul, a 3x3 conv2d (256→256, 8x56²) and a 3x3x3 conv3d (128→128, 56²x12),
    each in the plain and the channels-last layout; ``peak`` is the maximum."""
    torch.manual_seed(0)
    result = {}
    with torch.inference_mode():
        a, b = torch.rand(4096, 4096), torch.rand(4096, 4096)
        c = torch.empty(4096, 4096)
        result["matmul_4096"] = 2 * 4096**3 / min(best_times(lambda: torch.mm(a, b, out=c), reps)) / 1e9
        for name, x, w in (
            ("conv2d_3x3", torch.rand(8, 256, 56, 56), torch.rand(256, 256, 3, 3)),
            ("conv3d_3x3x3", torch.rand(1, 128, 56, 56, 12), torch.rand(128, 128, 3, 3, 3)),
        ):
            conv = F.conv2d if x.dim() == 4 else F.conv3d
            flop = 2 * x.numel() * w.shape[0] * math.prod(w.shape[2:])  # padding 1: output voxels = input voxels
            best = 0.0
            for layout in (torch.contiguous_format, torch.channels_last if x.dim() == 4 else torch.channels_last_3d):
                xl, wl = x.contiguous(memory_format=layout), w.contiguous(memory_format=layout)
                times = best_times(lambda xl=xl, wl=wl, conv=conv: conv(xl, wl, padding=1), reps)
                best = max(best, flop / min(times) / 1e9)
            result[name] = best
    result["peak"] = max(result.values())
    return {k: round(v, 1) for k, v in result.items()}
