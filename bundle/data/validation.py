"""Input validation that runs before any heavy work: refuse a messy CT or label file with an error naming it.

Every check raises :class:`InvalidInputError` (a ``ValueError``) whose ``str()`` is ``"<path>: <problem>"``. The
checks run cheapest first: existence and size, then the header (dimensions, spacing, slice count, and for a label
its grid against the image's), and only then the voxels, read once (NaN/Inf, CT intensities, label values).

Headers are read by :mod:`bundle.data.image_headers` (nibabel, ITK, GDCM, 3D-IRCADb), the voxels only
after the header checks pass.

CT heuristic (:data:`CT_RULES`): voxels below ``padding_below_hu`` (-1500 HU) are taken as padding outside the
scanned field of view (scanners write -2000, -3024 or -32768 there) and ignored. Of the remaining voxels, a CT in
Hounsfield units has its 1st percentile at or below -500 HU (air around the body, in the lungs or bowel is about
-1000 HU), its 99th percentile at or above 0 HU (soft tissue 0-100 HU, bone 300-2000 HU), and at least 95% of them
within [-1100, 3100] HU. An MR image (arbitrary units, no negative air), a PET image, a CT stored without its
rescale intercept (air near 0) or an already-normalised CT (values in [0, 1]) all fail the first rule. A CT cropped
so tightly that it holds no air is refused too: pass ``allow_non_ct=True`` for such inputs.

Example::

    info = check_case("volume-0.nii.gz", "segmentation-0.nii.gz", min_slices=3)
    info.shape, info.spacing_mm, info.hu_percentiles[1]   # (512, 512, 75), (0.7, 0.7, 5.0), -1024.0
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from .image_headers import HeaderVolume, InvalidInputError, open_volume

__all__ = [
    "CT_RULES",
    "LABEL_VALUES",
    "ImageInfo",
    "InvalidInputError",
    "check_case",
    "check_image_file",
    "check_label_file",
]

logger = logging.getLogger(__name__)

#: Thresholds of the CT-intensity heuristic (HU); see the module docstring.
CT_RULES: dict[str, float] = {"padding_below_hu": -1500.0, "air_p1_max_hu": -500.0, "tissue_p99_min_hu": 0.0}
CT_RULES |= {"range_low_hu": -1100.0, "range_high_hu": 3100.0, "range_min_fraction": 0.95}
#: Label values the bundle accepts: 0 background, 1 liver, 2 tumour (LiTS).
LABEL_VALUES: tuple[int, ...] = (0, 1, 2)
#: Percentiles (in percent) kept in :attr:`ImageInfo.hu_percentiles`.
PERCENTILES: tuple[float, ...] = (1.0, 5.0, 50.0, 95.0, 99.0)
#: At most this many voxels are sampled (evenly strided) for the percentiles, to keep large CTs cheap.
MAX_SAMPLES = 2_000_000
#: Affine tolerances when a label is compared with its image: origin and spacing in mm, direction cosines unitless.
AFFINE_ATOL_MM = 1e-3
DIRECTION_ATOL = 1e-4


@dataclass(frozen=True, eq=False)
class ImageInfo:
    """What the checks learnt about one volume.

    Attributes:
        path: the file or DICOM folder.
        shape: spatial shape as stored (voxels, file axis order; a trailing singleton 4th axis dropped).
        spacing_mm: voxel size along the stored axes, in mm (column norms of ``affine``).
        affine: 4x4 voxel index -> RAS world mm, as MONAI's readers return it.
        dtype: stored voxel type, e.g. ``"int16"``, ``"float32"``.
        orientation: axis codes of the stored axes, e.g. ``("L", "P", "S")``.
        num_slices: number of axial slices (voxels along the axis closest to superior-inferior).
        hu_percentiles: ``{percent: HU}`` of the voxels inside the scanned field (empty for a label).
        padding_fraction: fraction of voxels below -1500 HU, taken as padding outside the scan (0 for a label).
        label_values: the distinct values of a label (empty for an image).
    """

    path: Path
    shape: tuple[int, ...]
    spacing_mm: tuple[float, ...]
    affine: np.ndarray = field(repr=False)
    dtype: str
    orientation: tuple[str, ...]
    num_slices: int
    hu_percentiles: dict[float, float] = field(default_factory=dict)
    padding_fraction: float = 0.0
    label_values: tuple[int, ...] = ()


def _fmt(values: tuple | list) -> str:
    return "(" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) + ")"


def _spatial_shape(vol: HeaderVolume) -> tuple[int, int, int]:
    """The 3D shape, refusing 2D, multi-volume 4D/5D and multi-component images."""
    shape = vol.shape
    if len(shape) < 3:
        raise InvalidInputError(vol.path, f"is {len(shape)}D (shape {_fmt(shape)}), expected a 3D volume")
    if min(shape) < 1:
        raise InvalidInputError(vol.path, f"has an empty axis (shape {_fmt(shape)})")
    extra = int(np.prod(shape[3:])) if len(shape) > 3 else 1
    if extra > 1:
        raise InvalidInputError(
            vol.path,
            f"is {len(shape)}D with {extra} time points or channels (shape {_fmt(shape)}), expected one 3D volume",
        )
    if vol.components > 1:
        raise InvalidInputError(vol.path, f"has {vol.components} components per voxel (colour?), expected one")
    return shape[0], shape[1], shape[2]


def _check_spacing(vol: HeaderVolume, max_spacing_mm: float) -> tuple[float, float, float]:
    """Spacing (mm) from the affine; refuses zero, negative, NaN or absurd values (header or affine)."""
    spacing = tuple(float(s) for s in np.linalg.norm(vol.affine[:3, :3], axis=0))
    for values in (vol.header_spacing, spacing):
        if any(not math.isfinite(s) or s <= 0 for s in values):
            raise InvalidInputError(vol.path, f"spacing {_fmt(values)} mm is zero, negative or NaN")
    if not np.isfinite(vol.affine).all() or abs(np.linalg.det(vol.affine[:3, :3])) < 1e-12:
        raise InvalidInputError(vol.path, "degenerate or non-finite affine")
    if max(spacing) > max_spacing_mm:
        raise InvalidInputError(vol.path, f"spacing {_fmt(spacing)} mm exceeds {max_spacing_mm:g} mm")
    return spacing  # type: ignore[return-value]


def _canonical(shape: tuple[int, ...], affine: np.ndarray) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and affine after reorienting to RAS axis order (as ``Orientationd("RAS")`` does), to compare grids."""
    ornt = nib.orientations.io_orientation(affine)
    new_affine = affine @ nib.orientations.inv_ornt_aff(ornt, shape)
    new_shape = [0, 0, 0]
    for axis, (target, _) in enumerate(ornt):
        new_shape[int(target)] = shape[axis]
    return tuple(new_shape), new_affine


