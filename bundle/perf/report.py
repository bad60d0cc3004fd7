"""Markdown tables of a :func:`bundle.perf.benchmark.run_benchmark` result (what ``scripts/benchmark.py`` prints)."""

from __future__ import annotations

__all__ = ["format_table"]


def _fmt(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(result: dict) -> str:
    """Markdown tables of a :func:`run_benchmark` result."""
    m = result["machine"]
    peaks = result["peak_measurements"]
    lines = [
        f"{result['date']}: {m['cpu_model']} ({', '.join(m['cpu_flags'])}), {m['logical_cpus']} logical CPUs, "
        f"{m['torch_threads']} torch threads, torch {m['torch']}, MONAI {m['monai']}; "
        f"load average {m['loadavg'][0]:.1f} at start, {m['loadavg_end'][0]:.1f} at end",
        "",
        "| peak (GFLOP/s) | matmul 4096² | conv2d 3x3 | conv3d 3x3x3 | peak |",
        "|---|---|---|---|---|",
    ]
    for when, p in peaks.items():
        lines.append(f"| {when} | {p['matmul_4096']} | {p['conv2d_3x3']} | {p['conv3d_3x3x3']} | {p['peak']} |")
    lines += [
        "",
        f"Models, one 224x224x12 patch (2D nets: 12 slices), peak {result['peak_gflops']} GFLOP/s:",
        "",
        "| model | params (M) | GFLOP | forward (s) | GFLOP/s | of peak | module forward (s) | train step (s) "
        "| train, memory-efficient (s) | RSS forward / train / mem-eff. (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in result["models"].items():
        lines.append(
            f"| {name} | {e['params'] / 1e6:.1f} | {e['gflop_per_patch']:.1f} | {_fmt(e.get('forward_s'))} "
            f"| {_fmt(e.get('forward_gflops'), 0)} | {_fmt(e.get('fraction_of_peak'))} "
            f"| {_fmt(e.get('forward_module_s'))} | {_fmt(e.get('train_step_s'))} "
            f"| {_fmt(e.get('train_step_s_memory_efficient'))} | {_fmt(e.get('peak_rss_mb'))} / "
            f"{_fmt(e.get('train_peak_rss_mb'))} / {_fmt(e.get('train_peak_rss_mb_memory_efficient'))} |"
        )
    lines += [
        "",
        "| case / network | shape | ROI | seconds (coarse + fine) | GFLOP (coarse + fine) | fine / no-overlap min "
        "| of peak | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, e in result["cases"].items():
        if "error" in e:
            lines.append(f"| {name} | error: {e['error']} |")
            continue
        lines.append(
            f"| {name} | {'x'.join(map(str, e['shape']))} | {'x'.join(map(str, e['roi']))} "
            f"| {e['seconds']:.1f} ({e['coarse_s']:.1f} + {e['fine_s']:.1f}) "
            f"| {e['gflop']:.0f} ({e['gflop_coarse']:.0f} + {e['gflop_fine']:.0f}) "
            f"| {_fmt(e.get('fine_flop_ratio'))} | {e['fraction_of_peak']:.2f} | {e['peak_rss_mb']} |"
        )
    if result.get("hdenseunet_over_baseline"):
        ratios = ", ".join(f"{k} {v:.2f}" for k, v in result["hdenseunet_over_baseline"].items())
        lines += ["", f"H-DenseUNet (paper) / DynUNet baseline: {ratios}"]
    lines.append(f"\nrun time {result['run_seconds']:.0f} s")
    return "\n".join(lines)
