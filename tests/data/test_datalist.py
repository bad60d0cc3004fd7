"""Datalists: LiTS and MSD layouts, orphans, k-fold splits and MONAI's reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.data import load_decathlon_datalist

from bundle.data.datalist import build_datalist, find_cases, write_datalist
from bundle.data.phantom import write_phantom_dataset


def _nifti(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.int16), np.eye(4)), path)
    return path


def _lits(root: Path, numbers, ext: str = ".nii.gz", folder: str = "") -> Path:
    for n in numbers:
        _nifti(root / folder / f"volume-{n}{ext}")
        _nifti(root / folder / f"segmentation-{n}{ext}")
    return root


def _msd(root: Path, train=("liver_0", "liver_1", "liver_2", "liver_10"), test=("liver_130", "liver_131")) -> Path:
    for name in train:
        _nifti(root / "imagesTr" / f"{name}.nii.gz")
        _nifti(root / "labelsTr" / f"{name}.nii.gz")
    for name in test:
        _nifti(root / "imagesTs" / f"{name}.nii.gz")
    (root / "imagesTr" / "._liver_0.nii.gz").write_bytes(b"macOS resource fork")  # ignored
    return root


def _ids(entries: list[dict]) -> set[str]:
    return {Path(e["image"]).name for e in entries}


def test_lits_layout_nii_and_niigz_in_subfolders(tmp_path):
    _lits(tmp_path, [0, 2, 10], ".nii", "Training Batch 1")
    _lits(tmp_path, [1, 9], ".nii.gz", "Training Batch 2")
    (tmp_path / "notes.txt").write_text("not a case")
    cases = find_cases(tmp_path)
    assert [c["case_id"] for c in cases] == ["0", "1", "2", "9", "10"]
    for c in cases:
        assert Path(c["image"]).is_absolute() and Path(c["image"]).name.startswith("volume-")
        assert Path(c["label"]).name == Path(c["image"]).name.replace("volume", "segmentation")


def test_msd_layout_with_test_images(tmp_path):
    _msd(tmp_path)
    datalist = build_datalist(tmp_path, num_folds=2, fold=1)
    assert _ids(datalist["test"]) == {"liver_130.nii.gz", "liver_131.nii.gz"}
    assert all("label" not in e for e in datalist["test"])
    assert _ids(datalist["training"] + datalist["validation"]) == {f"liver_{n}.nii.gz" for n in (0, 1, 2, 10)}
    assert datalist["numTraining"] == 2 and datalist["numValidation"] == 2 and datalist["numTest"] == 2
    assert datalist["labels"] == {"0": "background", "1": "liver", "2": "tumor"}
    for e in datalist["training"]:
        assert Path(e["label"]).parent.name == "labelsTr" and Path(e["label"]).name == Path(e["image"]).name


def test_orphans_named_in_lits_layout(tmp_path):
    _lits(tmp_path, [0, 1])
    _nifti(tmp_path / "volume-3.nii")
    _nifti(tmp_path / "segmentation-7.nii.gz")
    with pytest.raises(ValueError) as error:
        find_cases(tmp_path)
    message = str(error.value)
    assert "volume-3.nii" in message and "segmentation-7.nii.gz" in message
    assert "image without a label" in message and "label without an image" in message
    assert "volume-0" not in message


def test_orphans_named_in_msd_layout(tmp_path):
    _msd(tmp_path)
    _nifti(tmp_path / "imagesTr" / "liver_5.nii.gz")
    _nifti(tmp_path / "labelsTr" / "liver_6.nii.gz")
    _nifti(tmp_path / "labelsTs" / "liver_200.nii.gz")
    with pytest.raises(ValueError) as error:
        build_datalist(tmp_path, num_folds=2)
    assert all(name in str(error.value) for name in ("liver_5.nii.gz", "liver_6.nii.gz", "liver_200.nii.gz"))


def test_duplicate_case_rejected(tmp_path):
    _lits(tmp_path, [3], ".nii")
    _nifti(tmp_path / "volume-3.nii.gz")
    with pytest.raises(ValueError, match="found twice"):
        find_cases(tmp_path)


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        find_cases(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no CT cases"):
        find_cases(tmp_path / "empty")


def test_folds_deterministic_disjoint_and_covering(tmp_path):
    _lits(tmp_path, range(11))
    everything = {f"volume-{n}.nii.gz" for n in range(11)}
    validations = []
    for fold in range(5):
        datalist = build_datalist(tmp_path, num_folds=5, fold=fold, seed=3)
        assert datalist == build_datalist(tmp_path, num_folds=5, fold=fold, seed=3)
        train, val = _ids(datalist["training"]), _ids(datalist["validation"])
        assert not train & val and train | val == everything and len(val) in (2, 3)
        validations.append(val)
    assert set().union(*validations) == everything and sum(len(v) for v in validations) == 11
    other_seed = [_ids(build_datalist(tmp_path, num_folds=5, fold=f, seed=4)["validation"]) for f in range(5)]
    assert other_seed != validations


def test_test_fraction_and_val_fraction(tmp_path):
    _lits(tmp_path, range(10))
    held_out = [_ids(build_datalist(tmp_path, num_folds=4, fold=f, test_fraction=0.2)["test"]) for f in range(4)]
    assert all(h == held_out[0] for h in held_out) and len(held_out[0]) == 2
    datalist = build_datalist(tmp_path, val_fraction=0.25, test_fraction=0.2)
    train, val, test = (_ids(datalist[k]) for k in ("training", "validation", "test"))
    assert (len(train), len(val), len(test)) == (6, 2, 2) and not (train & val or train & test or val & test)
    for bad in ({"num_folds": 1}, {"fold": 5}, {"val_fraction": 1.0}, {"test_fraction": 1.0}, {"num_folds": 11}):
        with pytest.raises(ValueError):
            build_datalist(tmp_path, **bad)


@pytest.mark.parametrize("relative", [False, True])
def test_readable_by_monai(tmp_path, relative):
    data = _msd(tmp_path / "Task03_Liver")
    path = write_datalist(build_datalist(data, num_folds=2, relative=relative), data / "dataset.json")
    assert not list(data.glob(".dataset.json*"))  # the temporary file is gone
    stored = json.loads(path.read_text())
    assert all(Path(e["image"]).is_absolute() != relative for e in stored["training"])
    for key in ("training", "validation", "test"):
        items = load_decathlon_datalist(path, data_list_key=key)
        assert len(items) == len(stored[key]) > 0
        assert all(Path(item["image"]).is_file() for item in items)
        assert all(Path(item["label"]).is_file() for item in items if key != "test")


def test_phantoms_and_script(tmp_path, repo_root):
    write_phantom_dataset(tmp_path / "data", num_cases=3, size=32)
    out = tmp_path / "lists" / "dataset.json"
    cmd = [sys.executable, "scripts/make_datalist.py", str(tmp_path / "data"), "--out", str(out), "--folds", "3"]
    subprocess.run(cmd, cwd=repo_root, check=True, capture_output=True, timeout=120)
    training = load_decathlon_datalist(out, data_list_key="training")
    assert len(training) == 2 and all(Path(item["label"]).is_file() for item in training)
    bad = subprocess.run(
        [*cmd[:2], str(tmp_path / "missing"), "--out", str(out)], cwd=repo_root, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "not found" in bad.stderr
