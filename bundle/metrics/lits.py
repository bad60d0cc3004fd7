"""The LiTS challenge metrics (Bilic et al., MedIA 2023; Li et al., H-DenseUNet, IEEE TMI 2018, section IV-B).

For one binary pair (prediction ``P``, reference ``R``) with voxel spacing in mm:

- ``dice`` = 2|P∩R| / (|P| + |R|), computed by MONAI :func:`monai.metrics.compute_dice`;
- ``voe`` = 1 - |P∩R| / |P or R| (volumetric overlap error, 1 - Jaccard);
- ``rvd`` = (|P| - |R|) / |R| (relative volume difference, signed: negative = under-segmentation);
- ``assd``, ``msd``, ``rmsd`` in mm: average, maximum and root-mean-square symmetric surface distance,
  pooled over the surface voxels of both masks exactly as the LiTS evaluation (medpy ``Surface``) does:
  ``assd = (Σ d(P→R) + Σ d(R→P)) / (n_P + n_R)``, ``msd = max(max d(P→R), max d(R→P))`` (symmetric
  Hausdorff on surfaces), ``rmsd = sqrt((Σ d²(P→R) + Σ d²(R→P)) / (n_P + n_R))``. Surface voxels and
  their nearest-neighbour distances come from MONAI :func:`monai.metrics.utils.get_edge_surface_distance`
  with ``spacing=`` (anisotropic spacing honoured: one slice of 3 mm is 3 mm). A surface voxel is a
  foreground voxel removed by a 6-connected binary erosion (MONAI's edge definition; medpy used an
  18-neighbourhood, so distances can differ from the official numbers by a fraction of a voxel).
  MONAI computes Dice and the distances in float32: about 7 significant digits.

Conventions for empty masks (``∅`` = no foreground voxel):

=====================  ======  =====  ==========================  ====================
case                   Dice    VOE    RVD                         ASSD / MSD / RMSD
=====================  ======  =====  ==========================  ====================
P = ∅ and R = ∅        1       0      0                           0
P = ∅, R ≠ ∅           0       1      -1 (as defined)             NaN
P ≠ ∅, R = ∅           0       1      NaN (undefined, /0)         NaN
=====================  ======  =====  ==========================  ====================

NaN values are excluded from the means of :func:`lits_summary`, which counts them
(``<structure>_rvd_excluded``, ``<structure>_surface_excluded``).

Structures (:func:`lits_case_metrics`), from label maps with 0 background, 1 liver, 2 tumor:
``liver`` = labels {1, 2} (the tumor is part of the liver, as LiTS scores it), ``tumor`` = label 2.

Tumor burden = tumor volume / liver volume (liver = labels {1, 2}) of one label map; an empty liver has no
tumor either (tumor ⊂ liver), and its burden is defined as 0 (0/0 → 0), so that no case is dropped from
the tumor burden RMSE. Global Dice = 2·Σ|P∩R| / (Σ|P| + Σ|R|) over all cases (voxel counts), 1 when
every mask of every case is empty.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import compute_dice
from monai.metrics.utils import get_edge_surface_distance

__all__ = [
    "LIVER_LABELS",
    "STRUCTURES",
    "TUMOR_LABELS",
    "assd",
    "binary_metrics",
    "dice",
    "lits_case_metrics",
    "lits_summary",
    "msd",
    "rmsd",
    "rvd",
    "surface_distances",
    "tumor_burden",
    "voe",
]

LIVER_LABELS = (1, 2)  # liver = liver parenchyma + tumor, as LiTS scores it
TUMOR_LABELS = (2,)
STRUCTURES = {"liver": LIVER_LABELS, "tumor": TUMOR_LABELS}
_OVERLAP_METRICS = ("dice", "voe", "rvd")
_SURFACE_METRICS = ("assd", "msd", "rmsd")
_CASE_METRICS = _OVERLAP_METRICS + _SURFACE_METRICS


def _to_bool(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x).astype(bool, copy=False)


def _pair(pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    p, r = _to_bool(pred), _to_bool(ref)
    if p.shape != r.shape:
        raise ValueError(f"prediction and reference must have the same shape, got {p.shape} and {r.shape}")
    return p, r


def _crop_to_union(p: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop both masks to the bounding box of P or R plus a one-voxel margin (clipped at the border).

    Exact for every metric here: overlaps only count foreground, and the margin keeps each surface voxel's
    erosion neighbourhood (voxels on the image border stay surface voxels, as without the crop).
    """
    union = p | r
    if not union.any():
        return p, r
    idx = np.nonzero(union)
    box = tuple(slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in idx)
    return p[box], r[box]


def dice(pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor) -> float:
    """Dice of two binary masks of the same shape (any spatial rank); 1 when both are empty."""
    p, r = _pair(pred, ref)
    p, r = _crop_to_union(p, r)
    p_t = torch.as_tensor(p, dtype=torch.float64)[None, None]  # (B=1, C=1, spatial...), float64 for exact ratios
    r_t = torch.as_tensor(r, dtype=torch.float64)[None, None]
    score = compute_dice(p_t, r_t, include_background=True, ignore_empty=False)
    return float(score.item())


