"""CPU benchmark of the networks and of whole-case inference (``scripts/benchmark.py`` is its command line).

Everything is measured in one run, so that ratios compare like with like on a shared, noisy machine:

- **peak**: the best fp32 GFLOP/s of a 4096² matmul, a 3x3 conv2d and a 3x3x3 conv3d (plain and channels-last
  layouts, best of several repetitions), measured at the start and again at the end of the run; the run's peak is
  the maximum. Nothing is a constant.
- **models** (one 224x224x12 patch, batch 1; the 2D nets see its 12 slices as a batch of 12): parameters,
  analytical GFLOP (:mod:`bundle.perf.flops`: 2 · conv/linear MACs), the best of several forward passes (eval,
  ``torch.inference_mode``) through the bundle's inference path (:meth:`~bundle.networks.denseunet.DenseUNet.
  inference_features`, :class:`~bundle.networks.hybrid_inferer.HybridSlidingWindowInferer`) and through the
  plain module, one SGD training step (``memory_efficient`` off and on), and the peak RSS of each in a fresh
  subprocess (``ru_maxrss``, so each figure belongs to one model and one task; it includes the Python process
  with torch, MONAI and the model loaded, reported as ``rss_model_mb``).
- **cases**: the whole cascade (``LiverTumorCascade.forward``, stage ``"cascade"``) on a LiTS-sized phantom and on
  the real CT cases, after the bundle's preprocessing (RAS, HU window to [0, 1]), with random-init weights. The
  coarse network runs and is timed, but its random-weight mask is replaced by the case's label (liver and tumour)
  so that the ROI is the one a trained network would find, and the same in every run.

Wall-clock times are the best of the repetitions (after one warm-up call, which creates oneDNN's kernels for
each layer shape); each worker also times a 2048² matmul just before measuring (``matmul_gflops_local``) and
reports process CPU seconds (``*cpu_s``), which show how busy the machine was at that moment.

``--quick`` (under 5 minutes on a busy machine): the peak, the paper and small H-DenseUNet forward passes (one
call each, no warm-up), the small cascade on a 160x160x40 phantom and on the smallest real case.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bundle.perf.flops import FlopCounter, count_flops
from bundle.perf.machine import best_times, machine_info, measure_peak
from bundle.perf.report import format_table

__all__ = ["MODELS", "build_model", "format_table", "machine_info", "measure_peak", "run_benchmark"]

logger = logging.getLogger(__name__)

PATCH = (224, 224, 12)
REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_DATA_DIR = Path(os.environ.get("LIVER_REAL_DATA", REPO_ROOT.parent / "shared" / "data" / "real"))
#: LiTS-sized phantom (liver ROI ~295x224x103 voxels); --quick uses a small one (anatomy scaled by 160/512)
PHANTOM = {"seed": 1, "size": 512, "num_slices": 120, "spacing": (0.7, 0.7, 1.0), "orientation": "RAS"}
QUICK_PHANTOM = {"seed": 1, "size": 160, "num_slices": 40, "spacing": (0.7, 0.7, 1.0), "orientation": "RAS"}
QUICK_REAL_CASES = ("real_lits-resized",)

#: name -> (builder key, size); the builder decides the input of one 224x224x12 patch
MODELS = {
    "denseunet167_2d_paper": ("dense2d", "paper"),
    "denseunet65_3d_paper": ("dense3d", "paper"),
    "hdenseunet_paper": ("hdenseunet", "paper"),
    "dynunet_baseline": ("dynunet", "paper"),
    "denseunet2d_small": ("dense2d", "small"),
    "denseunet3d_small": ("dense3d", "small"),
    "hdenseunet_small": ("hdenseunet", "small"),
}
QUICK_MODELS = ("hdenseunet_paper", "hdenseunet_small")


# ---- models -------------------------------------------------------------------------------------------------------
def _dynunet_baseline() -> nn.Module:
    """MONAI DynUNet sized to ~ the paper H-DenseUNet (66M parameters), 224x224x12 patches (/32 in-plane, /4 in D)."""
    from monai.networks.nets import DynUNet

    strides = [1, 2, 2, (2, 2, 1), (2, 2, 1), (2, 2, 1)]
    filters = [48, 96, 192, 384, 464, 464]
    return DynUNet(3, 1, 3, [3] * 6, strides, strides[1:], filters=filters, norm_name="batch")


def build_model(name: str, memory_efficient: bool = False) -> tuple[nn.Module, tuple[int, ...]]:
    """The benchmark's model ``name`` (a key of :data:`MODELS`) and the input shape of one 224x224x12 patch."""
    from bundle.networks import DenseUNet, HDenseUNet
    from bundle.networks.presets import dense2d_config, dense3d_config

    kind, size = MODELS[name]
    torch.manual_seed(0)
    h, w, d = PATCH
    if kind == "dense2d":
        return DenseUNet(2, 3, 3, **dense2d_config(size), memory_efficient=memory_efficient), (d, 3, h, w)
    if kind == "dense3d":
        return DenseUNet(3, 4, 3, **dense3d_config(size), memory_efficient=memory_efficient), (1, 4, h, w, d)
    if kind == "hdenseunet":
        return HDenseUNet(size=size, memory_efficient=memory_efficient), (1, 1, h, w, d)
    return _dynunet_baseline(), (1, 1, h, w, d)


