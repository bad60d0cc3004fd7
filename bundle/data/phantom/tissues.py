"""The phantom's tissues: their mean HU ranges, texture and which of them the liver and tumour labels cover."""

from __future__ import annotations

__all__ = ["LIVER_TISSUES", "NOMINAL_HU", "TEXTURE_HU", "TISSUES", "TISSUE_ID", "TUMOR_TISSUES"]

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
