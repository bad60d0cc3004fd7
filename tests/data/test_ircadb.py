"""3D-IRCADb on the shared patients 3Dircadb1.1 and 3Dircadb1.7 (../shared/data/real/ircadb, skipped when absent).

Reading (labels on the CT's grid, liver HU, label values, zip and folder forms alike, a patient without a liver
refused), the datalist, inference inputs and their case names, the LiTS conversion and the evaluation against the
DICOM masks. 3Dircadb1.7 is read once per module; 1.1 only where its tumors are needed.
"""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from bundle.data import build_datalist, check_image_file, check_label_file, convert_ircadb, ircadb_label
from bundle.data.validation import InvalidInputError
from bundle.inference import SaveCaseImaged, case_name, input_datalist, prepare_cases
from bundle.metrics.evaluate import evaluate_folder, find_references
from bundle.transforms import CT_READERS

pytestmark = pytest.mark.real_data

PATIENTS = ("3Dircadb1.1", "3Dircadb1.7")
KEYS = ["image", "label"]


def _load(image: str | Path, label: str | Path) -> dict:
    """LoadImaged through the bundle's readers, channel first, no reorientation: the ITK-read grid inference keeps."""
    load = Compose([LoadImaged(KEYS, reader=list(CT_READERS)), EnsureChannelFirstd(KEYS)])
    return load({"image": str(image), "label": str(label)})


@pytest.fixture(scope="module")
def ircadb_dir(real_data_dir: Path) -> Path:
    folder = real_data_dir / "ircadb"
    missing = [p for p in PATIENTS if not (folder / p).is_dir()]
    if missing:
        pytest.skip(f"3D-IRCADb patients {', '.join(missing)} not found in {folder}")
    return folder


@pytest.fixture(scope="module")
def patient7(ircadb_dir: Path) -> dict:
    """3Dircadb1.7's CT (PATIENT_DICOM folder) and label map (MASKS_DICOM.zip), ``(1, 512, 512, 151)`` each."""
    return _load(ircadb_dir / "3Dircadb1.7" / "PATIENT_DICOM", ircadb_dir / "3Dircadb1.7" / "MASKS_DICOM.zip")


