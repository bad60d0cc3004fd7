"""What configs/inference.yaml and configs/train.yaml do when MONAI Label drives them, checked without MONAI Label.

MONAI Label 0.8.5 parses the configs itself (monailabel/tasks/infer/bundle.py, monailabel/tasks/train/bundle.py)
and passes none of this bundle's overrides; the bundle sees it through ``MONAI_LABEL_APP_DIR`` (bundle/apps.py).
These tests pin the keys it relies on, so that a config edit that would break the drop-in fails in ``make test``;
test_monailabel_server.py proves the same against the real server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from bundle.apps import MONAILABEL_ENV, driven_by_monailabel
from bundle.inference import SaveCaseImaged, WriteCaseReportd

REPO = Path(__file__).resolve().parents[2]


def _parser(config: str, bundle_root: Path, **overrides: object) -> ConfigParser:
    """The config as MONAI Label loads it: ``bundle_root`` set to the bundle's folder, then its overrides."""
    parser = ConfigParser()
    parser.read_config(str(REPO / "configs" / config))
    parser.config.update({"bundle_root": str(bundle_root), **overrides})  # type: ignore[union-attr]
    return parser


def test_monailabel_is_recognised_by_the_environment_it_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MONAILABEL_ENV, raising=False)
    assert not driven_by_monailabel()
    monkeypatch.setenv(MONAILABEL_ENV, "/srv/app")
    assert driven_by_monailabel()


@pytest.mark.parametrize("under_monailabel", [False, True])
def test_inference_writes_case_files_only_outside_monailabel(
    under_monailabel: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """MONAI Label writes and returns its own label file: the bundle's per-case writers are left out under it."""
    if under_monailabel:
        monkeypatch.setenv(MONAILABEL_ENV, str(tmp_path))
    else:
        monkeypatch.delenv(MONAILABEL_ENV, raising=False)
    post = _parser("inference.yaml", tmp_path, save_probabilities=True).get_parsed_content("postprocessing")
    writers = [t for t in post.transforms if isinstance(t, (SaveCaseImaged, WriteCaseReportd))]
    assert len(writers) == (0 if under_monailabel else 3)


def test_training_under_monailabel_starts_from_the_model_monailabel_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No previous-stage checkpoint is required, and MONAI Label's own CheckpointLoader is not suppressed."""
    monkeypatch.delenv(MONAILABEL_ENV, raising=False)
    assert _parser("train.yaml", tmp_path).get_parsed_content("init_ckpt") == str(tmp_path / "models/hybrid/model.pt")

    monkeypatch.setenv(MONAILABEL_ENV, str(tmp_path))
    parser = _parser("train.yaml", tmp_path)
    assert parser.get_parsed_content("init_ckpt") is None
    # monailabel/tasks/train/bundle.py inserts CheckpointLoader(models/<model_filename>) only if no handler has this
    assert not [h for h in parser.get("train#handlers") if h.get("_target_") == "CheckpointLoader"]


def test_nothing_monailabel_runs_needs_the_bundle_datalist(tmp_path: Path) -> None:
    """MONAI Label replaces ``train#dataset#data`` and ``validate#dataset#data``; nothing else may need ``datalist``
    (it would read ``dataset_dir``, which MONAI Label never sets)."""
    records = [{"image": "a.nii.gz", "label": "a_seg.nii.gz"}]
    parser = _parser("train.yaml", tmp_path)
    parser["train#dataset#data"] = records
    parser["validate#dataset#data"] = records
    rest = {k: v for k, v in parser.get().items() if k != "datalist"}
    assert "@datalist" not in json.dumps(rest)
