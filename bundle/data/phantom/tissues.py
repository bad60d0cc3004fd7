"""The phantom's tissues: their mean HU ranges, texture and which of them the liver and tumour labels cover."""

from __future__ import annotations

__all__ = [
    "LIVER_TISSUES",
    "NOMINAL_HU",
    "PORTAL_VENOUS_HU",
    "TEXTURE_HU",
    "TISSUES",
    "TISSUE_ID",
    "TUMOR_TISSUES",
    "enhancement_range",
    "hu_range",
]

# Per-case mean HU of each tissue is drawn uniformly from these ranges at enhancement 0: parenchyma close to
# unenhanced (liver 50-80 HU), vessels enhanced. Liver, spleen, stomach wall, pancreas and muscle overlap on purpose:
# intensity alone cannot find the liver.
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
# The same tissues in the portal-venous phase (about 70 s after contrast), where most liver CT is read: the liver
# enhances to 100-135 HU (3D-IRCADb-01 patients 1.1 / 1.7: median 112 / 120 HU), spleen with it; hypodense lesions
# stay 10-90 HU below the liver (1.1's tumours: median 72-96 HU). A case of enhancement e in [0, 1] draws each of
# these tissues from the range between NOMINAL_HU (e = 0) and this one (e = 1); the others keep NOMINAL_HU.
PORTAL_VENOUS_HU: dict[str, tuple[float, float]] = {
    "muscle": (50.0, 70.0),
    "heart": (130.0, 190.0),
    "aorta": (150.0, 220.0),
    "ivc": (130.0, 180.0),
    "kidney_cortex": (150.0, 200.0),
    "kidney_medulla": (120.0, 180.0),
    "spleen": (100.0, 135.0),
    "stomach_wall": (80.0, 120.0),
    "pancreas": (80.0, 110.0),
    "bowel_wall": (70.0, 110.0),
    "liver": (100.0, 135.0),
    "tumor_hypo": (45.0, 95.0),
    "tumor_hyper": (130.0, 170.0),
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


def hu_range(tissue: str, enhancement: float = 0.0) -> tuple[float, float]:
    """The (low, high) mean HU of ``tissue`` in a case of contrast ``enhancement`` (0 = :data:`NOMINAL_HU`,
    1 = :data:`PORTAL_VENOUS_HU`, linear in between)."""
    if not 0.0 <= enhancement <= 1.0:
        raise ValueError(f"enhancement must lie in [0, 1], got {enhancement}")
    low, high = NOMINAL_HU[tissue]
    pv_low, pv_high = PORTAL_VENOUS_HU.get(tissue, (low, high))
    return low + enhancement * (pv_low - low), high + enhancement * (pv_high - high)


def enhancement_range(enhancement: tuple[float, float] | float) -> tuple[float, float]:
    """A contrast phase given as one value or a ``(low, high)`` range, as ``(low, high)`` within [0, 1]."""
    low, high = (enhancement, enhancement) if isinstance(enhancement, (int, float)) else enhancement
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"enhancement must be a value or a (low, high) range within [0, 1], got {enhancement}")
    return float(low), float(high)
