"""configs/inference.yaml end to end: every prediction lies on its input's grid, whatever the file's orientation,
spacing or format, real scanners' files included; each case gets its report and overlay."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import itk
import nibabel as nib
import numpy as np
import pytest
from monai.bundle import ConfigWorkflow

from bundle.data import make_phantom

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _write_nifti(case, path: Path) -> None:
    nib.save(nib.Nifti1Image(case.image, case.affine), str(path))


def run_inference(input_path: Path, out: Path, ckpt: Path, **extra) -> ConfigWorkflow:
    workflow = ConfigWorkflow(
        config_file=str(REPO / "configs" / "inference.yaml"),
        meta_file=str(REPO / "configs" / "metadata.json"),
        logging_file=False,
        workflow_type="infer",
        input=str(input_path),
        output_dir=str(out),
        ckpt_path=str(ckpt),
        network_size="small",
        patch_size=[64, 64, 8],
        **extra,
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    return workflow


@pytest.fixture(scope="module")
def oriented_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One phantom written as RAS, LAS and LPS NIfTI, an anisotropic (5 mm slices) one, and NRRD / MHA copies."""
    folder = tmp_path_factory.mktemp("inputs")
    for code in ("RAS", "LAS", "LPS"):
        _write_nifti(make_phantom(seed=3, size=64, num_slices=12, orientation=code), folder / f"phantom_{code}.nii.gz")
    _write_nifti(make_phantom(seed=4, size=64, num_slices=10, spacing=(0.7, 0.7, 5.0)), folder / "aniso.nii")
    image = itk.imread(str(folder / "phantom_LPS.nii.gz"))
    itk.imwrite(image, str(folder / "phantom_nrrd.nrrd"))
    itk.imwrite(image, str(folder / "phantom_mha.mha"))
    return folder


def _assert_on_grid(seg_path: Path, shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    seg = nib.load(str(seg_path))
    assert seg.shape == tuple(shape), seg_path
    np.testing.assert_allclose(seg.affine, affine, atol=1e-3, err_msg=str(seg_path))
    data = np.asanyarray(seg.dataobj)
    assert data.dtype == np.uint8 and set(np.unique(data).tolist()) <= {0, 1, 2}
    return data


def test_predictions_lie_on_the_input_grid_for_every_orientation_and_format(
    oriented_inputs: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    run_inference(oriented_inputs, tmp_path, random_checkpoint)
    for nifti in sorted(oriented_inputs.glob("*.nii*")):
        case = nifti.name.split(".nii")[0]
        source = nib.load(str(nifti))
        _assert_on_grid(tmp_path / case / f"{case}_seg.nii.gz", source.shape, source.affine)
        report = json.loads((tmp_path / case / f"{case}_report.json").read_text())
        assert report["case"] == case and "liver_volume_ml" in report
        assert (tmp_path / case / f"{case}_overlay.png").stat().st_size > 0
    # NRRD and MHA (read by ITK): the same image as the LPS NIfTI, so exactly its grid
    lps = nib.load(str(oriented_inputs / "phantom_LPS.nii.gz"))
    for case in ("phantom_nrrd", "phantom_mha"):
        _assert_on_grid(tmp_path / case / f"{case}_seg.nii.gz", lps.shape, lps.affine)


def _world_corners(img: nib.Nifti1Image) -> set[tuple[float, ...]]:
    """The world positions (mm, rounded to 0.1) of the 8 corner voxels of an image's grid."""
    ends = [(0, n - 1) for n in img.shape[:3]]
    corners = np.array([[i, j, k, 1.0] for i in ends[0] for j in ends[1] for k in ends[2]]).T
    return {tuple(np.round(p, 1)) for p in (img.affine @ corners)[:3].T}


def test_the_same_anatomy_gives_the_same_segmentation_in_world_space(
    oriented_inputs: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    """RAS, LAS and LPS files of one phantom: after reorienting the outputs, the label maps are identical."""
    folder = tmp_path / "in"
    folder.mkdir()
    for code in ("RAS", "LAS", "LPS"):
        shutil.copy(oriented_inputs / f"phantom_{code}.nii.gz", folder)
    run_inference(folder, tmp_path / "out", random_checkpoint)
    canonical = [
        np.asanyarray(nib.as_closest_canonical(nib.load(str(p))).dataobj)
        for p in sorted((tmp_path / "out").glob("*/*_seg.nii.gz"))
    ]
    assert len(canonical) == 3
    assert all(np.array_equal(canonical[0], other) for other in canonical[1:])


@pytest.mark.real_data
def test_real_scanner_files_come_back_on_their_own_grid(
    real_data_dir: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("ts-ct-sm_volume.nii.gz", "lits-resized_volume.nii", "dcmqi-3slice_volume.nii.gz"):
        shutil.copy(real_data_dir / "nifti" / name, folder)
    shutil.copytree(real_data_dir / "dicom" / "ts_ct_dicom", folder / "ts_ct_dicom")
    run_inference(folder, tmp_path / "out", random_checkpoint)
    for name in ("ts-ct-sm_volume", "lits-resized_volume", "dcmqi-3slice_volume"):
        source = nib.load(str(real_data_dir / "nifti" / (name + (".nii" if "lits" in name else ".nii.gz"))))
        _assert_on_grid(tmp_path / "out" / name / f"{name}_seg.nii.gz", source.shape, source.affine)
    # the DICOM series (read by ITK): its liver label, a NIfTI in LAS, covers exactly the same voxel positions
    label = nib.load(str(real_data_dir / "dicom" / "ts_ct_dicom_liver.nii.gz"))
    seg = nib.load(str(tmp_path / "out" / "ts_ct_dicom" / "ts_ct_dicom_seg.nii.gz"))
    assert sorted(seg.shape) == sorted(label.shape) == [20, 512, 512]
    assert _world_corners(seg) == _world_corners(label)


def test_probability_maps_and_test_time_mirroring_flags(
    oriented_inputs: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    """save_probabilities writes 3 float channels on the input's grid that sum to 1; mirror_axes changes them."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(oriented_inputs / "phantom_LAS.nii.gz", folder)
    maps = {}
    for name, mirror in (("plain", []), ("mirrored", [0, 1])):
        run_inference(folder, tmp_path / name, random_checkpoint, save_probabilities=True, mirror_axes=mirror)
        source = nib.load(str(folder / "phantom_LAS.nii.gz"))
        _assert_on_grid(tmp_path / name / "phantom_LAS" / "phantom_LAS_seg.nii.gz", source.shape, source.affine)
        probs = nib.load(str(tmp_path / name / "phantom_LAS" / "phantom_LAS_probabilities.nii.gz"))
        np.testing.assert_allclose(probs.affine, source.affine, atol=1e-3)
        maps[name] = np.asanyarray(probs.dataobj)
        assert maps[name].dtype == np.float32 and maps[name].shape == (*source.shape, 3)
        np.testing.assert_allclose(maps[name].sum(-1), 1.0, atol=1e-3)
    assert np.abs(maps["plain"] - maps["mirrored"]).max() > 1e-4