@pytest.fixture(scope="module")
def zipped_ct7(ircadb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3Dircadb1.7's PATIENT_DICOM folder zipped (stored, as ``PATIENT_DICOM/image_N``) into a patient folder."""
    patient = tmp_path_factory.mktemp("zipped") / "3Dircadb1.7"
    patient.mkdir()
    target = patient / "PATIENT_DICOM.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for slice_file in sorted((ircadb_dir / "3Dircadb1.7" / "PATIENT_DICOM").iterdir()):
            archive.write(slice_file, f"PATIENT_DICOM/{slice_file.name}")
    return target


def test_label_on_the_ct_grid_with_liver_hu(patient7: dict) -> None:
    """Same shape and RAS affine for CT and label; liver 80-160 HU (measured 121), clearly above the rest."""
    image, label = patient7["image"], patient7["label"]
    assert image.shape == label.shape == (1, 512, 512, 151)
    np.testing.assert_allclose(label.affine.numpy(), image.affine.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.abs(np.diag(image.affine.numpy())[:3]), [0.782, 0.782, 1.6], atol=1e-4)
    hu, liver = image[0].numpy(), label[0].numpy() > 0  # plain arrays: MetaTensor indexing is slow
    mean_liver = float(hu[liver].mean())
    assert 80.0 < mean_liver < 160.0, f"mean HU in the liver {mean_liver:.1f}"
    assert float(hu[~liver].mean()) < mean_liver - 300.0
    mirrored = liver[::-1]  # a label mirrored left-right would sit on other tissue
    assert abs(float(hu[mirrored].mean()) - mean_liver) > 20.0


def test_label_values_per_patient(ircadb_dir: Path, patient7: dict) -> None:
    """1.7 has liver only (its ``tumor`` mask lies outside the liver); 1.1's ``livertumor0N`` masks give label 2.

    1.1 goes through the up-front validation (``check_image_file`` / ``check_label_file``), which reads
    MASKS_DICOM.zip with the IRCAD reader and compares its grid with the CT's.
    """
    assert set(np.unique(patient7["label"].numpy()).tolist()) == {0.0, 1.0}
    patient1 = ircadb_dir / "3Dircadb1.1"
    image_info = check_image_file(patient1 / "PATIENT_DICOM")
    label_info = check_label_file(patient1 / "MASKS_DICOM.zip", image_info)
    assert label_info.label_values == (0, 1, 2)  # 2 present: tumor voxels > 0
    assert label_info.shape == image_info.shape == (512, 512, 129)


def test_masks_folder_and_zip_give_the_same_label(ircadb_dir: Path, patient7: dict, tmp_path: Path) -> None:
    """MASKS_DICOM.zip extracted (its ``liver`` and ``tumor`` series, the two the label of 1.7 looks at, to keep
    the test light) gives the zip's label map and affine."""
    with zipfile.ZipFile(ircadb_dir / "3Dircadb1.7" / "MASKS_DICOM.zip") as archive:
        wanted = [n for n in archive.namelist() if n.startswith(("MASKS_DICOM/liver/", "MASKS_DICOM/tumor/"))]
        archive.extractall(tmp_path / "3Dircadb1.7", members=wanted)
    label, meta = ircadb_label(tmp_path / "3Dircadb1.7" / "MASKS_DICOM")
    np.testing.assert_array_equal(label, patient7["label"][0].numpy())
    np.testing.assert_allclose(meta["affine"], patient7["label"].affine.numpy(), rtol=0, atol=1e-9)


def test_patient_dicom_zip_and_folder_give_the_same_ct(zipped_ct7: Path, ircadb_dir: Path, patient7: dict) -> None:
    zipped = _load(zipped_ct7, ircadb_dir / "3Dircadb1.7" / "MASKS_DICOM.zip")
    np.testing.assert_array_equal(zipped["image"].numpy(), patient7["image"].numpy())
    np.testing.assert_allclose(zipped["image"].affine.numpy(), patient7["image"].affine.numpy(), rtol=0, atol=1e-9)
    assert zipped["image"].meta["filename_or_obj"] == str(zipped_ct7)


def test_patient_without_liver_mask_is_refused_by_name(ircadb_dir: Path, tmp_path: Path) -> None:
    """MASKS_DICOM.zip of 1.7 minus ``liver/``: the label, the validation and the loader all name the patient."""
    masks = tmp_path / "3Dircadb1.7" / "MASKS_DICOM.zip"
    masks.parent.mkdir()
    with (
        zipfile.ZipFile(ircadb_dir / "3Dircadb1.7" / "MASKS_DICOM.zip") as source,
        zipfile.ZipFile(masks, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target,
    ):
        for info in source.infolist():
            if not info.filename.startswith("MASKS_DICOM/liver/"):
                target.writestr(info, source.read(info), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    with pytest.raises(ValueError, match=r"3D-IRCADb patient 3Dircadb1\.7: .* no 'liver' mask \(found: artery"):
        ircadb_label(masks)
    with pytest.raises(InvalidInputError, match=r"MASKS_DICOM\.zip: .*3Dircadb1\.7.*no 'liver' mask"):
        check_label_file(masks)
    with pytest.raises(ValueError, match=r"3D-IRCADb patient 3Dircadb1\.7: .* no 'liver' mask"):  # not NumpyReader's
        LoadImaged("label", reader=list(CT_READERS))({"label": str(masks)})


def test_build_datalist_finds_both_patients(ircadb_dir: Path) -> None:
    datalist = build_datalist(ircadb_dir, num_folds=2, fold=0)
    entries = datalist["training"] + datalist["validation"]
    assert sorted(Path(e["image"]).parent.name for e in entries) == list(PATIENTS)  # in patient order
    assert {Path(e["image"]).name for e in entries} == {"PATIENT_DICOM"}
    assert {Path(e["label"]).name for e in entries} == {"MASKS_DICOM.zip"}


def test_inference_inputs_are_named_by_patient(ircadb_dir: Path, zipped_ct7: Path, tmp_path: Path) -> None:
    """A folder of patients or one patient is read as its PATIENT_DICOM, named after the patient; the up-front
    validation of ``prepare_cases`` accepts both the PATIENT_DICOM folders and a PATIENT_DICOM.zip."""
    both = input_datalist(ircadb_dir)
    assert both == [{"image": str(ircadb_dir / p / "PATIENT_DICOM")} for p in PATIENTS]
    assert input_datalist(ircadb_dir / "3Dircadb1.7") == [{"image": str(ircadb_dir / "3Dircadb1.7/PATIENT_DICOM")}]
    assert input_datalist(zipped_ct7.parent) == [{"image": str(zipped_ct7)}]
    assert [case_name(e["image"]) for e in both] == list(PATIENTS)
    assert case_name(zipped_ct7) == "3Dircadb1.7"

    assert prepare_cases(both, tmp_path / "folders") == both  # two patients, no "same case name" collision
    assert prepare_cases([{"image": str(zipped_ct7)}], tmp_path / "zip") == [{"image": str(zipped_ct7)}]
    for out in ("folders", "zip"):
        assert json.loads((tmp_path / out / "failures.json").read_text()) == []


def test_lits_conversion_equals_the_direct_read(ircadb_dir: Path, patient7: dict, tmp_path: Path) -> None:
    """volume-7 (int16) / segmentation-7 (uint8) load as the DICOM does; a rerun (the script) skips them."""
    source = tmp_path / "ircadb"
    source.mkdir()
    (source / "3Dircadb1.7").symlink_to(ircadb_dir / "3Dircadb1.7", target_is_directory=True)  # 1.7 only
    out = tmp_path / "lits"
    written = convert_ircadb(source, out)
    volume, segmentation = out / "volume-7.nii.gz", out / "segmentation-7.nii.gz"
    assert written == [{"case_id": "3Dircadb1.7", "image": str(volume), "label": str(segmentation)}]
    assert sorted(p.name for p in out.iterdir()) == ["segmentation-7.nii.gz", "volume-7.nii.gz"]  # no temp files
    assert nib.load(volume).get_data_dtype() == np.int16
    assert nib.load(segmentation).get_data_dtype() == np.uint8
    converted = _load(volume, segmentation)
    for key in KEYS:
        np.testing.assert_array_equal(converted[key].numpy(), patient7[key].numpy())
        np.testing.assert_allclose(converted[key].affine.numpy(), patient7[key].affine.numpy(), rtol=0, atol=1e-6)

    spec = importlib.util.spec_from_file_location(
        "convert_script", Path(__file__).parents[2] / "scripts/convert_ircadb.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    mtimes = [p.stat().st_mtime_ns for p in (volume, segmentation)]
    assert script.main([str(source), str(out)]) == 0
    assert [p.stat().st_mtime_ns for p in (volume, segmentation)] == mtimes


def test_evaluation_against_the_dicom_masks(ircadb_dir: Path, patient7: dict, tmp_path: Path) -> None:
    """The reference written as inference writes a prediction for PATIENT_DICOM scores liver Dice 1.0."""
    image = patient7["image"]
    prediction = MetaTensor(patient7["label"].as_tensor(), meta=dict(image.meta))  # the CT's grid and file name
    SaveCaseImaged("pred", str(tmp_path / "pred"))({"pred": prediction})
    assert (tmp_path / "pred" / "3Dircadb1.7" / "3Dircadb1.7_seg.nii.gz").is_file()

    patient = ircadb_dir / "3Dircadb1.7"
    assert find_references(patient) == {"3Dircadb1.7": patient.resolve() / "MASKS_DICOM.zip"}
    result = evaluate_folder(tmp_path / "pred", ircadb_dir, out_dir=tmp_path / "metrics")
    assert result.ok and result.missing_predictions == ["3Dircadb1.1"]
    (case,) = result.cases
    assert case["case"] == "3Dircadb1.7" and case["status"] == "ok"
    assert case["liver_dice"] == pytest.approx(1.0)
    assert case["liver_assd"] == pytest.approx(0.0)
