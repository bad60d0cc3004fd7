"""Reading: every format and orientation gives the same RAS array and voxel-to-world mapping; real cases line up."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import Compose, LoadImage

from bundle.transforms.io import CT_READERS, load_ct_transforms
from tests.transforms.conftest import reoriented

FORMATS = ["nifti_ras", "nifti_las", "nifti_lps", "nrrd", "mha"]


def _load(paths: dict, readers=CT_READERS) -> dict:
    return Compose(load_ct_transforms(["image", "label"], readers=readers))(
        {"image": str(paths["image"]), "label": str(paths["label"])}
    )


def _reader_of(meta: dict) -> str:
    """Which MONAI reader produced ``meta``: nibabel keeps the NIfTI header fields, ITK does not."""
    return "NibabelReader" if "sizeof_hdr" in meta else "ITKReader"


@pytest.mark.parametrize("readers", [CT_READERS, None], ids=["CT_READERS", "monai_auto"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_reader_choice(phantom_files, fmt, readers):
    d = _load(phantom_files[fmt], readers)
    expected = "NibabelReader" if fmt.startswith("nifti") else "ITKReader"
    assert _reader_of(d["image"].meta) == expected


def test_ct_readers_registration_order():
    """Readers given to LoadImage are tried first, nibabel before ITK (auto-select goes from the last one)."""
    names = [type(r).__name__ for r in LoadImage(reader=list(CT_READERS)).readers]
    assert names[-2:] == ["ITKReader", "NibabelReader"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_and_orientation_same_ras_grid(phantom_files, phantom, fmt):
    """NIfTI in RAS/LAS/LPS order, NRRD and MHA all end up as the RAS phantom on the RAS affine."""
    image, label, affine = phantom
    d = _load(phantom_files[fmt])
    for key, ref in (("image", image), ("label", label)):
        out = d[key]
        assert out.shape == (1, *ref.shape)
        np.testing.assert_array_equal(out[0].numpy(), ref.astype(np.float32))
        np.testing.assert_allclose(out.affine.numpy(), affine, atol=1e-4)
        assert nib.aff2axcodes(out.affine.numpy()) == ("R", "A", "S")


@pytest.mark.parametrize("fmt", ["nifti_las", "nrrd"])
def test_original_metadata_kept(phantom_files, phantom, fmt):
    """affine, original_affine, spatial_shape and filename survive reorientation (Invertd/SaveImaged need them)."""
    _, _, affine = phantom
    d = _load(phantom_files[fmt])
    meta = d["image"].meta
    assert str(meta["filename_or_obj"]) == str(phantom_files[fmt]["image"])
    np.testing.assert_array_equal(np.asarray(meta["spatial_shape"]), [48, 40, 16])
    las = np.asarray(meta["original_affine"])  # stored LAS: first axis flipped
    assert nib.aff2axcodes(las) == ("L", "A", "S")
    np.testing.assert_allclose(las[:3, 3], [affine[0, 3] + 47 * 0.8, affine[1, 3], affine[2, 3]], atol=1e-4)


def test_dicom_series_written_here_reads_as_the_same_ras_volume(tmp_path, phantom):
    """A CT DICOM series (one file per slice, LPS patient axes, as scanners write it) of the phantom, written by
    ITK/GDCM in the test itself: read through CT_READERS it gives the phantom's RAS array and affine, as the
    NIfTI and NRRD copies do. Needs no ../shared."""
    from tests.data.bad_inputs import write_dicom_series

    image, _, affine = phantom
    lps_array, lps_affine = reoriented(image, affine, "LPS")
    origin_lps = tuple(float(v) for v in np.diag([-1.0, -1.0, 1.0]) @ lps_affine[:3, 3])
    spacing = tuple(float(v) for v in np.linalg.norm(lps_affine[:3, :3], axis=0))
    series = tmp_path / "series"
    series.mkdir()
    write_dicom_series(
        series, "1.2.826.0.1.3680043.2.1125.7.1", "1.2.826.0.1.3680043.2.1125.7", lps_array.T, "ct", spacing, origin_lps
    )
    out = Compose(load_ct_transforms(["image"]))({"image": str(series)})["image"]
    assert _reader_of(out.meta) == "ITKReader"
    assert out.shape == (1, *image.shape)
    np.testing.assert_array_equal(out[0].numpy(), image.astype(np.float32))
    np.testing.assert_allclose(out.affine.numpy(), affine, atol=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# real cases (../shared/data/real)

REAL_PAIRS = {
    # name: (image, liver label, reader expected for the image)
    "ts_ct_dicom": ("dicom/ts_ct_dicom", "dicom/ts_ct_dicom_liver.nii.gz", "ITKReader"),
    "dcmqi_dicom": ("dicom/dcmqi_ct_3slice", "dicom/dcmqi_ct_3slice_liver.nrrd", "ITKReader"),
    "ts_ct_nifti": ("nifti/ts-ct_volume.nii.gz", "nifti/ts-ct_liver.nii.gz", "NibabelReader"),
}


@pytest.fixture(scope="module")
def real_cases(real_data_dir) -> dict:
    """Each real pair loaded once through ``load_ct_transforms`` (the DICOM series takes ~3 s)."""
    pre = Compose(load_ct_transforms(["image", "label"]))
    out = {}
    for name, (img, lab, _) in REAL_PAIRS.items():
        out[name] = pre({"image": str(real_data_dir / img), "label": str(real_data_dir / lab)})
    return out


@pytest.mark.real_data
@pytest.mark.parametrize("name", list(REAL_PAIRS))
def test_real_image_and_label_line_up(real_cases, name):
    """Image and liver label from different readers share the RAS grid, and the liver's mean HU is liver-like.

    The label of ``ts_ct_dicom`` is a LAS NIfTI while the series is read by ITK (LPS on disk); the dcmqi label is
    an NRRD. Measured: ts_ct_dicom 89 HU, dcmqi 37 HU, ts-ct NIfTI 44 HU inside the liver (soft tissue), about
    -680, -1110 and -370 HU outside.
    """
    d = real_cases[name]
    image, label = d["image"], d["label"]
    assert _reader_of(image.meta) == REAL_PAIRS[name][2]
    assert image.shape == label.shape
    np.testing.assert_allclose(image.affine.numpy(), label.affine.numpy(), atol=1e-3)
    assert nib.aff2axcodes(image.affine.numpy()) == ("R", "A", "S")
    liver = label[0] > 0
    assert liver.sum() > 100
    mean_liver = float(image[0][liver].mean())
    assert 0.0 < mean_liver < 200.0, f"{name}: mean HU in liver {mean_liver:.1f}"
    assert float(image[0][~liver].mean()) < mean_liver - 200.0
    # misregistered (mirrored left-right) the label would sit on other tissue: the alignment is discriminative
    mirrored = torch.flip(liver, dims=[0])
    assert abs(float(image[0][mirrored].mean()) - mean_liver) > 20.0


@pytest.mark.real_data
def test_real_dicom_series_matches_its_nifti_copy(real_data_dir, real_cases):
    """dcmqi's 3-slice DICOM series (ITK) and its NIfTI copy (nibabel) give the same HU array and affine."""
    d = Compose(load_ct_transforms(["image", "label"]))(
        {
            "image": str(real_data_dir / "nifti/dcmqi-3slice_volume.nii.gz"),
            "label": str(real_data_dir / "nifti/dcmqi-3slice_liver.nii.gz"),
        }
    )
    dicom = real_cases["dcmqi_dicom"]
    np.testing.assert_array_equal(d["image"].numpy(), dicom["image"].numpy())
    np.testing.assert_array_equal(d["label"].numpy() > 0, dicom["label"].numpy() > 0)
    np.testing.assert_allclose(d["image"].affine.numpy(), dicom["image"].affine.numpy(), atol=1e-3)


@pytest.mark.real_data
def test_real_jpeg2000_dicom_read_by_itk(real_cases):
    """The JPEG 2000 series decodes (GDCM in itk-io): 20 slices of 512 x 512, 0.98 x 0.98 x 2 mm, CT HU range."""
    image = real_cases["ts_ct_dicom"]["image"]
    assert image.shape == (1, 512, 512, 20)
    np.testing.assert_allclose(np.abs(np.diag(image.affine.numpy())[:3]), [0.9765625, 0.9765625, 2.0], atol=1e-4)
    assert float(image.min()) == pytest.approx(-1024.0) and float(image.max()) > 1000.0
