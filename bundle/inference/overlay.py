"""A quick-look PNG of a CT case with its liver (green) and tumor (red) segmentation, drawn with Pillow.

Panels, left to right (each titled in a caption strip above it):

1. axial slice through the liver centre (centroid of labels {1, 2}; the volume centre if there is no liver);
2. axial slice through the centre of the largest tumor (26-connected component of label 2), if there is one;
3. coronal slice through the liver centre.

Orientation: the arrays are assumed in RAS voxel order (as after MONAI ``Orientationd(axcodes="RAS")``: axis 0
increases towards the patient's right, axis 1 anterior, axis 2 superior). Panels follow the radiological
convention: axial slices are seen from the feet, with the patient's right on the image left and anterior up;
the coronal slice is seen from the front, with the patient's right on the image left and superior up. Small
yellow letters (R/L, A/P, S/I) mark the sides.

Aspect ratio: every panel is resampled to square display pixels from the voxel spacing, so a coronal view of a
CT with 5 mm slices is as tall, in mm, as the body is; all panels have the same width in pixels
(``panel_width``), so their heights are proportional to their physical extent.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from bundle.inference.report import atomic_output, tumor_components

__all__ = ["OverlayPanel", "save_overlay_png"]

LIVER_RGB = (0, 255, 0)
TUMOR_RGB = (255, 0, 0)
TEXT_RGB = (255, 255, 0)
CAPTION_HEIGHT = 18
GAP = 4


@dataclass(frozen=True)
class OverlayPanel:
    """One panel of the overlay: ``name``, the voxel axis it cuts (2 = axial, 1 = coronal), the slice index along
    that axis, and its ``box`` ``(left, top, right, bottom)`` in the PNG, in pixels (right/bottom exclusive)."""

    name: str
    axis: int
    index: int
    box: tuple[int, int, int, int]


def _spacing(affine_or_spacing: np.ndarray | Sequence[float]) -> np.ndarray:
    arr = np.asarray(affine_or_spacing, dtype=np.float64)
    if arr.shape == (4, 4):
        return np.linalg.norm(arr[:3, :3], axis=0)  # voxel size along each array axis, mm
    if arr.shape == (3,):
        return np.abs(arr)
    raise ValueError(f"expected a 4x4 affine or 3 spacing values in mm, got shape {arr.shape}")


def _radiological(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Slice an RAS ``(H, W, D)`` volume -> 2D ``(rows, cols)`` in radiological orientation.

    axial (axis 2): rows = anterior→posterior (axis 1 reversed), cols = right→left (axis 0 reversed);
    coronal (axis 1): rows = superior→inferior (axis 2 reversed), cols = right→left (axis 0 reversed).
    """
    plane = np.take(volume, index, axis=axis)  # (H, D) or (H, W): axis 0 first
    return plane.T[::-1, ::-1]