def _info(vol: HeaderVolume, max_spacing_mm: float, **voxel_facts: Any) -> ImageInfo:
    """The header checks (dimensions, spacing) and an :class:`ImageInfo`, to which ``voxel_facts`` are added."""
    shape = _spatial_shape(vol)
    spacing = _check_spacing(vol, max_spacing_mm)
    num_slices = _canonical(shape, vol.affine)[0][2]
    orientation = tuple(nib.aff2axcodes(vol.affine))
    return ImageInfo(vol.path, shape, spacing, vol.affine, vol.dtype, orientation, num_slices, **voxel_facts)


def _sample(raw: np.ndarray) -> np.ndarray:
    """An evenly strided sample of at most :data:`MAX_SAMPLES` voxels (odd stride, to avoid aliasing rows)."""
    flat = raw.ravel(order="K")
    step = math.ceil(flat.size / MAX_SAMPLES)
    return flat[:: step | 1] if step > 1 else flat


def _count_non_finite(path: Path, raw: np.ndarray) -> None:
    if not np.issubdtype(raw.dtype, np.floating):
        return
    n_nan, n_inf = int(np.isnan(raw).sum()), int(np.isinf(raw).sum())
    found = [f"{n} {kind}" for n, kind in ((n_nan, "NaN"), (n_inf, "Inf")) if n]
    if found:
        raise InvalidInputError(path, f"contains {' and '.join(found)} voxels")


