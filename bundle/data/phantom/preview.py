"""Preview of a phantom (or any labelled CT file): an axial slice through the liver beside a coronal view."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .dataset import PhantomCase

__all__ = ["save_preview_png"]


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
