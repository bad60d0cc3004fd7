"""Synthetic abdominal CT phantoms with liver and liver-tumour labels, in the LiTS file layout.

A phantom is built on a physical millimetre grid: an adult abdomen (see :mod:`.phantom_anatomy`) is
scaled by ``size / 512`` so that it fills a ``size``-voxel matrix as a LiTS case fills 512, sampled at
the case's spacing, given partial-volume blur and noise, then stored in one of the axis orientations
scanners write (``RAS``, ``LAS``, ``LPS``, ``LPI``) with the matching affine. The same seed gives the
same anatomy in world space whatever the spacing or orientation.

Labels follow LiTS: 0 background, 1 liver (parenchyma and its vessels), 2 tumour. World coordinates
are RAS+ as in NIfTI (+x towards the patient's right), so the liver lies at larger x than the body's
centre whatever the stored orientation.

Example::

    case = make_phantom(seed=3, size=128)
    case.image.shape, case.image.dtype   # (128, 128, Z) int16 HU
    write_phantom_dataset("data/phantoms", num_cases=8)  # volume-N.nii.gz + segmentation-N.nii.gz
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from . import phantom_anatomy as anatomy
from .phantom_anatomy import (
    LIVER_TISSUES,
    NOMINAL_HU,
    TEXTURE_HU,
    TISSUES,
    TUMOR_TISSUES,
    Canvas,
    Landmarks,
    ellipsoid,
    organ_rng,
    rotation,
    segment_tube,
)

__all__ = [
    "NOMINAL_HU",
    "ORIENTATIONS",
    "PhantomCase",
    "case_seed",
    "make_phantom",
    "save_preview_png",
    "write_phantom_dataset",
]

logger = logging.getLogger(__name__)

ORIENTATIONS: tuple[str, ...] = ("RAS", "LAS", "LPS", "LPI")  # axis codes as scanners and converters write them
SLICE_SPACINGS: tuple[float, ...] = (0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)  # mm, LiTS-like
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
    """

    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    tumors: list[dict]
    orientation: str = "RAS"
    seed: int = 0
    masks: dict[str, np.ndarray] | None = None