def _centre(mask: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    if mask.any():
        return np.rint(ndimage.center_of_mass(mask)).astype(int)
    return np.array([s // 2 for s in shape])


def _render(gray: np.ndarray, label: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """gray ``(rows, cols)`` uint8 and label -> RGB panel of ``size`` (width, height), tinted and outlined."""
    gray_img = np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    lab = np.asarray(Image.fromarray(label.astype(np.uint8)).resize(size, Image.Resampling.NEAREST))
    rgb = np.repeat(gray_img[..., None], 3, axis=-1)
    for mask, colour, alpha in ((lab >= 1, LIVER_RGB, 0.25), (lab == 2, TUMOR_RGB, 0.35)):
        rgb[mask] = (1.0 - alpha) * rgb[mask] + alpha * np.asarray(colour, dtype=np.float32)
    for mask, colour in ((lab >= 1, LIVER_RGB), (lab == 2, TUMOR_RGB)):
        outline = mask & ~ndimage.binary_erosion(mask, border_value=0)
        rgb[outline] = colour
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB")


def _mark_sides(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], axis: int, font) -> None:
    left, top, right, bottom = box
    mid_x, mid_y = (left + right) // 2, (top + bottom) // 2
    up, down = ("A", "P") if axis == 2 else ("S", "I")
    draw.text((left + 2, mid_y), "R", fill=TEXT_RGB, font=font, anchor="lm")
    draw.text((right - 2, mid_y), "L", fill=TEXT_RGB, font=font, anchor="rm")
    draw.text((mid_x, top + 2), up, fill=TEXT_RGB, font=font, anchor="mt")
    draw.text((mid_x, bottom - 2), down, fill=TEXT_RGB, font=font, anchor="mb")


def save_overlay_png(
    image_hu: np.ndarray,
    label: np.ndarray,
    affine_or_spacing: np.ndarray | Sequence[float],
    path: str | os.PathLike,
    hu_window: tuple[float, float] = (-200.0, 250.0),
    panel_width: int = 256,
) -> list[OverlayPanel]:
    """Write the overlay PNG atomically and return its panels.

    Args:
        image_hu: CT volume ``(H, W, D)`` in HU, RAS voxel order.
        label: label map ``(H, W, D)`` with 0 background, 1 liver, 2 tumor (liver drawn for labels {1, 2}).
        affine_or_spacing: the ``4 x 4`` voxel-to-world affine (mm) or the voxel spacing ``(sx, sy, sz)`` in mm.
        path: output ``.png`` path (written via a temporary file and ``os.replace``).
        hu_window: (lower, upper) HU mapped to black and white. Default (-200, 250), an abdominal window.
        panel_width: width of every panel in pixels; heights follow the physical aspect ratio.

    Returns:
        the panels (2 or 3) with their boxes in the image.
    """
    image = np.asarray(image_hu, dtype=np.float32)
    lab = np.asarray(label)
    if image.ndim != 3 or lab.shape != image.shape:
        raise ValueError(f"expected image and label of the same (H, W, D) shape, got {image.shape} and {lab.shape}")
    lo, hi = float(hu_window[0]), float(hu_window[1])
    if hi <= lo:
        raise ValueError(f"hu_window must be (lower, upper) with lower < upper, got {hu_window}")
    spacing = _spacing(affine_or_spacing)
    gray = (np.clip((image - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)

    liver_centre = _centre((lab == 1) | (lab == 2), lab.shape)
    views = [("axial, liver centre", 2, int(liver_centre[2]))]
    components, count = tumor_components(lab)
    if count:
        largest = 1 + int(np.argmax(np.bincount(components.reshape(-1))[1:]))
        views.append(("axial, largest tumor", 2, int(_centre(components == largest, lab.shape)[2])))
    views.append(("coronal, liver centre", 1, int(liver_centre[1])))

    tiles = []
    for name, axis, index in views:
        row_axis = 1 if axis == 2 else 2  # axial rows run along axis 1 (A-P), coronal rows along axis 2 (S-I)
        rows_mm = lab.shape[row_axis] * spacing[row_axis]
        cols_mm = lab.shape[0] * spacing[0]
        size = (int(panel_width), max(1, round(panel_width * rows_mm / cols_mm)))
        tile = _render(_radiological(gray, axis, index), _radiological(lab, axis, index), size)
        tiles.append((f"{name} ({'z' if axis == 2 else 'y'}={index})", axis, index, tile))

    width = sum(t[3].width for t in tiles) + GAP * (len(tiles) - 1)
    height = CAPTION_HEIGHT + max(t[3].height for t in tiles)
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    panels, x = [], 0
    for caption, axis, index, tile in tiles:
        box = (x, CAPTION_HEIGHT, x + tile.width, CAPTION_HEIGHT + tile.height)
        canvas.paste(tile, box[:2])
        draw.text((x + 2, 2), caption, fill=(255, 255, 255), font=font)
        _mark_sides(draw, box, axis, font)
        panels.append(OverlayPanel(caption, axis, index, box))
        x += tile.width + GAP
    with atomic_output(path) as tmp:
        canvas.save(tmp, format="PNG")
    return panels
