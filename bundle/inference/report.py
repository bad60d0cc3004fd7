"""A per-case quantitative report of a liver/tumor label map, and atomic file writing.

Conventions:

- label values: 0 background, 1 liver, 2 tumor; **liver = labels {1, 2}** (a tumor is liver tissue, as in LiTS),
  tumor = label 2;
- **tumors are the 3D connected components of label 2 with 26-connectivity** (faces, edges and corners);
- volumes in mL (1 mL = 1000 mm³) from the voxel volume ``|det(affine[:3, :3])|`` in mm³;
- centroids in world mm: the voxel centroid (mean voxel index) mapped through the affine. With a NIfTI or MONAI
  affine this is RAS+ (x increases towards the patient's right, y anterior, z superior);
- tumor burden = tumor volume / liver volume, 0 when the liver is empty (there is then no tumor either).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["atomic_output", "case_report", "tumor_components", "write_json_atomic"]

TUMOR_CONNECTIVITY = 26


def tumor_components(label: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected components of label 2 of ``label`` ``(H, W, D)``: ``(component map, count)``, 0 = none."""
    structure = ndimage.generate_binary_structure(label.ndim, label.ndim)  # full connectivity: 26 in 3D
    components, count = ndimage.label(np.asarray(label) == 2, structure=structure)
    return components, int(count)


def case_report(label: np.ndarray, affine: np.ndarray, case: str) -> dict[str, Any]:
    """Liver volume, tumor count, per-tumor volume and centroid, and tumor burden of one label map.

    Args:
        label: label map ``(H, W, D)`` with values {0 background, 1 liver, 2 tumor} (a leading channel of 1 is
            accepted).
        affine: ``4 x 4`` voxel-to-world matrix in mm (e.g. the NIfTI affine or ``MetaTensor.affine``).
        case: the case name written into the report.

    Returns:
        a JSON-ready dict: ``case``, ``shape``, ``spacing_mm``, ``voxel_volume_mm3``, ``liver_volume_ml``,
        ``tumor_volume_ml``, ``tumor_count``, ``tumor_burden``, ``tumors`` (largest first: ``id``, ``voxels``,
        ``volume_ml``, ``centroid_voxel``, ``centroid_mm``) and ``conventions``.
    """
    arr = np.asarray(label)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3:
        raise ValueError(f"expected a label map (H, W, D), got shape {arr.shape}")
    aff = np.asarray(affine, dtype=np.float64)
    if aff.shape != (4, 4):
        raise ValueError(f"expected a 4x4 affine, got shape {aff.shape}")
    voxel_mm3 = float(abs(np.linalg.det(aff[:3, :3])))
    liver_voxels = int(np.count_nonzero((arr == 1) | (arr == 2)))
    components, count = tumor_components(arr)
    index = np.arange(1, count + 1)
    sizes = np.bincount(components.reshape(-1), minlength=count + 1)[1:] if count else np.zeros(0, int)
    centroids = ndimage.center_of_mass(components > 0, components, index) if count else []
    tumors = []
    for rank, k in enumerate(np.argsort(-sizes, kind="stable")):
        centre = np.asarray(centroids[k], dtype=np.float64)
        world = aff @ np.append(centre, 1.0)
        tumors.append(
            {
                "id": rank + 1,
                "voxels": int(sizes[k]),
                "volume_ml": int(sizes[k]) * voxel_mm3 / 1000.0,
                "centroid_voxel": [float(c) for c in centre],
                "centroid_mm": [float(c) for c in world[:3]],
            }
        )
    tumor_voxels = int(sizes.sum())
    return {
        "case": case,
        "shape": [int(s) for s in arr.shape],
        "spacing_mm": [float(s) for s in np.linalg.norm(aff[:3, :3], axis=0)],
        "voxel_volume_mm3": voxel_mm3,
        "liver_volume_ml": liver_voxels * voxel_mm3 / 1000.0,
        "tumor_volume_ml": tumor_voxels * voxel_mm3 / 1000.0,
        "tumor_count": count,
        "tumor_burden": tumor_voxels / liver_voxels if liver_voxels else 0.0,
        "tumors": tumors,
        "conventions": {
            "liver": "labels 1 and 2 (tumor counted as liver tissue, as in LiTS)",
            "tumor": f"label 2, {TUMOR_CONNECTIVITY}-connected 3D components",
            "volume": "mL = voxels x |det(affine[:3, :3])| mm3 / 1000",
            "centroid_mm": "mean voxel index mapped through the affine (world mm; RAS+ for NIfTI/MONAI affines)",
            "tumor_burden": "tumor volume / liver volume; 0 when the liver is empty",
        },
    }


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the folder of ``path``; on success it replaces ``path`` in one ``os.replace``.

    Readers never see a half-written file; on an exception the temporary file is removed and ``path`` is left
    untouched. The parent folder is created if needed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _json_ready(obj: Any) -> Any:
    """numpy scalars/arrays -> Python; NaN and ±inf -> None (JSON has no NaN); Paths -> str."""
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_ready(obj.tolist())
    if isinstance(obj, np.generic):
        return _json_ready(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def write_json_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (temporary file in the same folder, then
    ``os.replace``). NaN/inf become ``null`` and numpy values plain numbers. Returns the path."""
    text = json.dumps(_json_ready(obj), indent=2, allow_nan=False) + "\n"
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