def case_seed(seed: int, index: int) -> int:
    """The seed of case ``index`` of a dataset made with ``seed``: independent streams per case."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


# ----------------------------------------------------------------------------------------------- liver


def _liver_lobes(lm: Landmarks, seed: int) -> list[dict]:
    """Right, left-lateral, medial and caudate lobes (+ sometimes a Riedel tip) as ellipsoids (nominal mm),
    shaped by the cavity and scaled to 1.6-2.4 L before clipping (about 1.1-1.8 L after)."""
    rng = organ_rng(seed, "liver")
    a, b, p = lm.cavity
    lobes = [
        ((0.5 * a, -0.05 * p, -72.0), (0.42 * a, 0.78 * (b + p) / 2, 75.0), rng.uniform(-10, 10)),
        ((-0.2 * a, 0.45 * b, -45.0), (0.4 * a, 0.3 * b, 35.0), rng.uniform(5, 25)),
        ((0.12 * a, 0.4 * b, -55.0), (0.28 * a, 0.45 * b, 45.0), 0.0),
        ((0.05 * a, lm.ivc[1] + 12.0, -40.0), (15.0, 15.0, 28.0), 0.0),
    ]
    if rng.random() < 0.6:
        lobes.append(((0.6 * a, 0.05 * b, -140.0), (0.25 * a, 0.35 * b, 35.0), 0.0))
    semis = [np.array(semi) * rng.uniform(0.92, 1.08, 3) for _, semi, _ in lobes]
    volume_ml = sum(4.0 / 3.0 * np.pi * np.prod(semi) for semi in semis) / 1000.0
    k = float(np.clip((rng.uniform(1600, 2400) / volume_ml) ** (1 / 3), 0.85, 1.3))
    return [
        {"centre": np.array(centre), "semi": semi * k, "rot": rotation(yaw=yaw)}
        for (centre, _, yaw), semi in zip(lobes, semis)
    ]


def _paint_gallbladder(cv: Canvas, lm: Landmarks, seed: int) -> dict | None:
    """A fluid-filled gallbladder under the medial lobe (absent after cholecystectomy); its ellipsoid."""
    rng = organ_rng(seed, "gallbladder")
    if rng.random() < 0.15:
        return None
    a, b = lm.cavity[0], lm.cavity[1]
    gb = {
        "centre": np.array([0.25 * a, 0.42 * b, -rng.uniform(95, 110)]),
        "semi": rng.uniform((12, 12, 28), (17, 17, 38)),
        "rot": rotation(pitch=rng.uniform(15, 35)),
    }
    hit = ellipsoid(cv, gb["centre"], gb["semi"], gb["rot"])
    if hit is not None:
        sl, q, _ = hit
        cv.paint(sl, (q <= 1) & cv.cavity[sl], "gallbladder")
    return gb


def _paint_hepatic_vessels(cv: Canvas, lm: Landmarks, seed: int) -> None:
    """Portal-vein tree from the hilum and three hepatic veins converging on the IVC, inside the liver only."""
    rng = organ_rng(seed, "hepatic_vessels")
    a, b, p = lm.cavity

    def jit(*point: float) -> np.ndarray:
        return np.array(point) + rng.normal(0.0, 6.0, 3)

    hilum, fork = jit(0.2 * a, 0.15 * b, -95), jit(0.25 * a, 0.1 * b, -75)
    right, left = jit(0.55 * a, 0.0, -70), jit(-0.05 * a, 0.35 * b, -55)
    top = np.array([lm.ivc[0], lm.ivc[1], -15.0])
    tree = [(hilum, fork, 7, 6), (fork, right, 6, 5), (fork, left, 5, 4)]
    tree += [(right, jit(0.8 * a, 0.25 * b, -50), 4, 2), (right, jit(0.75 * a, -0.35 * p, -85), 4, 2)]
    tree += [(right, jit(0.6 * a, 0.1 * b, -115), 3.5, 2), (left, jit(-0.35 * a, 0.5 * b, -45), 3.5, 2)]
    tree += [(left, jit(0.1 * a, 0.6 * b, -70), 3, 2)]
    ends = ((0.8 * a, 0.05 * b, -40), (0.3 * a, 0.55 * b, -50), (-0.25 * a, 0.45 * b, -35))
    tree += [(top, jit(*end), 6, 2.5) for end in ends]
    for p0, p1, r0, r1 in tree:
        hit = segment_tube(cv, p0, p1, r0, r1)
        if hit is not None:
            cv.paint(hit[0], hit[1], "hepatic_vessels", only_on=("liver",))


def _tumour_fits(lm: Landmarks, c: np.ndarray, r: float, keep_out: list[dict]) -> bool:
    """Whether a ball (centre ``c``, radius ``r``) lies inside the cavity and below the dome, and misses
    every ``keep_out`` ellipsoid (it does if ``c`` lies outside the ellipsoid grown by ``r``)."""
    a, b_ant, b_post = lm.cavity
    shrink = (1.0 - sum(amp for amp, _ in lm.harmonics)) * (1.0 - lm.waist[0])
    b = b_ant if c[1] - r > 0 else b_post if c[1] + r < 0 else min(b_ant, b_post)
    if ((abs(c[0]) + r) / a) ** 2 + ((abs(c[1]) + r) / b) ** 2 > shrink**2:
        return False
    if c[2] + r > lm.dome_z_lower_bound(c[0], c[1], r) - 2.0:
        return False
    return all(np.sum(((e["rot"].T @ (c - e["centre"])) / (e["semi"] + r)) ** 2) > 1.0 for e in keep_out)


def _place_tumours(lm: Landmarks, lobes: list[dict], keep_out: list[dict], seed: int, min_r: float) -> list[dict]:
    """0-6 tumours, diameters log-uniform in 6-60 mm (nominal), each inside one liver lobe with a margin
    of at least ``min_r`` of liver all around (``min_r`` is also the smallest radius)."""
    rng = organ_rng(seed, "tumours")
    weights = np.array([np.prod(lobe["semi"]) for lobe in lobes])
    margin = max(2.0, min_r)
    tumours = []
    for _ in range(int(rng.integers(0, 7))):
        diameter = float(np.exp(rng.uniform(np.log(6.0), np.log(60.0))))
        kind = "hypo" if rng.random() < 0.7 else "hyper"
        semi_frac, rot = rng.uniform(0.8, 1.0, 3), rotation(*rng.uniform(0, 180, 3))
        for attempt in range(120):
            r = max(diameter / 2 * 0.9 ** (attempt // 20), min_r)  # shrink if it does not fit
            lobe = lobes[rng.choice(len(lobes), p=weights / weights.sum())]
            inner = lobe["semi"] - r - margin
            u = rng.normal(size=3)
            c = lobe["centre"] + lobe["rot"] @ (u * rng.random() ** (1 / 3) / np.linalg.norm(u) * inner)
            if np.all(inner > 0) and _tumour_fits(lm, c, r + margin, keep_out):
                tumour = {"centre": c, "radius": r, "semi": r * semi_frac, "rot": rot, "kind": kind, "d": diameter}
                tumours.append(tumour)
                break
    return tumours


def _vertical_cylinder(x: float, y: float, radius: float) -> dict:
    return {"centre": np.array([x, y, 0.0]), "semi": np.array([radius, radius, 1e6]), "rot": np.eye(3)}


def _paint_liver(cv: Canvas, lm: Landmarks, seed: int, organs: list[dict]) -> list[dict]:
    """Lobed liver (moulded around the kidneys and spleen), gallbladder, hepatic vessels and tumours."""
    lobes = _liver_lobes(lm, seed)
    for lobe in lobes:
        hit = ellipsoid(cv, lobe["centre"], lobe["semi"], lobe["rot"])
        if hit is not None:
            sl, q, (x, y, z) = hit
            inside = (q <= 1) & cv.cavity[sl] & (z < lm.dome_z(x, y))
            cv.paint(sl, inside, "liver", keep=("kidney_cortex", "kidney_medulla", "spleen"))
    gallbladder = _paint_gallbladder(cv, lm, seed)
    _paint_hepatic_vessels(cv, lm, seed)
    keep_out = [_vertical_cylinder(0.0, lm.spine_y, lm.vertebra[0] + 3.0)]
    keep_out += [_vertical_cylinder(v[0], v[1], v[2] + 3.0) for v in (lm.aorta, lm.ivc)]
    keep_out += organs + ([gallbladder] if gallbladder else [])
    tumours = _place_tumours(lm, lobes, keep_out, seed, cv.min_feature)
    for t in tumours:
        hit = ellipsoid(cv, t["centre"], t["semi"], t["rot"])
        t["num_voxels"] = 0
        if hit is not None:
            name = f"tumor_{t['kind']}"
            t["num_voxels"] = cv.paint(hit[0], hit[1] <= 1, name, only_on=(*LIVER_TISSUES, *TUMOR_TISSUES))
    return tumours


def _paint_anatomy(cv: Canvas, seed: int) -> list[dict]:
    """Paint the abdomen of case ``seed`` into ``cv.tissue`` (later structures overwrite earlier ones);
    returns the tumours (nominal mm)."""
    lm = anatomy.draw_landmarks(seed)
    anatomy.paint_body(cv, lm)
    anatomy.paint_ribs(cv, lm, seed)
    anatomy.paint_lungs_and_heart(cv, lm, seed)
    anatomy.paint_back_muscles(cv, lm)
    organs = [*anatomy.paint_kidneys(cv, lm, seed), anatomy.paint_spleen(cv, lm, seed)]
    for paint in (anatomy.paint_stomach, anatomy.paint_pancreas, anatomy.paint_bowel):
        paint(cv, lm, seed)
    tumours = _paint_liver(cv, lm, seed, organs)
    anatomy.paint_spine(cv, lm, seed)
    anatomy.paint_great_vessels(cv, lm, seed)
    return tumours


# ---------------------------------------------------------------------------------------- acquisition


@dataclass(frozen=True)
class _Acquisition:
    """How the scanner sampled the patient: world-patient mm (patient axes, origin at the right dome)."""

    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]
    orientation: str
    first_voxel: np.ndarray  # (3,) patient-frame mm of voxel (0, 0, 0) on the canonical RAS grid
    patient_origin: np.ndarray  # (3,) world mm of the patient frame's origin
    blur: tuple[float, float]  # partial-volume sigma in voxels: in-plane, through-plane
    noise_sd: float  # HU


def _check_orientation(code: str) -> str:
    code = code.upper()
    if len(code) != 3 or code[0] not in "RL" or code[1] not in "AP" or code[2] not in "SI":
        raise ValueError(f"orientation must be 3 axis codes like 'RAS' or 'LPS' (flips only), got {code!r}")
    return code


def _draw_acquisition(
    seed: int,
    lm: Landmarks,
    size: int,
    scale: float,
    num_slices: int | None,
    spacing: tuple[float, float, float] | None,
    orientation: str | None,
) -> _Acquisition:
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
    return _Acquisition(
        spacing=(dx, dy, dz),
        shape=(size, size, int(num_slices)),
        orientation=_check_orientation(code if orientation is None else orientation),
        first_voxel=first,
        patient_origin=np.round(origin, 2),
        blur=blur,
        noise_sd=float(noise_sd),
    )


def _flip_axes(code: str) -> tuple[int, ...]:
    return tuple(axis for axis in range(3) if code[axis] != "RAS"[axis])


def _affine(acq: _Acquisition) -> np.ndarray:
    """Voxel-to-world (RAS mm) of the stored array, whose canonical axes are flipped per orientation."""
    affine = np.diag([*acq.spacing, 1.0])
    affine[:3, 3] = acq.patient_origin + acq.first_voxel
    for axis in _flip_axes(acq.orientation):
        affine[:3, 3] += affine[:3, axis] * (acq.shape[axis] - 1)
        affine[:3, axis] *= -1
    return affine.astype(np.float32).astype(np.float64)


def _synthesise_hu(tissue: np.ndarray, seed: int, acq: _Acquisition) -> np.ndarray:
    """Tissue map ``(X, Y, Z)`` -> int16 HU: per-case tissue means, smooth texture, blur, noise, clip.

    The texture (zero mean, unit SD, correlated over ~4 voxels) is drawn on a grid halved in-plane and
    repeated; the partial-volume blur hides the blocks. In-place steps keep a 512² case under ~1.5 GB.
    """
    rng = organ_rng(seed, "hu")
    means = np.array([rng.uniform(*NOMINAL_HU[t]) for t in TISSUES], np.float32)
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


def _tumour_record(t: dict, acq: _Acquisition, scale: float) -> dict:
    centre = t["centre"] * scale  # patient-frame mm
    ijk = np.rint((centre - acq.first_voxel) / np.array(acq.spacing)).astype(int)
    for axis in _flip_axes(acq.orientation):
        ijk[axis] = acq.shape[axis] - 1 - ijk[axis]
    return {
        "centre_voxel": tuple(int(v) for v in np.clip(ijk, 0, np.array(acq.shape) - 1)),
        "centre_mm": tuple(float(v) for v in acq.patient_origin + centre),
        "radius_mm": float(t["radius"] * scale),
        "nominal_diameter_mm": float(max(t["d"], 2 * t["radius"])),
        "kind": t["kind"],
        "num_voxels": t["num_voxels"],
    }


def make_phantom(
    seed: int,
    size: int = 256,
    num_slices: int | None = None,
    spacing: tuple[float, float, float] | None = None,
    orientation: str | None = None,
    return_masks: bool = False,
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

    Returns:
        A :class:`PhantomCase` with ``image`` ``(size, size, Z)`` int16 HU and ``label`` uint8.
    """
    if seed < 0 or size < 16:
        raise ValueError(f"make_phantom needs seed >= 0 and size >= 16, got seed={seed}, size={size}")
    if num_slices is not None and num_slices < 1:
        raise ValueError(f"num_slices must be positive, got {num_slices}")
    if spacing is not None and (len(spacing) != 3 or min(spacing) <= 0):
        raise ValueError(f"spacing must be three positive mm values, got {spacing}")
    start = time.perf_counter()
    scale = size / LITS_MATRIX
    lm = anatomy.draw_landmarks(seed)
    acq = _draw_acquisition(seed, lm, size, scale, num_slices, spacing, orientation)
    axes = [(acq.first_voxel[a] + np.arange(acq.shape[a]) * acq.spacing[a]) / scale for a in range(3)]
    cv = Canvas(*(ax.astype(np.float32) for ax in axes), min_feature=MIN_FEATURE_MM / scale)
    tumours = _paint_anatomy(cv, seed)

    labels_of = np.zeros(len(TISSUES), np.uint8)
    labels_of[[anatomy.TISSUE_ID[t] for t in LIVER_TISSUES]] = 1
    labels_of[[anatomy.TISSUE_ID[t] for t in TUMOR_TISSUES]] = 2
    flips = _flip_axes(acq.orientation)

    def stored(volume: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.flip(volume, flips)) if flips else volume

    masks = None
    if return_masks:
        masks = {name: stored(cv.tissue == i) for i, name in enumerate(TISSUES) if np.any(cv.tissue == i)}
    case = PhantomCase(
        image=stored(_synthesise_hu(cv.tissue, seed, acq)),
        label=stored(labels_of[cv.tissue]),
        affine=_affine(acq),
        spacing=acq.spacing,
        tumors=[_tumour_record(t, acq, scale) for t in tumours],
        orientation=acq.orientation,
        seed=seed,
        masks=masks,
    )
    logger.debug("phantom seed=%d shape=%s in %.2f s", seed, acq.shape, time.perf_counter() - start)
    return case


