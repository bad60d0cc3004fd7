"""Anatomy of the CT phantom: one small function per structure, each painting tissue ids into a map.

Everything here is in *nominal patient millimetres*: an adult of LiTS size (body 280-350 mm wide) in
RAS axes, x towards the patient's **right**, y **anterior**, z **superior**, with x = y = 0 the body's
axis and z = 0 the top of the right diaphragm dome. :func:`bundle.data.phantom.make_phantom` scales
this adult to the requested matrix size and places it in the scanner's world frame.

Painting order matters (later structures overwrite earlier ones); ``bundle.data.phantom`` fixes it
and adds the liver, its vessels and tumours. Random draws come from one generator per structure,
keyed by the case seed and the structure's name, so the anatomy never depends on the voxel grid and
adding a structure does not change the others.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "LIVER_TISSUES",
    "NOMINAL_HU",
    "TEXTURE_HU",
    "TISSUES",
    "TISSUE_ID",
    "TUMOR_TISSUES",
    "Canvas",
    "Landmarks",
    "draw_landmarks",
    "ellipsoid",
    "organ_rng",
    "paint_back_muscles",
    "paint_body",
    "paint_bowel",
    "paint_great_vessels",
    "paint_kidneys",
    "paint_lungs_and_heart",
    "paint_pancreas",
    "paint_ribs",
    "paint_spine",
    "paint_spleen",
    "paint_stomach",
    "rotation",
    "segment_tube",
]

# Per-case mean HU of each tissue is drawn uniformly from these ranges (portal-venous phase).
# Liver, spleen, stomach wall, pancreas and muscle overlap on purpose: intensity alone cannot find the liver.
NOMINAL_HU: dict[str, tuple[float, float]] = {
    "air": (-1000.0, -1000.0),
    "lung": (-900.0, -800.0),
    "fat": (-120.0, -80.0),
    "muscle": (40.0, 60.0),
    "bone_cortical": (600.0, 1000.0),
    "bone_cancellous": (150.0, 300.0),
    "disc": (70.0, 100.0),
    "spinal_canal": (0.0, 20.0),
    "heart": (100.0, 160.0),
    "aorta": (150.0, 300.0),
    "ivc": (100.0, 160.0),
    "kidney_cortex": (110.0, 150.0),
    "kidney_medulla": (30.0, 80.0),
    "spleen": (45.0, 60.0),
    "stomach_wall": (50.0, 75.0),
    "stomach_content": (0.0, 25.0),
    "pancreas": (40.0, 60.0),
    "bowel_wall": (40.0, 70.0),
    "bowel_fluid": (0.0, 30.0),
    "bowel_gas": (-1000.0, -900.0),
    "gallbladder": (0.0, 20.0),
    "liver": (50.0, 80.0),
    "hepatic_vessels": (150.0, 200.0),
    "tumor_hypo": (10.0, 40.0),
    "tumor_hyper": (90.0, 140.0),
}
TISSUES: tuple[str, ...] = tuple(NOMINAL_HU)
TISSUE_ID: dict[str, int] = {name: i for i, name in enumerate(TISSUES)}
# Standard deviation (HU) of the smooth zero-mean texture added on top of each tissue's mean.
TEXTURE_HU: dict[str, float] = {name: 4.0 for name in TISSUES} | {
    "air": 0.0,
    "lung": 25.0,
    "fat": 8.0,
    "bone_cortical": 40.0,
    "bone_cancellous": 30.0,
    "bowel_gas": 15.0,
    "liver": 6.0,
    "tumor_hypo": 6.0,
    "tumor_hyper": 8.0,
}
LIVER_TISSUES: tuple[str, ...] = ("liver", "hepatic_vessels")
TUMOR_TISSUES: tuple[str, ...] = ("tumor_hypo", "tumor_hyper")


@dataclass
class Canvas:
    """The tissue map being painted, on a canonical grid: voxel centres in nominal mm along RAS axes.

    ``tissue`` is ``(X, Y, Z)`` uint8 (ids of :data:`TISSUES`, 0 = air); ``cavity`` marks the abdominal
    and thoracic cavity inside the muscle wall; ``min_feature`` (nominal mm) is the thinnest wall or
    radius drawn, so that thin structures survive at small matrix sizes.
    """

    x: np.ndarray  # (X,) ascending: towards the patient's right
    y: np.ndarray  # (Y,) ascending: anterior
    z: np.ndarray  # (Z,) ascending: superior
    min_feature: float
    tissue: np.ndarray = field(init=False)
    cavity: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        shape = (len(self.x), len(self.y), len(self.z))
        self.tissue = np.zeros(shape, np.uint8)
        self.cavity = np.zeros(shape, bool)

    def coords(self, sl: Region) -> Coords:
        """Open-mesh coordinates ``(X, 1, 1), (1, Y, 1), (1, 1, Z)`` of a region."""
        return self.x[sl[0]][:, None, None], self.y[sl[1]][None, :, None], self.z[sl[2]][None, None, :]

    def region(self, lo: np.ndarray, hi: np.ndarray) -> Region | None:
        """Slices of the voxels whose centres lie in the box ``[lo, hi]`` (nominal mm); None if empty."""
        sl = []
        for axis, low, high in zip((self.x, self.y, self.z), lo, hi):
            start, stop = np.searchsorted(axis, low, "left"), np.searchsorted(axis, high, "right")
            if stop <= start:
                return None
            sl.append(slice(int(start), int(stop)))
        return sl[0], sl[1], sl[2]

    def paint(
        self,
        sl: Region,
        mask: np.ndarray,
        name: str,
        only_on: tuple[str, ...] | None = None,
        keep: tuple[str, ...] = (),
    ) -> int:
        """Set ``tissue[sl][mask]`` to ``name``, only over the tissues ``only_on`` (if given) and never over
        those in ``keep``; returns the number of voxels painted."""
        view = self.tissue[sl]
        mask = np.broadcast_to(mask, view.shape)
        if only_on is not None:
            mask = mask & np.isin(view, [TISSUE_ID[t] for t in only_on])
        if keep:
            mask = mask & ~np.isin(view, [TISSUE_ID[t] for t in keep])
        view[mask] = TISSUE_ID[name]
        return int(np.count_nonzero(mask))


Region = tuple[slice, slice, slice]
Coords = tuple[np.ndarray, np.ndarray, np.ndarray]


def rotation(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """``(3, 3)`` rotation about z (yaw), then y (pitch), then x (roll), angles in degrees."""
    cz, sz = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
    cy, sy = np.cos(np.radians(pitch)), np.sin(np.radians(pitch))
    cx, sx = np.cos(np.radians(roll)), np.sin(np.radians(roll))
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    return rz @ ry @ rx


def ellipsoid(
    cv: Canvas, centre: ArrayLike, semi: ArrayLike, rot: np.ndarray | None = None, region: Region | None = None
) -> tuple[Region, np.ndarray, Coords] | None:
    """Normalised radius ``q`` (``q <= 1`` inside) of an ellipsoid whose axes are the columns of ``rot``.

    Evaluated over ``region`` or the ellipsoid's bounding box; None when that box misses the grid.
    """
    c, s = np.asarray(centre, float), np.asarray(semi, float)
    if region is None:
        half = s if rot is None else np.full(3, s.max())
        region = cv.region(c - half, c + half)
        if region is None:
            return None
    coords = cv.coords(region)
    d = [coords[k] - c[k] for k in range(3)]
    p = d if rot is None else [d[0] * rot[0, k] + d[1] * rot[1, k] + d[2] * rot[2, k] for k in range(3)]
    q = (p[0] / s[0]) ** 2 + (p[1] / s[1]) ** 2 + (p[2] / s[2]) ** 2
    return region, q, coords


def segment_tube(
    cv: Canvas, p0: ArrayLike, p1: ArrayLike, r0: float, r1: float
) -> tuple[Region, np.ndarray, np.ndarray] | None:
    """A tube along the segment ``p0 -> p1`` whose radius tapers from ``r0`` to ``r1`` (nominal mm).

    Returns the region, the inside mask and the distance to the axis; None when it misses the grid.
    """
    a, b = np.asarray(p0, float), np.asarray(p1, float)
    r0, r1 = max(r0, cv.min_feature), max(r1, cv.min_feature)
    region = cv.region(np.minimum(a, b) - max(r0, r1), np.maximum(a, b) + max(r0, r1))
    if region is None:
        return None
    coords = cv.coords(region)
    u = b - a
    d = [coords[k] - a[k] for k in range(3)]
    t = np.clip((d[0] * u[0] + d[1] * u[1] + d[2] * u[2]) / max(float(u @ u), 1e-9), 0.0, 1.0)
    dist = np.sqrt(sum((d[k] - t * u[k]) ** 2 for k in range(3)))
    return region, dist <= r0 + (r1 - r0) * t, dist


def organ_rng(seed: int, name: str) -> np.random.Generator:
    """An independent generator per (case seed, structure name)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


