"""What --input may be, and output names that cannot leave the output folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bundle.inference import case_name, case_output_path, input_datalist


@pytest.mark.parametrize(
    "source, expected",
    [
        ("/data/volume-3.nii.gz", "volume-3"),
        ("/data/case.NII", "case"),
        ("/data/patient 7/", "patient_7"),
        ("../../etc/passwd.nii.gz", "passwd"),
        ("/data/..nii.gz", "case"),
        ("/data/.hidden.mha", "hidden"),
        ("/data/a\\b;rm -rf.nrrd", "a_b_rm_-rf"),
        ("/data/3Dircadb1.7/PATIENT_DICOM", "3Dircadb1.7"),  # 3D-IRCADb: named after the patient
        ("/data/3Dircadb1.7/PATIENT_DICOM.zip", "3Dircadb1.7"),
        ("/data/3Dircadb1.7/PATIENT_DICOM/", "3Dircadb1.7"),
    ],
)
def test_case_names_are_plain_file_names(source: str, expected: str) -> None:
    assert case_name(source) == expected


@pytest.mark.parametrize("source", ["../../x.nii.gz", "/abs/..nii.gz", "/data/../../..", "a/b/../../c.mha"])
def test_outputs_stay_inside_the_output_folder(tmp_path: Path, source: str) -> None:
    target = case_output_path(tmp_path, source, "seg", ".nii.gz").resolve()
    assert target.is_relative_to(tmp_path.resolve())
    assert target.parent.parent == tmp_path.resolve()


def test_folder_of_cases_skips_labels_and_keeps_dicom_series(tmp_path: Path) -> None:
    for name in ("volume-0.nii.gz", "segmentation-0.nii.gz", "other.nrrd", "notes.txt", "case_seg.nii.gz"):
        (tmp_path / name).write_bytes(b"x")
    series = tmp_path / "series"
    series.mkdir()
    (series / "IM0001").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16)
    found = sorted(Path(e["image"]).name for e in input_datalist(tmp_path))
    assert found == ["other.nrrd", "series", "volume-0.nii.gz"]


def test_ircadb_patients_give_their_patient_dicom(tmp_path: Path) -> None:
    """A folder of 3D-IRCADb patients (PATIENT_DICOM as a folder or a zip) or one patient: its CT, named by patient."""
    series = tmp_path / "3Dircadb1.1" / "PATIENT_DICOM"
    series.mkdir(parents=True)
    (series / "image_0").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16)
    (tmp_path / "3Dircadb1.1" / "LICENSE.txt").write_text("CC BY-NC-ND")
    (tmp_path / "3Dircadb1.2").mkdir()
    (tmp_path / "3Dircadb1.2" / "PATIENT_DICOM.zip").write_bytes(b"PK")
    (tmp_path / "3Dircadb1.3").mkdir()  # no PATIENT_DICOM: not a case
    expected = [{"image": str(series)}, {"image": str(tmp_path / "3Dircadb1.2" / "PATIENT_DICOM.zip")}]
    assert input_datalist(tmp_path) == expected
    assert input_datalist(tmp_path / "3Dircadb1.1") == expected[:1]
    assert [case_name(e["image"]) for e in expected] == ["3Dircadb1.1", "3Dircadb1.2"]


def test_datalist_json_paths_are_relative_to_the_json(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text(json.dumps({"test": [{"image": "imagesTs/a.nii.gz"}, "b.nii.gz"]}))
    assert input_datalist(tmp_path / "dataset.json") == [
        {"image": str(tmp_path / "imagesTs/a.nii.gz")},
        {"image": str(tmp_path / "b.nii.gz")},
    ]


def test_missing_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        input_datalist(tmp_path / "nowhere")