# ------------------------------------------------------------------------------------ files and preview


def _save_nifti(array: np.ndarray, affine: np.ndarray, path: Path, description: str) -> None:
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
    out_dir: str | os.PathLike, num_cases: int, seed: int = 0, size: int = 256, start_index: int = 0
) -> list[dict[str, str]]:
    """Write cases ``start_index … start_index + num_cases - 1`` in the LiTS layout.

    Case ``N`` is ``make_phantom(case_seed(seed, N), size)`` saved as ``volume-N.nii.gz`` (int16 HU) and
    ``segmentation-N.nii.gz`` (uint8), so writing in chunks gives the same files as writing at once.

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
        case = make_phantom(case_seed(seed, index), size=size)
        note = f"phantom seed={seed} case={index} {case.orientation}"
        image_path, label_path = out / f"volume-{index}.nii.gz", out / f"segmentation-{index}.nii.gz"
        _save_nifti(case.image, case.affine, image_path, note)
        _save_nifti(case.label, case.affine, label_path, note)
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


def _load_canonical(case_or_paths) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Image, label (RAS-ordered arrays), voxel sizes and a title from a case or its file paths."""
    import nibabel as nib
    from nibabel.orientations import apply_orientation, io_orientation

    if isinstance(case_or_paths, PhantomCase):
        image, label, affine = case_or_paths.image, case_or_paths.label, case_or_paths.affine
        title = f"phantom seed {case_or_paths.seed} ({case_or_paths.orientation})"
    else:
        if isinstance(case_or_paths, Mapping):
            image_path, label_path = case_or_paths["image"], case_or_paths.get("label")
        else:
            image_path, label_path = case_or_paths
        img = nib.load(image_path)
        image, affine, title = np.asanyarray(img.dataobj), img.affine, Path(image_path).name
        label = np.zeros(image.shape, np.uint8) if label_path is None else np.asanyarray(nib.load(label_path).dataobj)
    ornt = io_orientation(affine)
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    canonical_zooms = np.empty(3)
    canonical_zooms[ornt[:, 0].astype(int)] = zooms
    return apply_orientation(image, ornt), apply_orientation(np.asarray(label), ornt), canonical_zooms, title