@dataclass(frozen=True)
class Landmarks:
    """Patient-level geometry shared by the organs (nominal mm).

    The skin, muscle and cavity outlines are ellipses with semi-axes ``(a, b_ant, b_post)`` (lateral,
    anterior, posterior), modulated by ``wobble`` harmonics in angle and ``waist`` along z.
    """

    skin: tuple[float, float, float]
    muscle_outer: tuple[float, float, float]
    cavity: tuple[float, float, float]
    harmonics: tuple[tuple[float, float], ...]  # (amplitude, phase) for angular orders 2, 3, ...
    waist: tuple[float, float]  # amplitude and phase of the outline's slow change along z
    spine_y: float  # centre of the vertebral bodies
    vertebra: tuple[float, float]  # vertebral body semi-axes (lateral, AP)
    dome_left_drop: float  # the left dome lies this much lower than the right one (at z = 0)
    dome_curvature: float  # 1/mm: the dome surface falls by curvature * distance**2
    diaphragm: float  # thickness
    aorta: tuple[float, float, float]  # centre x, centre y, radius
    ivc: tuple[float, float, float]

    def outline_bound(self) -> float:
        """Largest factor by which the wobbly outlines exceed their ellipses (>= 1)."""
        return (1.0 + sum(amp for amp, _ in self.harmonics)) * (1.0 + self.waist[0])

    def dome_z(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height (mm) of the diaphragm's lower surface above point ``(x, y)`` (broadcast)."""
        a = self.cavity[0]
        right = -self.dome_curvature * ((x - 0.42 * a) ** 2 + (y + 5.0) ** 2)
        left = -self.dome_left_drop - self.dome_curvature * ((x + 0.42 * a) ** 2 + (y + 5.0) ** 2)
        return np.maximum(right, left)

    def dome_z_lower_bound(self, x: float, y: float, r: float) -> float:
        """A lower bound of :meth:`dome_z` over the disc of radius ``r`` around ``(x, y)``."""
        a = self.cavity[0]
        d_right = np.hypot(x - 0.42 * a, y + 5.0) + r
        d_left = np.hypot(x + 0.42 * a, y + 5.0) + r
        return float(max(-self.dome_curvature * d_right**2, -self.dome_left_drop - self.dome_curvature * d_left**2))


def draw_landmarks(seed: int) -> Landmarks:
    """Draw one patient's body habitus, spine position, diaphragm and great vessels (nominal mm)."""
    rng = organ_rng(seed, "landmarks")
    a, b_ant = rng.uniform(140, 175), rng.uniform(100, 125)
    b_post = b_ant * rng.uniform(0.8, 0.9)
    fat = rng.uniform(8, 30)
    fat_ant, fat_lat, fat_post = fat * rng.uniform(1.0, 1.4), fat, fat * rng.uniform(0.5, 0.8)
    wall = rng.uniform(9, 14)
    muscle_outer = (a - fat_lat, b_ant - fat_ant, b_post - fat_post)
    cavity = (muscle_outer[0] - wall, muscle_outer[1] - wall, muscle_outer[2] - wall)
    spine_y = -b_post + fat_post + rng.uniform(48, 58)
    vertebra = (rng.uniform(20, 25), rng.uniform(15, 18))
    aorta_r = rng.uniform(10, 13)
    ivc_r = rng.uniform(10, 13)
    return Landmarks(
        skin=(a, b_ant, b_post),
        muscle_outer=muscle_outer,
        cavity=cavity,
        harmonics=tuple((rng.uniform(0, 0.015), rng.uniform(0, 2 * np.pi)) for _ in range(4)),
        waist=(rng.uniform(0.01, 0.04), rng.uniform(0, 2 * np.pi)),
        spine_y=spine_y,
        vertebra=vertebra,
        dome_left_drop=rng.uniform(8, 22),
        dome_curvature=rng.uniform(0.004, 0.007),
        diaphragm=rng.uniform(3, 5),
        aorta=(-rng.uniform(12, 20), spine_y + vertebra[1] + aorta_r + rng.uniform(1, 4), aorta_r),
        ivc=(rng.uniform(20, 28), spine_y + vertebra[1] + ivc_r + rng.uniform(4, 10), ivc_r),
    )


def _outline_inside(cv: Canvas, lm: Landmarks, semi: tuple[float, float, float], grow: float = 1.0) -> np.ndarray:
    """``(X, Y, Z)`` bool: inside the wobbly ellipse ``semi`` (scaled by ``grow``) on every slice."""
    x, y = cv.x[:, None], cv.y[None, :]
    b = np.where(y > 0, semi[1], semi[2])
    theta = np.arctan2(y / b, x / semi[0])
    wobble = 1.0 + sum(amp * np.cos(k * theta + ph) for k, (amp, ph) in enumerate(lm.harmonics, start=2))
    rho = np.sqrt((x / semi[0]) ** 2 + (y / b) ** 2) / wobble  # (X, Y)
    waist = grow * (1.0 + lm.waist[0] * np.sin(cv.z / 150.0 + lm.waist[1]))  # (Z,)
    return rho[:, :, None] <= waist[None, None, :]


def paint_body(cv: Canvas, lm: Landmarks) -> None:
    """Skin outline filled with subcutaneous fat, the abdominal-wall muscle ring and the cavity (fat)."""
    cv.tissue[_outline_inside(cv, lm, lm.skin)] = TISSUE_ID["fat"]
    cv.tissue[_outline_inside(cv, lm, lm.muscle_outer)] = TISSUE_ID["muscle"]
    cv.cavity = _outline_inside(cv, lm, lm.cavity)
    cv.tissue[cv.cavity] = TISSUE_ID["fat"]


def paint_ribs(cv: Canvas, lm: Landmarks, seed: int) -> None:
    """Oblique ribs (descending anteriorly) just outside the cavity, from the top down to the costal margin."""
    rng = organ_rng(seed, "ribs")
    period, height, slope = rng.uniform(26, 32), rng.uniform(8, 11), rng.uniform(55, 80)
    thickness = max(rng.uniform(6, 9), cv.min_feature)
    phase = rng.uniform(0, period)
    ring = _outline_inside(cv, lm, lm.cavity, grow=1.0 + thickness / lm.cavity[0]) & ~cv.cavity
    i, j, k = np.nonzero(ring)  # evaluate the ribs on the thin ring only
    psi = np.abs(np.arctan2(cv.x[i], -cv.y[j]))  # 0 at the spine, pi at the sternum
    z = cv.z[k]
    band = np.mod(z + slope * psi + phase, period) < height
    lowest = -130.0 + 55.0 * psi / np.pi  # floating ribs reach lower posteriorly
    keep = band & (psi > 0.35) & (psi < 2.5) & (z > lowest)
    cv.tissue[i[keep], j[keep], k[keep]] = TISSUE_ID["bone_cortical"]


def paint_lungs_and_heart(cv: Canvas, lm: Landmarks, seed: int) -> None:
    """Lung bases above the diaphragm domes, and the heart's lower part resting on the left dome."""
    rng = organ_rng(seed, "heart")
    height = cv.z[None, None, :] - lm.dome_z(cv.x[:, None], cv.y[None, :])[:, :, None]
    cv.tissue[cv.cavity & (height > 0)] = TISSUE_ID["muscle"]  # the diaphragm
    cv.tissue[cv.cavity & (height > lm.diaphragm)] = TISSUE_ID["lung"]
    a, b = lm.cavity[0], lm.cavity[1]
    centre = (-0.15 * a + rng.uniform(-8, 8), 0.35 * b, -lm.dome_left_drop + rng.uniform(25, 40))
    hit = ellipsoid(cv, centre, (rng.uniform(50, 65), rng.uniform(40, 50), 45.0), rotation(yaw=30.0))
    if hit is not None:
        sl, q, (x, y, z) = hit
        cv.paint(sl, (q <= 1) & (z > lm.dome_z(x, y) + lm.diaphragm) & cv.cavity[sl], "heart")


def paint_back_muscles(cv: Canvas, lm: Landmarks) -> None:
    """Paraspinal muscles behind the spine (all slices) and psoas muscles beside it (lower abdomen)."""
    (va, vb), sy = lm.vertebra, lm.spine_y
    x, y, z = cv.x[:, None, None], cv.y[None, :, None], cv.z[None, None, :]
    under_fat = _outline_inside(cv, lm, lm.muscle_outer)
    for side in (-1.0, 1.0):
        para = ((x - side * 27.0) / 24.0) ** 2 + ((y - sy + vb + 30.0) / 26.0) ** 2 <= 1.0
        cv.tissue[para & under_fat] = TISSUE_ID["muscle"]
        r = np.clip(4.0 + 0.18 * (-125.0 - z), 0.0, 24.0)
        psoas = (x - side * (va + r * 0.8)) ** 2 + (y - sy) ** 2 <= r**2
        cv.tissue[psoas & cv.cavity] = TISSUE_ID["muscle"]


def paint_spine(cv: Canvas, lm: Landmarks, seed: int) -> None:
    """Vertebral bodies (cortical shell, cancellous core), discs, spinal canal and posterior arch."""
    rng = organ_rng(seed, "spine")
    (va, vb), sy = lm.vertebra, lm.spine_y
    period, disc_h, phase = rng.uniform(32, 38), rng.uniform(7, 10), rng.uniform(0, 40)
    cortex, thin = max(2.5, cv.min_feature), max(4.0, cv.min_feature)
    x, y, z = cv.x[:, None, None], cv.y[None, :, None], cv.z[None, None, :]
    body = (x / va) ** 2 + ((y - sy) / vb) ** 2 <= 1.0
    core = (x / (va - cortex)) ** 2 + ((y - sy) / (vb - cortex)) ** 2 <= 1.0
    level = np.mod(z + phase, period)  # position within one vertebra + disc
    disc = level < disc_h
    canal_r = rng.uniform(7, 9)
    canal_y = sy - vb - canal_r - 1.0
    d_canal = np.hypot(x, y - canal_y)
    spinous = (np.abs(x) <= thin) & (y < canal_y) & (y > canal_y - canal_r - 35.0)
    arch = ((d_canal <= canal_r + max(5.0, cv.min_feature)) | spinous) & _outline_inside(cv, lm, lm.muscle_outer)
    mid = (level > disc_h + 0.35 * (period - disc_h)) & (level < disc_h + 0.6 * (period - disc_h))
    transverse = (np.abs(y - canal_y - 3.0) <= thin) & (np.abs(x) <= va + 12.0) & mid
    shape = cv.tissue.shape
    cv.tissue[np.broadcast_to(arch | transverse, shape)] = TISSUE_ID["bone_cortical"]
    cv.tissue[np.broadcast_to(d_canal <= canal_r, shape)] = TISSUE_ID["spinal_canal"]
    cv.tissue[np.broadcast_to(body & ~disc, shape)] = TISSUE_ID["bone_cortical"]
    cv.tissue[np.broadcast_to(core & ~disc, shape)] = TISSUE_ID["bone_cancellous"]
    cv.tissue[np.broadcast_to(body & disc, shape)] = TISSUE_ID["disc"]


def paint_great_vessels(cv: Canvas, lm: Landmarks, seed: int) -> None:
    """Contrast-filled aorta (left of the midline, in front of the spine) and IVC (right), both
    dividing into iliac vessels below the bifurcation."""
    z_bif = -organ_rng(seed, "vessels").uniform(200, 230)
    x, y, z = cv.x[:, None, None], cv.y[None, :, None], cv.z[None, None, :]
    below = np.maximum(z_bif - z, 0.0)
    for name, (cx, cy, r) in (("aorta", lm.aorta), ("ivc", lm.ivc)):
        trunk = ((x - cx) ** 2 + (y - cy) ** 2 <= r**2) & (z >= z_bif)
        iliac_r = 0.65 * r
        spread = 0.45 * below + abs(cx)
        iliac = (
            np.minimum(np.abs(x - spread), np.abs(x + spread)) ** 2 + (y - cy + 0.2 * below) ** 2 <= iliac_r**2
        ) & (z < z_bif)
        cv.tissue[trunk | iliac] = TISSUE_ID[name]


def paint_kidneys(cv: Canvas, lm: Landmarks, seed: int) -> list[dict]:
    """Both kidneys beside the spine (the right one lower), cortex around medulla, hilum facing medially.

    Returns:
        The two kidney ellipsoids (``centre``, ``semi``, ``rot``), drawn whatever the grid covers.
    """
    rng = organ_rng(seed, "kidneys")
    va, sy = lm.vertebra[0], lm.spine_y
    kidneys = []
    for side, z_c in ((1.0, -rng.uniform(115, 135)), (-1.0, -rng.uniform(100, 120))):
        semi = np.array([rng.uniform(22, 27), rng.uniform(18, 23), rng.uniform(45, 58)])
        centre = np.array([side * (va + rng.uniform(35, 45)), sy + rng.uniform(-5, 8), z_c])
        rot = rotation(yaw=-side * rng.uniform(20, 40), roll=side * rng.uniform(5, 15))
        kidneys.append({"centre": centre, "semi": semi, "rot": rot})
        hit = ellipsoid(cv, centre, semi, rot)
        if hit is None:
            continue
        sl, q, _ = hit
        inner = ellipsoid(cv, centre, semi - max(7.0, cv.min_feature), rot, region=sl)
        sinus = ellipsoid(cv, (centre[0] - side * 0.6 * semi[0], centre[1] + 4.0, z_c), (10.0, 9.0, 22.0), rot, sl)
        cv.paint(sl, (q <= 1) & cv.cavity[sl], "kidney_cortex")
        cv.paint(sl, (inner[1] <= 1) & cv.cavity[sl], "kidney_medulla")
        cv.paint(sl, (sinus[1] <= 1) & (q <= 1), "fat")
    return kidneys


def paint_spleen(cv: Canvas, lm: Landmarks, seed: int) -> dict:
    """A crescent-shaped spleen high in the left upper quadrant, posterolateral, under the left dome.

    Returns:
        Its ellipsoid (``centre``, ``semi``, ``rot``) before the hilum is carved out.
    """
    rng = organ_rng(seed, "spleen")
    a, b = lm.cavity[0], lm.cavity[2]
    centre = np.array([-0.62 * a, -0.3 * b, -lm.dome_left_drop - rng.uniform(35, 50)])
    spleen = {
        "centre": centre,
        "semi": rng.uniform((22, 45, 45), (30, 60, 60)),
        "rot": rotation(yaw=rng.uniform(25, 45)),
    }
    hit = ellipsoid(cv, centre, spleen["semi"], spleen["rot"])
    if hit is not None:
        sl, q, (x, y, z) = hit
        hilum = ellipsoid(cv, centre + np.array([28.0, 18.0, 0.0]), (18.0, 30.0, 35.0), spleen["rot"], region=sl)[1] > 1
        inside = (q <= 1) & hilum & cv.cavity[sl] & (z < lm.dome_z(x, y))
        cv.paint(sl, inside, "spleen", keep=("kidney_cortex", "kidney_medulla"))
    return spleen


def paint_stomach(cv: Canvas, lm: Landmarks, seed: int) -> None:
    """Stomach in the left upper quadrant: enhancing wall, fluid content, gas anteriorly (patient supine)."""
    rng = organ_rng(seed, "stomach")
    a, b = lm.cavity[0], lm.cavity[1]
    centre = (-0.32 * a + rng.uniform(-8, 8), 0.3 * b, -lm.dome_left_drop - rng.uniform(50, 65))
    semi = (rng.uniform(40, 55), rng.uniform(28, 38), rng.uniform(50, 65))
    rot = rotation(yaw=rng.uniform(25, 50))
    hit = ellipsoid(cv, centre, semi, rot)
    if hit is None:
        return
    sl, q, (x, y, z) = hit
    wall = max(5.0, cv.min_feature)
    lumen = ellipsoid(cv, centre, tuple(s - wall for s in semi), rot, region=sl)[1] <= 1
    keep = cv.cavity[sl] & (z < lm.dome_z(x, y))
    gas_level = centre[1] + semi[1] * rng.uniform(0.0, 0.8)
    cv.paint(sl, (q <= 1) & keep, "stomach_wall", only_on=("fat",))
    cv.paint(sl, lumen & keep & (y <= gas_level), "stomach_content", only_on=("stomach_wall",))
    cv.paint(sl, lumen & keep & (y > gas_level), "bowel_gas", only_on=("stomach_wall",))


def paint_pancreas(cv: Canvas, lm: Landmarks, seed: int) -> None:
    """Pancreas from the head (right of the vessels) across the aorta to the tail near the splenic hilum."""
    rng = organ_rng(seed, "pancreas")
    ay, a = lm.aorta[1], lm.cavity[0]
    z0 = -rng.uniform(90, 105)
    points = [
        (lm.ivc[0] + 12.0, lm.ivc[1] + 28.0, z0 - 12.0),
        (0.0, ay + 30.0, z0),
        (-0.25 * a, ay + 22.0, z0 + 8.0),
        (-0.5 * a, ay, z0 + 14.0),
    ]
    radii = (15.0, 11.0, 10.0, 8.0)
    for p0, p1, r0, r1 in zip(points[:-1], points[1:], radii[:-1], radii[1:]):
        hit = segment_tube(cv, p0, p1, r0, r1)
        if hit is not None:
            sl, inside, _ = hit
            cv.paint(sl, inside & cv.cavity[sl], "pancreas", only_on=("fat",))


def _hollow_tube(cv: Canvas, p0: ArrayLike, p1: ArrayLike, radius: float, gas_fraction: float) -> None:
    """A bowel segment: wall, then fluid below and gas above an air-fluid level (gas anterior)."""
    wall = max(2.5, cv.min_feature)
    hit = segment_tube(cv, p0, p1, radius, radius)
    if hit is None:
        return
    sl, inside, dist = hit
    y = cv.y[sl[1]][None, :, None]
    level = 0.5 * (p0[1] + p1[1]) + radius * (1.0 - 2.0 * gas_fraction)
    lumen = (dist <= radius - wall) & cv.cavity[sl]
    cv.paint(sl, inside & cv.cavity[sl], "bowel_wall", only_on=("fat",))
    cv.paint(sl, lumen & (y <= level), "bowel_fluid", only_on=("bowel_wall",))
    cv.paint(sl, lumen & (y > level), "bowel_gas", only_on=("bowel_wall",))


def paint_bowel(cv: Canvas, lm: Landmarks, seed: int) -> None:
    """Colon framing the abdomen (gas over fluid) and small-bowel loops (mostly fluid) in the lower abdomen."""
    rng = organ_rng(seed, "bowel")
    a, b_ant, b_post = lm.cavity
    ax, ay = 0.62 * a, 0.15 * b_ant
    sag = (0.0, 0.55 * b_ant, -rng.uniform(120, 160))  # the transverse colon hangs down in the middle
    colon = [
        ((ax, -0.1 * b_post, -240.0), (ax, ay, -125.0)),  # ascending, up to the hepatic flexure
        ((ax, ay, -125.0), sag),  # transverse
        (sag, (-ax, ay, -110.0)),
        ((-ax, ay, -110.0), (-ax, -0.1 * b_post, -240.0)),  # descending, from the splenic flexure
    ]
    r_colon = rng.uniform(14, 20)
    for p0, p1 in colon:
        _hollow_tube(cv, p0, p1, r_colon * rng.uniform(0.8, 1.1), rng.uniform(0.1, 0.6))
    low, high = np.array([-0.5 * a, -0.15 * b_post, -270.0]), np.array([0.45 * a, 0.75 * b_ant, -115.0])
    for _ in range(int(rng.integers(7, 11))):  # small-bowel loops: random walks through the lower abdomen
        point = rng.uniform(low, high)
        for _ in range(int(rng.integers(5, 9))):
            nxt = np.clip(point + rng.normal(0.0, 1.0, 3) * np.array([35.0, 25.0, 30.0]), low, high)
            _hollow_tube(cv, tuple(point), tuple(nxt), rng.uniform(9, 14), rng.choice([0.0, 0.0, 0.0, 0.3]))
            point = nxt
