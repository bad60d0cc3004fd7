"""Anatomy of the CT phantom: one small function per structure, each painting tissue ids into a map, in nominal
patient millimetres (:mod:`.geometry`).

Painting order matters (later structures overwrite earlier ones); :func:`paint_abdomen` fixes it
and adds the liver, its vessels and tumours (:mod:`.liver`). Random draws come from one generator per structure,
keyed by the case seed and the structure's name, so the anatomy never depends on the voxel grid and
adding a structure does not change the others.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .geometry import Canvas, Landmarks, draw_landmarks, ellipsoid, organ_rng, rotation, segment_tube
from .liver import paint_liver
from .tissues import TISSUE_ID

__all__ = [
    "paint_abdomen",
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
]


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


def paint_abdomen(cv: Canvas, seed: int) -> list[dict]:
    """Paint the abdomen of case ``seed`` into ``cv.tissue`` (later structures overwrite earlier ones);
    returns the tumours (nominal mm)."""
    lm = draw_landmarks(seed)
    paint_body(cv, lm)
    paint_ribs(cv, lm, seed)
    paint_lungs_and_heart(cv, lm, seed)
    paint_back_muscles(cv, lm)
    organs = [*paint_kidneys(cv, lm, seed), paint_spleen(cv, lm, seed)]
    for paint in (paint_stomach, paint_pancreas, paint_bowel):
        paint(cv, lm, seed)
    tumours = paint_liver(cv, lm, seed, organs)
    paint_spine(cv, lm, seed)
    paint_great_vessels(cv, lm, seed)
    return tumours
