"""Input validation: every bad input is refused with its file and problem named; good and real CT pass."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.data import Dataset
from monai.transforms import Compose, LoadImaged, MapTransform

from bundle.data.datalist import find_cases
from bundle.data.validation import (
    CT_RULES,
    ImageInfo,
    InvalidInputError,
    check_case,
    check_image_file,
    check_label_file,
)
from bundle.transforms.io import load_ct_transforms
from bundle.transforms.validation import ValidateCTd
from tests.data.bad_inputs import (
    BAD_KINDS,
    KIND_OPTIONS,
    LABEL_KINDS,
    REFERENCE_IMAGE,
    datalist_entry,
    synthetic_ct,
    write_bad_inputs,
    write_good_inputs,
)

logger = logging.getLogger(__name__)

REAL_CT_VOLUMES = (  # (image, label) relative to the real-data folder
    ("nifti/ts-ct_volume.nii.gz", "nifti/ts-ct_liver.nii.gz"),
    ("nifti/ts-ct-sm_volume.nii.gz", "nifti/ts-ct-sm_liver.nii.gz"),
    ("nifti/dcmqi-3slice_volume.nii.gz", "nifti/dcmqi-3slice_liver.nii.gz"),
    ("nifti/lits-resized_volume.nii", "nifti/lits-resized_segmentation.nii"),
    ("dicom/ts_ct_dicom", "dicom/ts_ct_dicom_liver.nii.gz"),  # label stored LAS, the series read LPS->RAS
    ("dicom/dcmqi_ct_3slice", "dicom/dcmqi_ct_3slice_liver.nrrd"),
)
REAL_MR = "other/ts-mr-sm_volume.nii.gz"


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad_inputs")


@pytest.fixture(scope="module")
def corpus(corpus_dir: Path) -> dict[str, tuple[Path, str]]:
    return write_bad_inputs(corpus_dir)


@pytest.fixture(scope="module")
def good_cases(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    return write_good_inputs(tmp_path_factory.mktemp("good_inputs"), n=2)


def _invalid_input_in_chain(error: BaseException) -> InvalidInputError | None:
    """MONAI's Compose wraps a transform's error in RuntimeError; find ours in the ``__cause__`` chain."""
    while error is not None and not isinstance(error, InvalidInputError):
        error = error.__cause__
    return error


class _RecordLoads(MapTransform):
    """Stands after ``ValidateCTd`` to prove that nothing downstream ran."""

    calls = 0

    def __call__(self, data: dict) -> dict:
        type(self).calls += 1
        return data


def test_error_names_path_and_problem() -> None:
    error = InvalidInputError("scans/volume-3.nii.gz", "empty file (0 bytes)")
    assert isinstance(error, ValueError)
    assert (error.path, error.problem) == (Path("scans/volume-3.nii.gz"), "empty file (0 bytes)")
    assert str(error) == "scans/volume-3.nii.gz: empty file (0 bytes)"


def test_corpus_has_every_kind(corpus: dict[str, tuple[Path, str]]) -> None:
    assert tuple(corpus) == BAD_KINDS


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_input_is_refused(kind: str, corpus: dict[str, tuple[Path, str]], corpus_dir: Path) -> None:
    path, phrase = corpus[kind]
    entry = datalist_entry(corpus_dir, kind, path)
    with pytest.raises(InvalidInputError) as caught:
        check_case(entry["image"], entry.get("label"), **KIND_OPTIONS.get(kind, {}))
    error = caught.value
    assert error.path == path
    assert str(error).startswith(f"{path}: ")
    assert phrase in error.problem, str(error)
    if kind in ("label_shape_mismatch", "label_affine_mismatch"):
        assert str(corpus_dir / REFERENCE_IMAGE) in error.problem  # both files named


def test_refusals_need_their_options(corpus: dict[str, tuple[Path, str]]) -> None:
    """The 2-slice volume is fine for a 1-slice network, the MR-like one with ``allow_non_ct`` (a caller may pad)."""
    assert check_image_file(corpus["two_slices"][0]).num_slices == 2
    info = check_image_file(corpus["mr_like"][0], allow_non_ct=True)
    assert info.hu_percentiles[1.0] >= 0.0


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_validate_ctd_refuses_before_loading(kind: str, corpus: dict[str, tuple[Path, str]], corpus_dir: Path) -> None:
    path, phrase = corpus[kind]
    _RecordLoads.calls = 0
    pipeline = Compose(
        [
            ValidateCTd(keys=("image", "label"), **KIND_OPTIONS.get(kind, {})),
            _RecordLoads(keys=("image", "label"), allow_missing_keys=True),
            LoadImaged(keys=("image", "label"), image_only=True, allow_missing_keys=True),
        ]
    )
    with pytest.raises(RuntimeError) as caught:  # MONAI's Compose wraps the transform's error
        pipeline(datalist_entry(corpus_dir, kind, path))
    error = _invalid_input_in_chain(caught.value)
    assert error is not None, repr(caught.value)
    assert error.path == path and phrase in error.problem
    assert _RecordLoads.calls == 0


def test_good_inputs_pass(good_cases: list[dict[str, str]]) -> None:
    infos = [check_case(case["image"], case["label"], min_slices=16) for case in good_cases]
    for info in infos:
        assert isinstance(info, ImageInfo)
        assert info.shape == (48, 48, 16) and info.num_slices == 16
        assert info.spacing_mm == pytest.approx((3.0, 3.0, 3.0))
        assert info.hu_percentiles[1.0] < -900.0 and 600.0 < info.hu_percentiles[99.0] < 800.0
    # case 1 stores HU + 1024 as uint16 with scl_inter = -1024: the check sees HU, as get_fdata and MONAI do
    assert (infos[0].dtype, infos[1].dtype) == ("int16", "uint16")
    assert (infos[0].orientation, infos[1].orientation) == (("R", "A", "S"), ("L", "P", "S"))
    assert infos[1].hu_percentiles[1.0] == pytest.approx(infos[0].hu_percentiles[1.0], abs=10.0)
    label = check_label_file(good_cases[0]["label"], infos[0])
    assert label.label_values == (0, 1, 2) and label.hu_percentiles == {}


def test_datalist_pipeline_validates_then_loads(
    good_cases: list[dict[str, str]], corpus: dict[str, tuple[Path, str]], corpus_dir: Path
) -> None:
    """A datalist found on disk, one bad case appended: the good cases load, the bad one fails naming its file."""
    datalist = find_cases(Path(good_cases[0]["image"]).parent)
    assert [Path(c["image"]).name for c in datalist] == ["volume-0.nii.gz", "volume-1.nii.gz"]
    bad_label, phrase = corpus["label_value_3"]
    datalist.append(datalist_entry(corpus_dir, "label_value_3", bad_label))
    pipeline = Compose([ValidateCTd(keys=("image", "label"), min_slices=3), *load_ct_transforms(["image", "label"])])
    dataset = Dataset(datalist, transform=pipeline)
    for i in range(2):
        out = dataset[i]
        assert out["image"].shape == out["label"].shape == (1, 48, 48, 16)
        assert float(out["image"].min()) < -950.0  # HU, the uint16 case rescaled on load too
    with pytest.raises(RuntimeError) as caught:
        dataset[2]
    error = _invalid_input_in_chain(caught.value)
    assert error is not None and error.path == bad_label and phrase in error.problem
    # without a label (inference): the key may be absent, or None
    entry = {"image": good_cases[0]["image"]}
    assert ValidateCTd()(entry) == entry
    assert ValidateCTd()({**entry, "label": None})["label"] is None


def test_validate_ctd_wants_paths() -> None:
    with pytest.raises(TypeError, match="before LoadImaged"):
        ValidateCTd()({"image": np.zeros((4, 4, 4))})


def test_label_in_another_axis_order_matches(tmp_path: Path) -> None:
    """A label flipped along x with the matching affine covers the same voxels: accepted (compared in RAS)."""
    image, label = synthetic_ct()
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(image, affine), str(tmp_path / "image.nii.gz"))
    flipped = affine @ np.array([[-1.0, 0, 0, 47], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(np.ascontiguousarray(label[::-1]), flipped), str(tmp_path / "label.nii.gz"))
    info = check_case(tmp_path / "image.nii.gz", tmp_path / "label.nii.gz")
    assert check_label_file(tmp_path / "label.nii.gz", info).orientation == ("L", "A", "S")


def test_singleton_fourth_axis_and_itk_formats_pass(tmp_path: Path) -> None:
    import itk

    image, _ = synthetic_ct()
    nib.save(nib.Nifti1Image(image[..., None], np.diag([3.0, 3.0, 3.0, 1.0])), str(tmp_path / "single.nii.gz"))
    nifti = check_image_file(tmp_path / "single.nii.gz")
    assert nifti.shape == (48, 48, 16)
    for suffix in (".nrrd", ".mha"):  # the same volume through ITK: same grid in RAS
        itk.imwrite(itk.imread(str(tmp_path / "single.nii.gz")), str(tmp_path / f"single{suffix}"))
        info = check_image_file(tmp_path / f"single{suffix}")
        assert info.shape == nifti.shape and info.dtype == "int16"
        np.testing.assert_allclose(info.affine, nifti.affine, atol=1e-4)
        assert info.hu_percentiles == pytest.approx(nifti.hu_percentiles)


@pytest.mark.real_data
@pytest.mark.parametrize(("image", "label"), REAL_CT_VOLUMES)
def test_real_ct_passes(real_data_dir: Path, image: str, label: str) -> None:
    info = check_case(real_data_dir / image, real_data_dir / label)
    pct = info.hu_percentiles
    logger.info("%s: %s, HU percentiles %s, padding %.3f", image, info.dtype, pct, info.padding_fraction)
    assert pct[1.0] <= CT_RULES["air_p1_max_hu"] and pct[99.0] >= CT_RULES["tissue_p99_min_hu"]
    assert check_label_file(real_data_dir / label, info).label_values[0] == 0


@pytest.mark.real_data
def test_real_ct_details(real_data_dir: Path) -> None:
    dcmqi = check_image_file(real_data_dir / "nifti/dcmqi-3slice_volume.nii.gz")
    assert dcmqi.padding_fraction > 0.2  # the -3024 outside the scanned circle is set aside, not taken as air
    assert check_image_file(real_data_dir / "nifti/lits-resized_volume.nii").dtype == "float32"
    with pytest.raises(InvalidInputError, match="has 3 slices, the network needs at least 12"):
        check_image_file(real_data_dir / "dicom/dcmqi_ct_3slice", min_slices=12)
    with pytest.raises(InvalidInputError, match="DICOM SEG"):
        check_label_file(real_data_dir / "dicom/dcmqi_ct_3slice_liver_seg.dcm")
    with pytest.raises(InvalidInputError, match="label shape"):  # a liver label of another case
        check_case(real_data_dir / "nifti/ts-ct_volume.nii.gz", real_data_dir / "nifti/ts-ct-sm_liver.nii.gz")


@pytest.mark.real_data
def test_real_mr_refused_unless_allowed(real_data_dir: Path) -> None:
    path = real_data_dir / REAL_MR
    with pytest.raises(InvalidInputError, match="do not look like CT") as caught:
        check_image_file(path)
    assert caught.value.path == path
    info = check_image_file(path, allow_non_ct=True)
    assert info.hu_percentiles[1.0] > CT_RULES["air_p1_max_hu"]
    with pytest.raises(InvalidInputError):
        ValidateCTd()({"image": str(path)})
    ValidateCTd(allow_non_ct=True)({"image": str(path)})


def test_label_kinds_are_labels() -> None:
    assert LABEL_KINDS <= set(BAD_KINDS)
