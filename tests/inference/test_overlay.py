"""Overlay PNG: panels, physical aspect ratio with anisotropic spacing, radiological orientation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bundle.inference.overlay import save_overlay_png

SPACING = (1.0, 1.0, 3.0)  # mm; 12 slices of 3 mm = 36 mm, a 32 x 32 mm in-plane field


def phantom() -> tuple[np.ndarray, np.ndarray]:
    """RAS (32, 32, 12): a liver block, a large tumor on the patient's right, anterior and superior side of it, and
    a one-voxel tumor elsewhere."""
    image = np.zeros((32, 32, 12), np.float32)  # 0 HU: mid grey in the (-200, 250) window
    label = np.zeros(image.shape, np.uint8)
    label[8:24, 8:24, 2:10] = 1  # liver: 16 x 16 mm, 8 slices = 24 mm; centroid (15.5, 15.5, 5.5)
    label[18:22, 14:22, 6:10] = 2  # large tumor: high i (right), high j (anterior), high k (superior)
    label[10, 10, 3] = 2  # small tumor
    image[label > 0] = 60.0
    return image, label


def colour_box(rgb: np.ndarray, channel: int) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom) of the pixels where ``channel`` clearly dominates."""
    others = [c for c in range(3) if c != channel]
    mask = (rgb[..., channel].astype(int) > rgb[..., others[0]].astype(int) + 30) & (
        rgb[..., channel].astype(int) > rgb[..., others[1]].astype(int) + 30
    )
    rows, cols = np.nonzero(mask)
    assert rows.size, "colour not found"
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def test_three_panels_with_physical_aspect_and_orientation(tmp_path):
    image, label = phantom()
    path = tmp_path / "case" / "overlay.png"
    panels = save_overlay_png(image, label, SPACING, path, panel_width=256)
    assert sorted(p.name for p in path.parent.iterdir()) == ["overlay.png"]  # written atomically

    with Image.open(path) as png:
        assert png.format == "PNG" and png.mode == "RGB"
        rgb = np.asarray(png)
    assert [(p.axis, p.index) for p in panels] == [(2, 6), (2, 8), (1, 16)]  # liver centre, largest tumor, coronal
    widths = [p.box[2] - p.box[0] for p in panels]
    heights = [p.box[3] - p.box[1] for p in panels]
    assert widths == [256, 256, 256]
    assert heights == [256, 256, round(256 * 36 / 32)]  # coronal: 36 mm tall for 32 mm wide, not 12 px for 32
    assert rgb.shape[1] == panels[-1].box[2] and rgb.shape[0] == panels[-1].box[3]

    left, top, right, bottom = panels[2].box
    coronal = rgb[top:bottom, left:right]
    g0, g1, g2, g3 = colour_box(coronal, channel=1)  # the liver: 16 mm wide, 24 mm tall
    assert (g3 - g1) / (g2 - g0) == pytest.approx(24 / 16, rel=0.05)
    r0, r1, r2, r3 = colour_box(coronal, channel=0)  # the tumor: patient's right (image left), superior (up)
    assert r2 <= (g0 + g2) / 2 + 2 and r1 <= g1 + 2 and r3 <= (g1 + g3) / 2 + 2

    left, top, right, bottom = panels[1].box
    axial = rgb[top:bottom, left:right]
    r0, r1, r2, r3 = colour_box(axial, channel=0)  # right side on the image left, anterior up
    assert r2 <= 128 and (r1 + r3) / 2 < 128
    assert r2 - r0 == pytest.approx(4 / 32 * 256, abs=2) and r3 - r1 == pytest.approx(8 / 32 * 256, abs=2)


def test_two_panels_without_tumor_and_affine_input(tmp_path):
    image, label = phantom()
    label[label == 2] = 1
    affine = np.diag([-1.0, -1.0, 3.0, 1.0])  # LPS-like signs: only the spacing is used
    panels = save_overlay_png(image, label, affine, tmp_path / "a.png")
    assert [p.name.split(" (")[0] for p in panels] == ["axial, liver centre", "coronal, liver centre"]
    with Image.open(tmp_path / "a.png") as png:
        assert png.size == (2 * 256 + 4, 18 + round(256 * 36 / 32))


def test_empty_label_and_bad_inputs(tmp_path):
    image, label = phantom()
    panels = save_overlay_png(image, np.zeros_like(label), SPACING, tmp_path / "e.png", hu_window=(-100, 100))
    assert [p.index for p in panels] == [6, 16]  # volume centre
    with pytest.raises(ValueError, match="same"):
        save_overlay_png(image, label[:-1], SPACING, tmp_path / "x.png")
    with pytest.raises(ValueError, match="hu_window"):
        save_overlay_png(image, label, SPACING, tmp_path / "x.png", hu_window=(100, -100))
    with pytest.raises(ValueError, match="affine"):
        save_overlay_png(image, label, (1.0, 1.0), tmp_path / "x.png")
