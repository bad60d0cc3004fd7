"""Small synthetic CT phantoms written as NIfTI (nibabel), NRRD and MHA (ITK) for the transform tests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

SHAPE = (48, 40, 16)
SPACING = (0.8, 0.7, 2.5)  # mm, anisotropic on purpose
ORIGIN = (-20.0, 15.0, -30.0)  # mm, RAS

LIVER_HU, TUMOR_HU, BODY_HU, AIR_HU = 60, 20, -80, -1000


def make_phantom(shape: tuple[int, int, int] = SHAPE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An abdomen-like phantom: ``(image int16 HU, label uint8 {0, 1 liver, 2 tumor})``, both of ``shape``.

    Body ellipse (-80 HU) in air (-1000 HU), a liver ellipsoid (60 HU) off-centre on the first axis, and a
    small tumour (20 HU) inside the liver, plus Gaussian noise (sd 5 HU). Nothing is symmetric, so a flipped
    axis shows up.
    """
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    h, w, d = shape
    body = ((i - h / 2) / (0.45 * h)) ** 2 + ((j - w / 2) / (0.42 * w)) ** 2 <= 1
    liver = ((i - 0.35 * h) / (0.2 * h)) ** 2 + ((j - 0.45 * w) / (0.25 * w)) ** 2 + ((k - 0.5 * d) / (0.3 * d)) ** 2
    liver = liver <= 1
    tumor = ((i - 0.3 * h) ** 2 + (j - 0.5 * w) ** 2) / 9.0 + ((k - 0.55 * d) / 1.5) ** 2 <= 1
    tumor &= liver
    label = np.zeros(shape, dtype=np.uint8)
    label[liver] = 1
    label[tumor] = 2
    image = np.full(shape, AIR_HU, dtype=float)
    image[body] = BODY_HU
    image[liver] = LIVER_HU
    image[tumor] = TUMOR_HU
    image += rng.normal(0, 5, shape)
    return np.round(image).astype(np.int16), label


def ras_affine(spacing=SPACING, origin=ORIGIN) -> np.ndarray:
    """Voxel -> RAS mm affine of a RAS-ordered array with the given voxel size and origin."""
    aff = np.diag([*spacing, 1.0])
    aff[:3, 3] = origin
    return aff


def reoriented(array: np.ndarray, affine: np.ndarray, axcodes: str) -> tuple[np.ndarray, np.ndarray]:
    """The same physical image stored with voxel axes ``axcodes`` (e.g. ``"LAS"``): ``(array, affine)``."""
    img = nib.Nifti1Image(array, affine)
    start = nib.orientations.io_orientation(affine)
    ornt = nib.orientations.ornt_transform(start, nib.orientations.axcodes2ornt(tuple(axcodes)))
    out = img.as_reoriented(ornt)
    return np.asarray(out.dataobj), out.affine


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> Path:
    img = nib.Nifti1Image(array, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    nib.save(img, str(path))
    return path


def write_itk(path: Path, array: np.ndarray, affine: np.ndarray) -> Path:
    """Write with ITK (``.nrrd``, ``.mha``, ``.mhd``...): RAS affine -> ITK's LPS origin, spacing, direction."""
    import itk

    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing
    image = itk.image_from_array(np.ascontiguousarray(array.transpose(2, 1, 0)))  # ITK's numpy view is (z, y, x)
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(lps[:3, 3].tolist())
    image.SetDirection(itk.matrix_from_array(np.ascontiguousarray(direction)))
    itk.imwrite(image, str(path))
    return path


@pytest.fixture(scope="session")
def phantom() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image HU int16, label uint8, RAS affine)`` of the 48 x 40 x 16 phantom."""
    image, label = make_phantom()
    return image, label, ras_affine()


@pytest.fixture(scope="session")
def phantom_files(tmp_path_factory, phantom) -> dict[str, dict[str, Path]]:
    """The phantom written as NIfTI in RAS, LAS and LPS voxel order, and as NRRD and MHA (via ITK).

    Returns ``{name: {"image": path, "label": path}}`` with names ``nifti_ras``, ``nifti_las``, ``nifti_lps``,
    ``nrrd``, ``mha``.
    """
    image, label, affine = phantom
    root = tmp_path_factory.mktemp("phantom")
    files: dict[str, dict[str, Path]] = {}
    for codes in ("RAS", "LAS", "LPS"):
        name = f"nifti_{codes.lower()}"
        img_arr, aff = reoriented(image, affine, codes)
        lab_arr, _ = reoriented(label, affine, codes)
        files[name] = {
            "image": write_nifti(root / f"{name}_image.nii.gz", img_arr, aff),
            "label": write_nifti(root / f"{name}_label.nii.gz", lab_arr, aff),
        }
    las_img, las_aff = reoriented(image, affine, "LAS")  # ITK files stored in a non-RAS order too
    las_lab, _ = reoriented(label, affine, "LAS")
    for ext in ("nrrd", "mha"):
        files[ext] = {
            "image": write_itk(root / f"image.{ext}", las_img, las_aff),
            "label": write_itk(root / f"label.{ext}", las_lab, las_aff),
        }
    return files