def _ct_statistics(path: Path, hu: np.ndarray, allow_non_ct: bool) -> tuple[dict[float, float], float]:
    """Percentiles of the in-scan voxels and the padding fraction; refuses non-CT intensities unless allowed."""
    rules = CT_RULES
    inside = hu[hu >= rules["padding_below_hu"]]
    padding = 1.0 - inside.size / max(hu.size, 1)
    if inside.size == 0:
        if allow_non_ct:
            return {}, padding
        raise InvalidInputError(
            path, f"intensities do not look like CT in HU (all voxels below {rules['padding_below_hu']:g})"
        )
    pct = dict(zip(PERCENTILES, (float(v) for v in np.percentile(inside, PERCENTILES))))
    in_range = float(np.mean((inside >= rules["range_low_hu"]) & (inside <= rules["range_high_hu"])))
    looks_ct = (
        pct[1.0] <= rules["air_p1_max_hu"]
        and pct[99.0] >= rules["tissue_p99_min_hu"]
        and in_range >= rules["range_min_fraction"]
    )
    logger.debug("%s: HU percentiles %s, padding %.3f, in range %.4f", path, pct, padding, in_range)
    if not looks_ct and not allow_non_ct:
        raise InvalidInputError(
            path,
            f"intensities do not look like CT in HU (1st percentile {pct[1.0]:g}, 99th {pct[99.0]:g}, "
            f"{in_range:.0%} within [{rules['range_low_hu']:g}, {rules['range_high_hu']:g}]; a CT has air near "
            "-1000 HU: an MR image, or a CT without its rescale intercept? allow_non_ct=True overrides)",
        )
    return pct, padding


def check_image_file(
    path: str | PathLike, *, allow_non_ct: bool = False, min_slices: int = 1, max_spacing_mm: float = 20.0
) -> ImageInfo:
    """Check one CT volume (NIfTI, NRRD/MHA/MHD file, or a folder holding one DICOM series) before loading it.

    Header checks first (file exists and is not empty, readable header, 3D or 4D with a singleton 4th axis, spacing
    in ``(0, max_spacing_mm]`` mm, at least ``min_slices`` axial slices), then the voxels, read once: no NaN/Inf
    and, unless ``allow_non_ct``, intensities that look like CT in HU (see :data:`CT_RULES`).

    Args:
        path: the image file or DICOM-series folder.
        allow_non_ct: accept intensities that fail the CT heuristic (e.g. MR, or a CT cropped with no air in it).
        min_slices: fewest axial slices accepted, e.g. the network's slice-stack depth. A caller that would rather
            pad a thin volume (e.g. ``SpatialPadd``) passes ``min_slices=1`` and pads itself.
        max_spacing_mm: largest voxel size accepted along any axis, in mm.

    Returns:
        the :class:`ImageInfo` of the volume (shape, spacing, RAS affine, HU percentiles).

    Raises:
        InvalidInputError: naming the file and the problem.
    """
    vol = open_volume(path)
    header = _info(vol, max_spacing_mm)
    if header.num_slices < min_slices:
        raise InvalidInputError(vol.path, f"has {header.num_slices} slices, the network needs at least {min_slices}")
    raw, slope, inter = vol.read()
    _count_non_finite(vol.path, raw)
    hu = _sample(raw).astype(np.float64) * slope + inter
    pct, padding = _ct_statistics(vol.path, hu, allow_non_ct)
    return _info(vol, max_spacing_mm, hu_percentiles=pct, padding_fraction=padding)


