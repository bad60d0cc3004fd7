"""The phantom cases: :func:`make_phantom` (anatomy painted on the scanner's grid, HU synthesised, label from the
tissues) and :func:`write_phantom_dataset` (cases saved in the LiTS layout, NIfTI written atomically)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .anatomy import paint_abdomen
from .geometry import Canvas, draw_landmarks, organ_rng
from .scanner import draw_acquisition, flip_axes, stored_affine, synthesise_hu, tumour_record
from .tissues import LIVER_TISSUES, TISSUE_ID, TISSUES, TUMOR_TISSUES, enhancement_range

__all__ = [
    "LITS_MATRIX",
    "MIN_FEATURE_MM",
    "PhantomCase",
    "case_seed",
    "make_phantom",
    "save_nifti",
    "write_phantom_dataset",
]

logger = logging.getLogger("bundle.data.phantom")

LITS_MATRIX = 512  # the in-plane matrix the nominal adult anatomy is drawn for
MIN_FEATURE_MM = 1.5  # thinnest wall / vessel radius actually drawn (world mm), so small matrices keep them


@dataclass
class PhantomCase:
    """One synthetic CT case.

    Attributes:
        image: ``(X, Y, Z)`` int16 HU, stored in ``orientation`` (the affine maps voxel indices to RAS mm).
        label: ``(X, Y, Z)`` uint8, 0 background, 1 liver, 2 tumour.
        affine: ``(4, 4)`` float64 voxel-to-world (RAS+, mm), exactly representable in a NIfTI header.
        spacing: voxel size along the array axes (mm).
        tumors: one dict per tumour: ``centre_voxel`` (array indices), ``centre_mm`` (world RAS),
            ``radius_mm`` (world, bounding), ``nominal_diameter_mm`` (adult-equivalent at 512²), ``kind``
            (``"hypo"``/``"hyper"``), ``num_voxels`` (painted; 0 if it fell between slices).
        orientation: axis codes of the array, e.g. ``"LPS"``.
        seed: the seed it was made from.
        masks: tissue name -> ``(X, Y, Z)`` bool where that tissue is visible, if requested.
        enhancement: contrast phase, 0 (parenchyma unenhanced) to 1 (portal venous): see :func:`~.tissues.hu_range`.
    """

    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    tumors: list[dict]
    orientation: str = "RAS"
    seed: int = 0
    masks: dict[str, np.ndarray] | None = None
    enhancement: float = 0.0


def case_seed(seed: int, index: int) -> int:
    """The seed of case ``index`` of a dataset made with ``seed``: independent streams per case."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def make_phantom(
    seed: int,
    size: int = 256,
    num_slices: int | None = None,
    spacing: tuple[float, float, float] | None = None,
    orientation: str | None = None,
    return_masks: bool = False,
    enhancement: tuple[float, float] | float = 0.0,
) -> PhantomCase:
    """One synthetic abdominal CT with liver and tumour labels, deterministic by ``seed``.

    Args:
        seed: non-negative integer; the anatomy depends only on ``seed`` and ``size``.
        size: in-plane matrix (512 is LiTS size; the anatomy is scaled by ``size / 512``).
        num_slices: slices; default covers ~200-300 mm of (scaled) abdomen from the lung bases down,
            capped at ``max(16, size // 2)``.
        spacing: ``(dx, dy, dz)`` mm; default drawn (in-plane 0.55-1.0 so the body fits, slices 0.7-5).
        orientation: axis codes of the stored array among flips of RAS (``"RAS"``, ``"LAS"``, ``"LPS"``,
            ``"LPI"``, ...); default drawn from :data:`ORIENTATIONS`.
        return_masks: also return ``masks``: tissue name -> bool ``(X, Y, Z)`` (see ``NOMINAL_HU``).
        enhancement: contrast phase in [0, 1] (0: liver 50-80 HU, 1: portal venous, liver 100-135 HU), or a
            ``(low, high)`` range to draw it from per case; the anatomy and every other draw stay the same.

    Returns:
        A :class:`PhantomCase` with ``image`` ``(size, size, Z)`` int16 HU and ``label`` uint8.
    """
    if seed < 0 or size < 16:
        raise ValueError(f"make_phantom needs seed >= 0 and size >= 16, got seed={seed}, size={size}")
    if num_slices is not None and num_slices < 1:
        raise ValueError(f"num_slices must be positive, got {num_slices}")
    if spacing is not None and (len(spacing) != 3 or min(spacing) <= 0):
        raise ValueError(f"spacing must be three positive mm values, got {spacing}")
    phase = float(organ_rng(seed, "contrast_phase").uniform(*enhancement_range(enhancement)))
    start = time.perf_counter()
    scale = size / LITS_MATRIX
    lm = draw_landmarks(seed)
    acq = draw_acquisition(seed, lm, size, scale, num_slices, spacing, orientation)
    axes = [(acq.first_voxel[a] + np.arange(acq.shape[a]) * acq.spacing[a]) / scale for a in range(3)]
    cv = Canvas(*(ax.astype(np.float32) for ax in axes), min_feature=MIN_FEATURE_MM / scale)
    tumours = paint_abdomen(cv, seed)

    labels_of = np.zeros(len(TISSUES), np.uint8)
    labels_of[[TISSUE_ID[t] for t in LIVER_TISSUES]] = 1
    labels_of[[TISSUE_ID[t] for t in TUMOR_TISSUES]] = 2
    flips = flip_axes(acq.orientation)

    def stored(volume: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.flip(volume, flips)) if flips else volume

    masks = None
    if return_masks:
        masks = {name: stored(cv.tissue == i) for i, name in enumerate(TISSUES) if np.any(cv.tissue == i)}
    case = PhantomCase(
        image=stored(synthesise_hu(cv.tissue, seed, acq, phase)),
        label=stored(labels_of[cv.tissue]),
        affine=stored_affine(acq),
        spacing=acq.spacing,
        tumors=[tumour_record(t, acq, scale) for t in tumours],
        orientation=acq.orientation,
        seed=seed,
        masks=masks,
        enhancement=phase,
    )
    logger.debug("phantom seed=%d shape=%s in %.2f s", seed, acq.shape, time.perf_counter() - start)
    return case


