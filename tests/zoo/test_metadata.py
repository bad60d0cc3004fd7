"""configs/metadata.json holds what the MONAI bundle specification requires and validates offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
METADATA = REPO / "configs" / "metadata.json"
SCHEMA = REPO / "tests" / "resources" / "meta_schema_20240725.json"


@pytest.fixture(scope="module")
def metadata() -> dict:
    return json.loads(METADATA.read_text())


def test_required_fields_of_the_specification(metadata: dict) -> None:
    schema = json.loads(SCHEMA.read_text())
    missing = [key for key in schema["required"] if key not in metadata]
    assert not missing, f"metadata.json lacks required keys {missing}"
    for key in ("changelog", "intended_use", "data_source", "references"):
        assert metadata[key], key
    assert metadata["version"] in metadata["changelog"]
    assert metadata["schema"].endswith(SCHEMA.name)


def test_pinned_versions_match_requirements(metadata: dict) -> None:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.lower()] = version
    assert metadata["monai_version"] == pins["monai"]
    assert metadata["pytorch_version"] == pins["torch"]
    for name, version in metadata["required_packages_version"].items():
        assert pins.get(name.lower()) == version, name


def test_network_data_format(metadata: dict) -> None:
    """network_def is the whole cascade: any volume in, log-probabilities on the same grid out (no patches);
    tests/zoo/test_net_in_out.py runs it on odd shapes."""
    image = metadata["network_data_format"]["inputs"]["image"]
    pred = metadata["network_data_format"]["outputs"]["pred"]
    assert (image["num_channels"], image["format"], image["dtype"]) == (1, "hounsfield", "float32")
    assert image["spatial_shape"] == pred["spatial_shape"] == ["*", "*", "*"]
    assert image["is_patch_data"] is pred["is_patch_data"] is False
    assert (pred["num_channels"], pred["dtype"]) == (3, "float32")
    assert pred["channel_def"] == {"0": "background", "1": "liver", "2": "tumor"}


def test_references_name_the_four_papers(metadata: dict) -> None:
    text = " ".join(metadata["references"])
    for needle in ("H-DenseUNet", "3D-DenseUNet-569", "RA-UNet", "Cascaded Deep Residual Networks"):
        assert needle in text


def test_verify_metadata_offline_against_the_vendored_schema() -> None:
    """`verify_metadata --filepath` pointing at an existing schema file downloads nothing."""
    result = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "verify_metadata", f"--meta_file={METADATA}", f"--filepath={SCHEMA}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "metadata is verified with no error" in result.stdout + result.stderr


def test_package_version_is_the_bundle_version(metadata: dict) -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == metadata["version"], "pyproject.toml and configs/metadata.json disagree"