def _affines_match(a: np.ndarray, b: np.ndarray) -> bool:
    spacing_a, spacing_b = np.linalg.norm(a[:3, :3], axis=0), np.linalg.norm(b[:3, :3], axis=0)
    return (
        np.allclose(a[:3, 3], b[:3, 3], rtol=0.0, atol=AFFINE_ATOL_MM)
        and np.allclose(spacing_a, spacing_b, rtol=0.0, atol=AFFINE_ATOL_MM)
        and np.allclose(a[:3, :3] / spacing_a, b[:3, :3] / spacing_b, rtol=0.0, atol=DIRECTION_ATOL)
    )


def _affine_text(affine: np.ndarray) -> str:
    return "[" + "; ".join(", ".join(f"{v:.4g}" for v in row) for row in affine[:3]) + "]"


def check_label_file(
    path: str | PathLike, image_info: ImageInfo | None = None, *, max_spacing_mm: float = 20.0
) -> ImageInfo:
    """Check a label volume: 3D, integer values in {0, 1, 2}, and (given ``image_info``) on the image's grid.

    The grids are compared after reorientation to RAS, as the pipeline's ``Orientationd`` will do, so a label stored
    in another axis order (e.g. LAS for an LPS-read DICOM) passes when it covers the same voxels. Tolerances:
    :data:`AFFINE_ATOL_MM` on origin and spacing, :data:`DIRECTION_ATOL` on direction cosines.

    Args:
        path: the label file (or DICOM folder).
        image_info: the image's :class:`ImageInfo`; when given, shape and affine must match it.
        max_spacing_mm: largest voxel size accepted, in mm.

    Returns:
        the label's :class:`ImageInfo`, with ``label_values`` set and empty ``hu_percentiles``.

    Raises:
        InvalidInputError: naming the label file (and the image file for a grid mismatch) and the problem.
    """
    vol = open_volume(path)
    header = _info(vol, max_spacing_mm)
    if image_info is not None:
        label_grid = _canonical(header.shape, vol.affine)
        image_grid = _canonical(image_info.shape, image_info.affine)
        if label_grid[0] != image_grid[0]:
            shapes = f"label shape {_fmt(header.shape)} does not match image shape {_fmt(image_info.shape)}"
            raise InvalidInputError(vol.path, f"{shapes} of {image_info.path}")
        if not _affines_match(label_grid[1], image_grid[1]):
            raise InvalidInputError(
                vol.path,
                f"label affine {_affine_text(vol.affine)} does not match image affine "
                f"{_affine_text(image_info.affine)} of {image_info.path}",
            )
    raw, slope, inter = vol.read()
    values = raw if (slope, inter) == (1.0, 0.0) else raw * slope + inter
    integral = np.issubdtype(values.dtype, np.integer)
    if not integral and not np.array_equal(values, np.round(values)):  # NaN fails too
        fractional = values[values != np.round(values)]
        raise InvalidInputError(vol.path, f"non-integer label values (e.g. {float(fractional.flat[0]):g})")
    if values.min() < min(LABEL_VALUES) or values.max() > max(LABEL_VALUES):
        unique = np.unique(values)  # sorting every voxel only on the error path
    else:
        unique = np.array([v for v in LABEL_VALUES if (values == v).any()])
    outside = sorted({int(v) for v in unique} - set(LABEL_VALUES))
    if outside:
        shown = ", ".join(str(v) for v in outside[:10]) + (", ..." if len(outside) > 10 else "")
        raise InvalidInputError(vol.path, f"label values {{{shown}}} outside {{0, 1, 2}}")
    return _info(vol, max_spacing_mm, label_values=tuple(int(v) for v in unique))


def check_case(
    image_path: str | PathLike, label_path: str | PathLike | None = None, **kwargs: float | bool | int
) -> ImageInfo:
    """:func:`check_image_file` on the image (``kwargs`` passed on), then :func:`check_label_file` against it.

    Returns:
        the image's :class:`ImageInfo`.
    """
    info = check_image_file(image_path, **kwargs)  # type: ignore[arg-type]
    if label_path is not None:
        check_label_file(label_path, info, max_spacing_mm=float(kwargs.get("max_spacing_mm", 20.0)))
    return info