def voe(pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor) -> float:
    """Volumetric overlap error 1 - |P∩R| / |P or R|; 0 when both are empty, 1 when exactly one is."""
    p, r = _pair(pred, ref)
    union = int(np.count_nonzero(p | r))
    return 0.0 if union == 0 else 1.0 - int(np.count_nonzero(p & r)) / union


def rvd(pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor) -> float:
    """Signed relative volume difference (|P| - |R|) / |R|; 0 when both are empty, NaN when only R is."""
    p, r = _pair(pred, ref)
    n_p, n_r = int(np.count_nonzero(p)), int(np.count_nonzero(r))
    if n_r == 0:
        return 0.0 if n_p == 0 else math.nan
    return (n_p - n_r) / n_r


def surface_distances(
    pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each surface voxel of P to the surface of R, and from R to P.

    Args:
        pred: binary mask, spatial shape ``(H, W[, D])``.
        ref: binary mask of the same shape.
        spacing: voxel size in mm along each array axis, e.g. ``(0.7, 0.7, 5.0)``.

    Returns:
        ``(d_pred_to_ref, d_ref_to_pred)``, 1D float64 arrays in mm (one value per surface voxel).
        Both are empty when both masks are empty; a ``ValueError`` is raised when exactly one mask is empty
        (the distance is undefined: the callers return NaN).
    """
    p, r = _pair(pred, ref)
    if len(spacing) != p.ndim:
        raise ValueError(f"spacing {tuple(spacing)} must have one value per axis of the mask shape {p.shape}")
    has_p, has_r = bool(p.any()), bool(r.any())
    if not has_p and not has_r:
        return np.zeros(0), np.zeros(0)
    if has_p != has_r:
        raise ValueError("surface distance is undefined when exactly one of the masks is empty")
    p, r = _crop_to_union(p, r)
    with warnings.catch_warnings():  # MONAI 1.6 passes its own deprecated ``always_return_as_numpy`` internally
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*")
        _, (d_pr, d_rp), _ = get_edge_surface_distance(
            torch.as_tensor(p),
            torch.as_tensor(r),
            distance_metric="euclidean",
            spacing=[float(s) for s in spacing],
            symmetric=True,
            warn_empty=False,
        )
    return d_pr.double().cpu().numpy().reshape(-1), d_rp.double().cpu().numpy().reshape(-1)


def _surface_summary(d_pr: np.ndarray, d_rp: np.ndarray) -> dict[str, float]:
    n = d_pr.size + d_rp.size
    if n == 0:  # both masks empty
        return {"assd": 0.0, "msd": 0.0, "rmsd": 0.0}
    both = np.concatenate([d_pr, d_rp])
    return {"assd": float(both.sum() / n), "msd": float(both.max()), "rmsd": float(math.sqrt((both**2).sum() / n))}


def _surface_metric(pred, ref, spacing: Sequence[float], name: str) -> float:
    p, r = _pair(pred, ref)
    if p.any() != r.any():  # exactly one empty: undefined
        return math.nan
    return _surface_summary(*surface_distances(p, r, spacing))[name]


def assd(pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor, spacing: Sequence[float]) -> float:
    """Average symmetric surface distance in mm (LiTS, pooled over both surfaces); 0 / NaN for empty masks."""
    return _surface_metric(pred, ref, spacing, "assd")


def msd(pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor, spacing: Sequence[float]) -> float:
    """Maximum symmetric surface distance in mm (symmetric Hausdorff distance between the surfaces)."""
    return _surface_metric(pred, ref, spacing, "msd")


def rmsd(pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor, spacing: Sequence[float]) -> float:
    """Root-mean-square symmetric surface distance in mm (LiTS, pooled over both surfaces)."""
    return _surface_metric(pred, ref, spacing, "rmsd")


def binary_metrics(
    pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor, spacing: Sequence[float]
) -> dict[str, float | int]:
    """All six LiTS metrics of one binary pair, surface distances computed once.

    Returns:
        ``dice, voe, rvd, assd, msd, rmsd`` (distances in mm) and the voxel counts ``pred_voxels``,
        ``ref_voxels``, ``intersection_voxels`` that global Dice needs.
    """
    p, r = _pair(pred, ref)
    p, r = _crop_to_union(p, r)
    out: dict[str, float | int] = {"dice": dice(p, r), "voe": voe(p, r), "rvd": rvd(p, r)}
    if p.any() == r.any():
        out.update(_surface_summary(*surface_distances(p, r, spacing)))
    else:
        out.update({name: math.nan for name in _SURFACE_METRICS})
    out["pred_voxels"] = int(np.count_nonzero(p))
    out["ref_voxels"] = int(np.count_nonzero(r))
    out["intersection_voxels"] = int(np.count_nonzero(p & r))
    return out


def _labels(label: np.ndarray | torch.Tensor, ndim: int) -> np.ndarray:
    if isinstance(label, torch.Tensor):
        label = label.detach().cpu().numpy()
    arr = np.asarray(label)
    if arr.ndim == ndim + 1 and arr.shape[0] == 1:  # channel-first (1, H, W, D)
        arr = arr[0]
    if arr.ndim != ndim:
        raise ValueError(f"expected a label map with {ndim} spatial axes (one per spacing value), got {arr.shape}")
    return arr


def tumor_burden(label: np.ndarray | torch.Tensor) -> float:
    """Tumor volume / liver volume of one label map (liver = labels {1, 2}, tumor = 2); 0 for an empty liver."""
    arr = np.asarray(label.detach().cpu().numpy() if isinstance(label, torch.Tensor) else label)
    liver = int(np.count_nonzero(np.isin(arr, LIVER_LABELS)))
    return 0.0 if liver == 0 else int(np.count_nonzero(np.isin(arr, TUMOR_LABELS))) / liver


def lits_case_metrics(
    pred_label: np.ndarray | torch.Tensor, ref_label: np.ndarray | torch.Tensor, spacing: Sequence[float]
) -> dict[str, float | int]:
    """LiTS metrics of one case for the liver (labels {1, 2}) and the tumor (label 2).

    Args:
        pred_label: predicted label map ``(H, W, D)`` (or ``(1, H, W, D)``), values {0, 1, 2}.
        ref_label: reference label map of the same shape.
        spacing: voxel size in mm along the three array axes.

    Returns:
        a flat dict: ``liver_dice, liver_voe, liver_rvd, liver_assd, liver_msd, liver_rmsd`` (mm), the same with
        ``tumor_``, voxel counts ``<structure>_{pred,ref,intersection}_voxels``, volumes
        ``<structure>_{pred,ref}_ml`` in mL, and ``tumor_burden_pred`` / ``tumor_burden_ref``.
    """
    pred = _labels(pred_label, len(spacing))
    ref = _labels(ref_label, len(spacing))
    if pred.shape != ref.shape:
        raise ValueError(f"prediction and reference must have the same shape, got {pred.shape} and {ref.shape}")
    voxel_ml = float(np.prod([float(s) for s in spacing])) / 1000.0
    out: dict[str, float | int] = {}
    for name, labels in STRUCTURES.items():
        metrics = binary_metrics(np.isin(pred, labels), np.isin(ref, labels), spacing)
        out.update({f"{name}_{k}": v for k, v in metrics.items()})
        out[f"{name}_pred_ml"] = metrics["pred_voxels"] * voxel_ml
        out[f"{name}_ref_ml"] = metrics["ref_voxels"] * voxel_ml
    out["tumor_burden_pred"] = tumor_burden(pred)
    out["tumor_burden_ref"] = tumor_burden(ref)
    return out


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def lits_summary(per_case: Sequence[dict]) -> dict[str, float | int]:
    """Aggregate :func:`lits_case_metrics` outputs as LiTS reports them.

    Returns:
        ``n_cases``; per structure (``liver``, ``tumor``): ``<s>_dice`` (Dice per case: mean over cases),
        ``<s>_dice_global`` (2·Σ|P∩R| / (Σ|P| + Σ|R|)), the means of ``<s>_voe``, ``<s>_rvd``, ``<s>_assd``,
        ``<s>_msd``, ``<s>_rmsd`` over the cases where they are defined, and the counts of cases left out of
        them, ``<s>_rvd_excluded`` and ``<s>_surface_excluded``; ``tumor_burden_rmse`` (root mean square of
        predicted - reference burden over cases) and ``tumor_burden_max_error`` (largest absolute error).
    """
    out: dict[str, float | int] = {"n_cases": len(per_case)}
    for s in STRUCTURES:
        for m in _CASE_METRICS:
            out[f"{s}_{m}"] = _nanmean([float(c[f"{s}_{m}"]) for c in per_case])
        inter = sum(int(c[f"{s}_intersection_voxels"]) for c in per_case)
        total = sum(int(c[f"{s}_pred_voxels"]) + int(c[f"{s}_ref_voxels"]) for c in per_case)
        out[f"{s}_dice_global"] = (1.0 if total == 0 else 2.0 * inter / total) if per_case else math.nan
        out[f"{s}_rvd_excluded"] = sum(math.isnan(float(c[f"{s}_rvd"])) for c in per_case)
        out[f"{s}_surface_excluded"] = sum(math.isnan(float(c[f"{s}_assd"])) for c in per_case)
    errors = np.array([float(c["tumor_burden_pred"]) - float(c["tumor_burden_ref"]) for c in per_case])
    out["tumor_burden_rmse"] = float(np.sqrt(np.mean(errors**2))) if errors.size else math.nan
    out["tumor_burden_max_error"] = float(np.abs(errors).max()) if errors.size else math.nan
    return out