def _optimized_forward(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The bundle's inference path for an eval-mode ``model``: an inference copy (BatchNorms folded, channels-last
    weights; made once, here), preallocated dense blocks and channels-last activations for the DenseUNets, the
    hybrid inferer for H-DenseUNet (one window: same result as ``model(x)``), channels-last for the baseline."""
    from bundle.networks import DenseUNet, HDenseUNet
    from bundle.networks.folding import inference_copy
    from bundle.networks.hybrid_inferer import HybridSlidingWindowInferer

    fast = inference_copy(model)
    if isinstance(model, HDenseUNet):
        return lambda x: HybridSlidingWindowInferer(roi_size=x.shape[2:])(x, fast)
    if isinstance(model, DenseUNet):
        return lambda x: fast.classifier(fast.inference_features(x))
    return lambda x: fast(x.contiguous(memory_format=torch.channels_last_3d))


# ---- workers (each in a fresh process) -----------------------------------------------------------------------------
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _local_matmul() -> float:
    a = torch.rand(2048, 2048)
    return round(2 * 2048**3 / min(best_times(lambda: a @ a, 3)) / 1e9, 1)


def _worker_forward(spec: dict) -> dict:
    model, shape = build_model(spec["model"])
    model.eval()
    x = torch.rand(shape)
    result = {"rss_model_mb": round(_rss_mb()), "matmul_gflops_local": _local_matmul()}
    fast = _optimized_forward(model)
    with torch.inference_mode():
        cpu = time.process_time()
        times = best_times(lambda: fast(x), spec["reps"], spec["warmup"])
        cpu = (time.process_time() - cpu) / (spec["reps"] + spec["warmup"])  # per call, warm-up included
        result.update(forward_s=min(times), forward_s_max=max(times), forward_cpu_s=cpu)
        if spec.get("module"):
            times = best_times(lambda: model(x), spec["reps"], spec["warmup"])
            result.update(forward_module_s=min(times), forward_module_s_max=max(times))
    result["peak_rss_mb"] = round(_rss_mb())
    return result


def _worker_train(spec: dict) -> dict:
    model, shape = build_model(spec["model"], memory_efficient=spec["memory_efficient"])
    model.train()
    x = torch.rand(shape)
    target = torch.randint(0, 3, (shape[0], *shape[2:]))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    result = {"rss_model_mb": round(_rss_mb()), "matmul_gflops_local": _local_matmul()}

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        if out.dim() == x.dim() + 1:  # H-DenseUNet joint: stack([fused, logits_2d], 1), the paper's joint loss
            loss = F.cross_entropy(out[:, 0], target) + 0.5 * F.cross_entropy(out[:, 1], target)
        else:
            loss = F.cross_entropy(out, target)
        loss.backward()
        optimizer.step()

    if spec["model"].startswith("denseunet"):
        model.forward = lambda t, _forward=model.forward: _forward(t)[1]  # logits only
    times = best_times(step, spec["reps"], spec["warmup"])
    result.update(train_step_s=min(times), train_step_s_max=max(times), peak_rss_mb=round(_rss_mb()))
    return result


def _load_case(image_path: str, label_path: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The bundle's inference preprocessing (RAS, HU window [-200, 250] to [0, 1]) and the label on the same grid."""
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd, ScaleIntensityRanged

    keys = ["image", "label"]
    load = Compose(
        [
            LoadImaged(keys, image_only=True),
            EnsureChannelFirstd(keys),
            Orientationd(keys, axcodes="RAS", labels=None),
            ScaleIntensityRanged("image", -200, 250, 0.0, 1.0, clip=True),
        ]
    )
    data = load({"image": image_path, "label": label_path})
    return data["image"].float(), data["label"]