def _overlay(hu: np.ndarray, label: np.ndarray, window: tuple[float, float]):
    """Greyscale HU ``(H, W)`` in ``window`` with liver in green and tumour in red, as a Pillow image."""
    from PIL import Image

    grey = np.clip((hu.astype(np.float32) - window[0]) / (window[1] - window[0]), 0, 1) * 255
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    for value, colour, alpha in ((1, (0, 220, 0), 0.35), (2, (255, 0, 0), 0.6)):
        m = label == value
        rgb[m] = (1 - alpha) * rgb[m] + alpha * np.array(colour, np.float32)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def save_preview_png(
    case_or_paths: PhantomCase | Mapping | tuple, png_path: str | os.PathLike, window: tuple[float, float] = (-160, 240)
) -> Path:
    """Save an axial slice through the liver centre beside a coronal view, label overlaid.

    Radiological convention: patient's right on the image's left, anterior (axial) / head (coronal) at
    the top; pixels resampled to square millimetres. Liver green, tumour red.

    Args:
        case_or_paths: a :class:`PhantomCase`, ``{"image": path, "label": path}`` or ``(image, label)``.
        png_path: output file. window: HU shown from black to white.
    """
    from PIL import Image, ImageDraw

    image, label, zooms, title = _load_canonical(case_or_paths)
    liver = np.argwhere(label > 0)
    i, j, k = (liver.mean(axis=0) if len(liver) else np.array(image.shape) / 2).astype(int)
    del i
    views = [
        (_overlay(image[::-1, ::-1, k].T, label[::-1, ::-1, k].T, window), zooms[1] / zooms[0]),  # axial
        (_overlay(image[::-1, j, ::-1].T, label[::-1, j, ::-1].T, window), zooms[2] / zooms[0]),  # coronal
    ]
    zoom = max(1.0, 256.0 / image.shape[0])
    panels = [
        v.resize((round(v.width * zoom), max(1, round(v.height * aspect * zoom))), Image.BILINEAR)
        for v, aspect in views
    ]
    sheet = Image.new("RGB", (sum(p.width for p in panels) + 8, max(p.height for p in panels) + 16))
    x = 0
    for panel in panels:
        sheet.paste(panel, (x, 16))
        x += panel.width + 8
    ImageDraw.Draw(sheet).text((2, 2), f"{title}: axial z={k}, coronal y={j}", fill=(255, 255, 255))
    out = Path(png_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return out