def save_nifti(array: np.ndarray, affine: np.ndarray, path: Path, description: str) -> None:
    """Write a NIfTI atomically: a hidden temporary file in the same folder, then ``os.replace``."""
    import nibabel as nib

    img = nib.Nifti1Image(array, affine)
    img.set_data_dtype(array.dtype)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm")
    img.header["descrip"] = description.encode()[:79]
    tmp = path.with_name(f".{path.name[: -len('.nii.gz')]}.{os.getpid()}.tmp.nii.gz")
    try:
        nib.save(img, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_phantom_dataset(
    out_dir: str | os.PathLike,
    num_cases: int,
    seed: int = 0,
    size: int = 256,
    start_index: int = 0,
    enhancement: tuple[float, float] | float = 0.0,
) -> list[dict[str, str]]:
    """Write cases ``start_index … start_index + num_cases - 1`` in the LiTS layout.

    Case ``N`` is ``make_phantom(case_seed(seed, N), size, enhancement=enhancement)`` saved as
    ``volume-N.nii.gz`` (int16 HU) and ``segmentation-N.nii.gz`` (uint8), so writing in chunks gives the same
    files as writing at once.

    Returns:
        ``[{"image": path, "label": path}, ...]`` (absolute paths as strings), one per case.
    """
    if num_cases < 0 or start_index < 0:
        raise ValueError(f"num_cases and start_index must be >= 0, got {num_cases}, {start_index}")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(start_index, start_index + num_cases):
        start = time.perf_counter()
        case = make_phantom(case_seed(seed, index), size=size, enhancement=enhancement)
        note = f"phantom seed={seed} case={index} {case.orientation} enhancement={case.enhancement:.2f}"
        image_path, label_path = out / f"volume-{index}.nii.gz", out / f"segmentation-{index}.nii.gz"
        save_nifti(case.image, case.affine, image_path, note)
        save_nifti(case.label, case.affine, label_path, note)
        written.append({"image": str(image_path), "label": str(label_path)})
        logger.info(
            "case %d: %s %s spacing %s, %d tumours, %.1f s",
            index,
            case.image.shape,
            case.orientation,
            tuple(round(s, 3) for s in case.spacing),
            len(case.tumors),
            time.perf_counter() - start,
        )
    return written
