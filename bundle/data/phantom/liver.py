"""The phantom's liver: lobes moulded around the kidneys and spleen, gallbladder, portal and hepatic veins, and
0-6 tumours placed inside the lobes clear of other organs (nominal mm, see :mod:`.geometry`)."""

from __future__ import annotations

import numpy as np

from .geometry import Canvas, Landmarks, ellipsoid, organ_rng, rotation, segment_tube
from .tissues import LIVER_TISSUES, TUMOR_TISSUES

__all__ = ["paint_liver"]


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


def paint_liver(cv: Canvas, lm: Landmarks, seed: int, organs: list[dict]) -> list[dict]:
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
