"""The phantom's scanner: spacing, slice count, orientation and field of view drawn per case, the stored array's
affine, and the HU image synthesised from the tissue map (tissue means, texture, partial-volume blur, noise)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .geometry import Landmarks, organ_rng
from .tissues import TEXTURE_HU, TISSUES, hu_range

__all__ = [
    "ORIENTATIONS",
    "SLICE_SPACINGS",
    "Acquisition",
    "check_orientation",
    "draw_acquisition",
    "flip_axes",
    "stored_affine",
    "synthesise_hu",
    "tumour_record",
]

ORIENTATIONS: tuple[str, ...] = ("RAS", "LAS", "LPS", "LPI")  # axis codes as scanners and converters write them
SLICE_SPACINGS: tuple[float, ...] = (0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)  # mm, LiTS-like


@dataclass(frozen=True)
class Acquisition:
    """How the scanner sampled the patient: world-patient mm (patient axes, origin at the right dome)."""

    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]
    orientation: str
    first_voxel: np.ndarray  # (3,) patient-frame mm of voxel (0, 0, 0) on the canonical RAS grid
    patient_origin: np.ndarray  # (3,) world mm of the patient frame's origin
    blur: tuple[float, float]  # partial-volume sigma in voxels: in-plane, through-plane
    noise_sd: float  # HU


def check_orientation(code: str) -> str:
    code = code.upper()
    if len(code) != 3 or code[0] not in "RL" or code[1] not in "AP" or code[2] not in "SI":
        raise ValueError(f"orientation must be 3 axis codes like 'RAS' or 'LPS' (flips only), got {code!r}")
    return code


def draw_acquisition(
    seed: int,
    lm: Landmarks,
    size: int,
    scale: float,
    num_slices: int | None,
    spacing: tuple[float, float, float] | None,
    orientation: str | None,
) -> Acquisition:
    """Draw spacing, slice count, orientation, field of view and image quality; arguments override draws.

    Every draw is made whatever the overrides, so fixing one setting leaves the others unchanged.
    """
    rng = organ_rng(seed, "acquisition")
    offset = rng.uniform(-0.03, 0.03, 2)  # patient off-centre, fraction of the field of view
    half_width = lm.outline_bound() * lm.skin[0] * scale + 2.0  # mm, widest half of the body
    dx_min = min(max(0.55, 2.0 * half_width / (size * 0.94)), 1.0)
    dx = rng.uniform(dx_min, 1.0)
    weights = np.array([1.0, 1.0, 1.5, 0.5, 1.0, 1.0, 1.0, 0.5, 0.5, 2.0])
    dz = float(rng.choice(SLICE_SPACINGS, p=weights / weights.sum()))
    code = ORIENTATIONS[int(rng.integers(len(ORIENTATIONS)))]
    lung_margin, extent = rng.uniform(20, 40), rng.uniform(200, 300)  # nominal mm above the dome; covered z
    origin = np.array([rng.uniform(-15, 15), rng.uniform(-40, 40), rng.uniform(-600, 100)])
    blur, noise_sd = (rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0)), rng.uniform(10, 20)

    dx, dy, dz = (round(dx, 4), round(dx, 4), dz) if spacing is None else (float(v) for v in spacing)
    if num_slices is None:
        num_slices = int(np.clip(np.ceil(extent * scale / dz), 8, max(16, size // 2)))
    y_centre = 0.5 * (lm.skin[1] - lm.skin[2]) * scale
    first = np.array(
        [
            offset[0] * size * dx - 0.5 * (size - 1) * dx,
            y_centre + offset[1] * size * dy - 0.5 * (size - 1) * dy,
            lung_margin * scale - (num_slices - 1) * dz,
        ]
    )
    return Acquisition(
        spacing=(dx, dy, dz),
        shape=(size, size, int(num_slices)),
        orientation=check_orientation(code if orientation is None else orientation),
        first_voxel=first,
        patient_origin=np.round(origin, 2),
        blur=blur,
        noise_sd=float(noise_sd),
    )


def flip_axes(code: str) -> tuple[int, ...]:
    return tuple(axis for axis in range(3) if code[axis] != "RAS"[axis])


def stored_affine(acq: Acquisition) -> np.ndarray:
    """Voxel-to-world (RAS mm) of the stored array, whose canonical axes are flipped per orientation."""
    affine = np.diag([*acq.spacing, 1.0])
    affine[:3, 3] = acq.patient_origin + acq.first_voxel
    for axis in flip_axes(acq.orientation):
        affine[:3, 3] += affine[:3, axis] * (acq.shape[axis] - 1)
        affine[:3, axis] *= -1
    return affine.astype(np.float32).astype(np.float64)


def synthesise_hu(tissue: np.ndarray, seed: int, acq: Acquisition, enhancement: float = 0.0) -> np.ndarray:
    """Tissue map ``(X, Y, Z)`` -> int16 HU: per-case tissue means (at contrast ``enhancement``, see
    :func:`~.tissues.hu_range`), smooth texture, blur, noise, clip.

    The texture (zero mean, unit SD, correlated over ~4 voxels) is drawn on a grid halved in-plane and
    repeated; the partial-volume blur hides the blocks. In-place steps keep a 512² case under ~1.5 GB.
    """
    rng = organ_rng(seed, "hu")
    means = np.array([rng.uniform(*hu_range(t, enhancement)) for t in TISSUES], np.float32)
    texture_sd = np.array([TEXTURE_HU[t] for t in TISSUES], np.float32)
    noise = organ_rng(seed, "noise")
    (nx, ny, nz), (dx, _, dz) = tissue.shape, acq.spacing
    coarse = noise.standard_normal(((nx + 1) // 2, (ny + 1) // 2, nz), np.float32)
    coarse = gaussian_filter(coarse, (1.0, 1.0, max(0.5, 2.0 * dx / dz)), truncate=2.0)
    coarse /= max(float(coarse.std()), 1e-6)
    hu = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[:nx, :ny]
    hu *= texture_sd[tissue]
    hu += means[tissue]
    hu = gaussian_filter(hu, (acq.blur[0], acq.blur[0], acq.blur[1]), truncate=3.0)
    grain = noise.standard_normal(tissue.shape, np.float32)
    grain *= np.float32(acq.noise_sd)
    hu += grain
    del grain
    np.rint(hu, out=hu)
    np.clip(hu, -1024, 3071, out=hu)
    return hu.astype(np.int16)


def tumour_record(t: dict, acq: Acquisition, scale: float) -> dict:
    centre = t["centre"] * scale  # patient-frame mm
    ijk = np.rint((centre - acq.first_voxel) / np.array(acq.spacing)).astype(int)
    for axis in flip_axes(acq.orientation):
        ijk[axis] = acq.shape[axis] - 1 - ijk[axis]
    return {
        "centre_voxel": tuple(int(v) for v in np.clip(ijk, 0, np.array(acq.shape) - 1)),
        "centre_mm": tuple(float(v) for v in acq.patient_origin + centre),
        "radius_mm": float(t["radius"] * scale),
        "nominal_diameter_mm": float(max(t["d"], 2 * t["radius"])),
        "kind": t["kind"],
        "num_voxels": t["num_voxels"],
    }
