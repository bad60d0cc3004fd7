"""The phantom's geometry in nominal patient millimetres: the canvas painted into, shapes (ellipsoids, tapered
tubes, rotations), one random generator per structure, and the patient's landmarks.

Nominal patient millimetres: an adult of LiTS size (body 280-350 mm wide) in RAS axes, x towards the patient's
**right**, y **anterior**, z **superior**, with x = y = 0 the body's axis and z = 0 the top of the right diaphragm
dome. :func:`~bundle.data.phantom.make_phantom` scales this adult to the requested matrix size and places it in the
scanner's world frame.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from .tissues import TISSUE_ID

__all__ = [
    "Canvas",
    "Coords",
    "Landmarks",
    "Region",
    "draw_landmarks",
    "ellipsoid",
    "organ_rng",
    "rotation",
    "segment_tube",
]


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