def _fine_minimum_gflop(fine: nn.Module, roi: list[int]) -> dict:
    """Fine-network GFLOP of the ROI with no overlap (every branch once per voxel of the ROI padded to multiples
    of 32 in-plane), per voxel of the unpadded ROI, and with MONAI's 224x224x12 windows at 25 % overlap."""
    from monai.data.utils import dense_patch_slices

    from bundle.networks import HDenseUNet

    per_patch = count_flops(fine, (1, 1, *PATCH))
    result = {"fine_gflop_unpadded_min": per_patch * math.prod(roi) / math.prod(PATCH) / 1e9}
    padded = [max(n, p) for n, p in zip(roi, PATCH)]
    windows = dense_patch_slices(padded, PATCH, [max(int(p * 0.75), 1) if n > p else p for n, p in zip(padded, PATCH)])
    result["fine_gflop_sliding_window"] = per_patch * len(windows) / 1e9
    if isinstance(fine, HDenseUNet):
        hp, wp = (-(-n // 32) * 32 for n in roi[:2])
        flop2d = count_flops(fine.dense2d, (1, 3, hp, wp))
        flop3d = count_flops(fine, (1, 1, hp, wp, PATCH[2])) - PATCH[2] * flop2d
        result["fine_gflop_min"] = (flop2d * roi[2] + flop3d * roi[2] / PATCH[2]) / 1e9
    return result


def _worker_case(spec: dict) -> dict:
    from bundle.networks import LiverTumorCascade

    image, label = _load_case(spec["image"], spec["label"])
    fine = _dynunet_baseline() if spec["fine"] == "dynunet_baseline" else None
    torch.manual_seed(0)
    cascade = LiverTumorCascade(size=spec["size"], fine=fine, stage="cascade").eval()
    liver = label[0].as_tensor() > 0
    timing = {"coarse_s": 0.0, "coarse_flops": 0}
    coarse_liver_mask = cascade.coarse_liver_mask
    counter = FlopCounter()  # every conv run, also in the cascade's inference copies of its networks

    def label_as_liver_mask(img: torch.Tensor, spacing: tuple) -> torch.Tensor:
        start, flops = time.perf_counter(), counter.flops
        coarse_liver_mask(img, spacing)  # the coarse network runs (and is timed); its random-weight mask is not used
        timing["coarse_s"] += time.perf_counter() - start
        timing["coarse_flops"] += counter.flops - flops
        return liver

    cascade.coarse_liver_mask = label_as_liver_mask  # benchmark hook: a deterministic ROI
    spacing = tuple(float(s) for s in torch.linalg.norm(image.affine[:3, :3].double(), dim=0))
    roi = [hi - lo for lo, hi in cascade.liver_box(liver, spacing)]
    result = {"shape": list(image.shape[1:]), "spacing_mm": [round(s, 3) for s in spacing], "roi": roi}
    result["matmul_gflops_local"] = _local_matmul()
    cascade.default_spacing = spacing  # a plain tensor in: the cascade takes this spacing
    image = image.as_tensor()
    with counter, torch.no_grad():
        start, cpu = time.perf_counter(), time.process_time()
        out = cascade(image.unsqueeze(0))
        result.update(seconds=time.perf_counter() - start, cpu_s=time.process_time() - cpu)
    assert out.shape == (1, 3, *image.shape[1:])
    result.update(coarse_s=timing["coarse_s"], fine_s=result["seconds"] - timing["coarse_s"])
    result.update(gflop_coarse=timing["coarse_flops"] / 1e9, gflop_fine=(counter.flops - timing["coarse_flops"]) / 1e9)
    result["gflop"] = result["gflop_coarse"] + result["gflop_fine"]
    result["peak_rss_mb"] = round(_rss_mb())
    result.update(_fine_minimum_gflop(cascade.fine, roi))
    return result


WORKERS = {"forward": _worker_forward, "train": _worker_train, "case": _worker_case}


def worker_main(spec_json: str) -> None:
    """Entry point of a measurement subprocess: run one spec, print its JSON result as the last line."""
    spec = json.loads(spec_json)
    torch.set_num_threads(spec.get("threads", torch.get_num_threads()))
    print(json.dumps(WORKERS[spec["task"]](spec)))


def _run_worker(spec: dict, timeout: float) -> dict:
    code = "import sys; from bundle.perf.benchmark import worker_main; worker_main(sys.argv[1])"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, json.dumps(spec)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        logger.warning("%s timed out after %.0f s", spec, timeout)
        return {"error": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        logger.warning("%s failed: %s", spec, proc.stderr[-2000:])
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    logger.info("%s: %s (%.0f s)", spec.get("model") or spec.get("case"), result, time.perf_counter() - started)
    return result


# ---- the run ------------------------------------------------------------------------------------------------------
def _cases(folder: Path, quick: bool) -> dict[str, tuple[str, str]]:
    """name -> (image, label): the phantom written to ``folder``, and the real cases found (``nifti/*volume*``)."""
    import nibabel as nib

    from bundle.data import make_phantom

    options = QUICK_PHANTOM if quick else PHANTOM
    case = make_phantom(**options)
    paths = (str(folder / "volume-phantom.nii.gz"), str(folder / "segmentation-phantom.nii.gz"))
    nib.save(nib.Nifti1Image(case.image, case.affine), paths[0])
    nib.save(nib.Nifti1Image(case.label, case.affine), paths[1])
    cases = {"phantom_{0}x{0}x{1}".format(options["size"], options["num_slices"]): paths}
    nifti = REAL_DATA_DIR / "nifti"
    for volume in sorted(nifti.glob("*volume*")) if nifti.is_dir() else []:
        labels = [p for p in nifti.glob(volume.name.split("volume")[0] + "*") if "volume" not in p.name]
        if labels:
            cases["real_" + volume.name.split("_volume")[0]] = (str(volume), str(labels[0]))
    return {k: v for k, v in cases.items() if not quick or k.startswith("phantom") or k in QUICK_REAL_CASES}


def run_benchmark(quick: bool = False, timeout: float | None = None) -> dict:
    """The whole benchmark; returns the JSON-ready result (see the module docstring and :func:`format_table`)."""
    timeout = timeout or (150.0 if quick else 3600.0)
    started = time.perf_counter()
    result: dict = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "quick": quick}
    result["machine"] = machine_info()
    peak_start = measure_peak(reps=2 if quick else 5)
    result["models"] = {}
    names = QUICK_MODELS if quick else tuple(MODELS)
    for name in names:
        model, shape = build_model(name)
        entry = {"params": sum(p.numel() for p in model.parameters()), "patch_input": list(shape)}
        entry["gflop_per_patch"] = count_flops(model.eval(), shape) / 1e9
        del model
        reps, warmup = (1, 0) if quick else (3, 1)
        spec = {"task": "forward", "model": name, "reps": reps, "warmup": warmup, "module": not quick}
        entry.update(_run_worker(spec, timeout))
        if not quick and name == "hdenseunet_paper":  # thread setting: one thread instead of the default
            one = _run_worker({**spec, "threads": 1, "module": False}, timeout)
            entry.update({f"{k}_1thread": v for k, v in one.items() if k.startswith(("forward", "peak"))})
        if not quick:
            for efficient in (False, True) if name.startswith(("hdense", "denseunet")) else (False,):
                spec = {"task": "train", "model": name, "memory_efficient": efficient}
                spec.update(reps=1, warmup=1)
                train = _run_worker(spec, timeout)
                suffix = "_memory_efficient" if efficient else ""
                for key in ("train_step_s", "train_step_s_max", "peak_rss_mb", "error"):
                    if key in train:
                        entry[("train_" + key if key in ("peak_rss_mb", "error") else key) + suffix] = train[key]
        result["models"][name] = entry
    result["cases"] = {}
    with tempfile.TemporaryDirectory() as folder:
        cases = _cases(Path(folder), quick)
        runs = [(name, "small", "hdenseunet") for name in cases]
        if not quick:
            runs += [(name, "paper", "hdenseunet") for name in cases]
            runs += [(name, "paper", "dynunet_baseline") for name in cases if name.startswith("phantom")]
        for case, size, fine in runs:
            image, label = cases[case]
            spec = {"task": "case", "case": case, "image": image, "label": label, "size": size, "fine": fine}
            key = f"{case}/{fine if fine != 'hdenseunet' else 'hdenseunet_' + size}"
            result["cases"][key] = _run_worker(spec, timeout)
    peak_end = measure_peak(reps=1 if quick else 5)
    result["peak_measurements"] = {"start": peak_start, "end": peak_end}
    result["peak_gflops"] = max(peak_start["peak"], peak_end["peak"])
    _derive(result)
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    result["run_seconds"] = round(time.perf_counter() - started, 1)
    return result


def _derive(result: dict) -> None:
    """Achieved GFLOP/s and fractions of the run's peak; baseline ratios."""
    peak = result["peak_gflops"]
    for entry in result["models"].values():
        if "forward_s" in entry:
            entry["forward_gflops"] = entry["gflop_per_patch"] / entry["forward_s"]
            entry["fraction_of_peak"] = entry["forward_gflops"] / peak
        if "forward_module_s" in entry:
            entry["fraction_of_peak_module"] = entry["gflop_per_patch"] / entry["forward_module_s"] / peak
    for entry in result["cases"].values():
        if "seconds" in entry:
            entry["fraction_of_peak"] = entry["gflop"] / entry["seconds"] / peak
            if "fine_gflop_min" in entry:
                entry["fine_flop_ratio"] = entry["gflop_fine"] / entry["fine_gflop_min"]
    models, cases = result["models"], result["cases"]
    ratios = {}
    base, ours = models.get("dynunet_baseline", {}), models.get("hdenseunet_paper", {})
    for key in ("params", "gflop_per_patch", "forward_s", "train_step_s", "peak_rss_mb", "train_peak_rss_mb"):
        if key in base and key in ours:
            ratios[f"models.{key}"] = ours[key] / base[key]
    phantom = next((k.split("/")[0] for k in cases if k.startswith("phantom")), "")
    base, ours = cases.get(f"{phantom}/dynunet_baseline", {}), cases.get(f"{phantom}/hdenseunet_paper", {})
    for key in ("seconds", "fine_s", "gflop_fine", "peak_rss_mb"):
        if key in base and key in ours:
            ratios[f"cases.phantom.{key}"] = ours[key] / base[key]
    result["hdenseunet_over_baseline"] = ratios
