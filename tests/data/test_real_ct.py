"""The real-CT recipe's datalist: which cases train, which are held out, liver-only flags, phantoms only where
they help (the liver stages), never the held-out patient in training or validation."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bundle.data import ensure_phantoms, real_ct_datalist


def _datalist(real_data_dir: Path, tmp: Path, **kwargs) -> dict:
    if not (real_data_dir / "ircadb").is_dir():
        pytest.skip(f"3D-IRCADb patients not found in {real_data_dir}")
    return real_ct_datalist(real_data_dir, tmp, num_phantoms=2, num_val_phantoms=1, phantom_size=64, **kwargs)


def test_leave_one_patient_out(real_data_dir: Path, tmp_path: Path):
    d = _datalist(real_data_dir, tmp_path, holdout="3Dircadb1.1")
    images = [e["image"] for e in d["training"] + d["validation"]]
    assert not any("3Dircadb1.1" in p for p in images)  # neither trained on nor used to choose anything
    assert [e["case_id"] for e in d["heldout"]] == ["3Dircadb1.1"]
    assert sum("3Dircadb1.7" in p for p in images) == 2  # real cases listed real_repeats times
    flags = {Path(e["image"]).name: e["tumor_labelled"] for e in d["training"]}
    assert flags["ts_ct_dicom"] is False and flags["PATIENT_DICOM"] is True and flags["volume-0.nii.gz"] is True
    assert all("volume-" in e["image"] for e in d["validation"])


def test_coarse_stage_trains_on_real_ct_only(real_data_dir: Path, tmp_path: Path):
    d = _datalist(real_data_dir, tmp_path, stage="coarse", coarse_repeats=3)
    assert d["training"] and not any("volume-" in e["image"] for e in d["training"])
    assert sum("3Dircadb1.1" in e["image"] for e in d["training"]) == 3
    assert d["heldout"] == []


def test_unknown_holdout_is_refused(real_data_dir: Path, tmp_path: Path):
    with pytest.raises(ValueError, match=r"3Dircadb9\.9"):
        _datalist(real_data_dir, tmp_path, holdout=["3Dircadb9.9"])


def test_phantoms_are_made_once(tmp_path: Path):
    first = ensure_phantoms(tmp_path, 2, size=64)
    stamp = Path(first[0]["image"]).stat().st_mtime_ns
    second = ensure_phantoms(tmp_path, 2, size=64)
    assert [c["case_id"] for c in second] == ["0", "1"] and Path(second[0]["image"]).stat().st_mtime_ns == stamp


def test_phantoms_are_remade_for_other_settings(tmp_path: Path):
    """Phantoms made with another contrast phase are not reused silently: the settings file beside them decides."""
    ensure_phantoms(tmp_path, 1, size=64)
    plain = nib.load(tmp_path / "volume-0.nii.gz").get_fdata()
    ensure_phantoms(tmp_path, 1, size=64, enhancement=1.0)
    enhanced = nib.load(tmp_path / "volume-0.nii.gz").get_fdata()
    label = nib.load(tmp_path / "segmentation-0.nii.gz").get_fdata()
    assert np.median(enhanced[label == 1]) > np.median(plain[label == 1]) + 20
    assert json.loads((tmp_path / "phantom_settings.json").read_text())["enhancement"] == [1.0, 1.0]
