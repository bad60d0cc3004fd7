"""`monai.bundle ckpt_export` (TorchScript) and `onnx_export` on configs/inference.yaml, run as commands, then the
exported files loaded (torch.jit.load, onnxruntime) and compared with the eager network; and large_files.yml.

What is exported: ``network_def`` is ``LiverTumorCascade``; its ROI search is data-dependent Python, so every
export path gives the liver/tumor network (H-DenseUNet, fused logits, eval mode) for one patch as ``forward``,
with the coarse liver network as ``coarse_logits`` in the TorchScript file (see docs/README.md).

The reference is the eager network exactly as ``python -m monai.bundle run --config_file configs/inference.yaml``
builds and calls it (``network_def`` parsed from that config with its defaults, called by its ``inferer``): the
fast path (coarse network on whole slices, H-DenseUNet's 2D branch once per slice, 3D windows blended with a
Gaussian, BatchNorms folded). Every comparison asserts a max absolute difference below ``TOLERANCE`` (1e-4), the
figure docs/README.md states.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
import yaml
from monai.bundle import ConfigParser, download_large_files

from bundle.networks import LiverTumorCascade
from tests.engines.bundle_runs import META, REPO

pytestmark = pytest.mark.slow

INFERENCE = str(REPO / "configs" / "inference.yaml")
PATCH = [64, 64, 8]  # the exported patch size of these tests (the paper's is 224 x 224 x 12)
SMALL = ["--network_size", "small", "--patch_size", json.dumps(PATCH)]
TOLERANCE = 1e-4


def _monai_bundle(*args: str) -> None:
    """``python -m monai.bundle ARGS`` from the bundle root, as a user types it."""
    result = subprocess.run(
        [sys.executable, "-m", "monai.bundle", *args], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle root holding models/model.pt: the small cascade with random weights (seeded)."""
    root = tmp_path_factory.mktemp("zoo_export")
    (root / "models").mkdir()
    torch.manual_seed(0)
    torch.save(LiverTumorCascade(size="small").state_dict(), root / "models" / "model.pt")
    return root


def _inference_config(bundle_dir: Path) -> ConfigParser:
    """configs/inference.yaml with the overrides of these tests, as ``monai.bundle run`` reads it."""
    parser = ConfigParser()
    parser.read_config(INFERENCE)
    parser.update({"bundle_root": str(bundle_dir), "network_size": "small", "patch_size": PATCH, "device": "cpu"})
    return parser


@pytest.fixture(scope="module")
def eager(bundle_dir: Path) -> LiverTumorCascade:
    """The same checkpoint in eager PyTorch: ``network`` of configs/inference.yaml, as `monai.bundle run` builds it
    (its defaults: ``fast_inference``, ``fine_spacing``, ``restrict_to_coarse``, ...)."""
    torch.set_num_threads(2)
    net = _inference_config(bundle_dir).get_parsed_content("network")
    net.load_state_dict(torch.load(bundle_dir / "models" / "model.pt", map_location="cpu", weights_only=True))
    assert net.fast_inference, "configs/inference.yaml runs the fast path by default"
    return net.eval()


@pytest.fixture(scope="module")
def torchscript(bundle_dir: Path) -> Path:
    models = bundle_dir / "models"
    _monai_bundle(
        "ckpt_export", "network_def", "--filepath", str(models / "model.ts"), "--ckpt_file", str(models / "model.pt"),
        "--meta_file", META, "--config_file", INFERENCE, *SMALL,
    )  # fmt: skip
    return models / "model.ts"


@pytest.fixture(scope="module")
def onnx_file(bundle_dir: Path) -> Path:
    models = bundle_dir / "models"
    names = {"input_names": ["image"], "output_names": ["pred"], "dynamic_axes": {"image": {0: "batch"}}}
    _monai_bundle(
        "onnx_export", "network_def", "--filepath", str(models / "model.onnx"), "--ckpt_file", str(models / "model.pt"),
        "--meta_file", META, "--config_file", INFERENCE, "--input_shape", json.dumps([1, 1, *PATCH]),
        "--converter_kwargs", repr(names), *SMALL,
    )  # fmt: skip
    return models / "model.onnx"


def _patches() -> torch.Tensor:
    """Two HU-windowed patches ``(2, 1, 64, 64, 8)`` in [0, 1]."""
    return torch.rand(2, 1, *PATCH, generator=torch.Generator().manual_seed(1))


def test_torchscript_export_matches_the_eager_networks(torchscript: Path, eager: LiverTumorCascade) -> None:
    extra = {"metadata.json": "", "inference.json": ""}
    ts = torch.jit.load(str(torchscript), map_location="cpu", _extra_files=extra)
    assert json.loads(extra["metadata.json"])["network_data_format"]["outputs"]["pred"]["num_channels"] == 3
    assert json.loads(extra["inference.json"])["network_def"]["_target_"] == "bundle.networks.LiverTumorCascade"
    assert tuple(ts.patch_size) == tuple(PATCH)
    x = _patches()
    with torch.no_grad():
        fine_diff = (ts(x) - eager.fine(x)).abs().max().item()
        coarse_diff = (ts.coarse_logits(x) - eager.coarse(x)).abs().max().item()
    print(f"model.ts forward vs eager H-DenseUNet: max |diff| = {fine_diff:.3g}")
    print(f"model.ts coarse_logits vs eager coarse network: max |diff| = {coarse_diff:.3g}")
    assert ts(x).shape == (2, 3, *PATCH)
    assert fine_diff < TOLERANCE and coarse_diff < TOLERANCE


def _compare_cascades(exported: LiverTumorCascade, eager: LiverTumorCascade, inferer, volume: torch.Tensor) -> float:
    """Max |difference| of the log-probabilities both cascades return for ``volume`` through ``inferer``."""
    with torch.no_grad():
        out, reference = inferer(volume, exported), inferer(volume, eager)
    assert out.shape == reference.shape == (1, 3, *volume.shape[2:])
    return (out - reference).abs().max().item()


def test_the_whole_cascade_on_the_torchscript_networks_matches_monai_bundle_run(
    torchscript: Path, eager: LiverTumorCascade, bundle_dir: Path, phantom_dir: Path
) -> None:
    """LiverTumorCascade.from_torchscript: the exported networks inside the Python ROI search, on the path
    `monai.bundle run --config_file configs/inference.yaml` runs (the settings travel in model.ts), against that
    command's eager network and inferer: a CT phantom through the config's own preprocessing (RAS, HU window,
    its voxel size from the affine) and a plain volume of odd size (1 mm voxels: plain tensors carry no affine)."""
    config = _inference_config(bundle_dir)
    cascade = LiverTumorCascade.from_torchscript(torch.jit.load(str(torchscript), map_location="cpu"))
    assert cascade.fast_inference and cascade.fine_spacing == tuple(eager.fine_spacing)
    assert cascade.restrict_to_coarse == eager.restrict_to_coarse and cascade.hybrid_window == eager.hybrid_window
    inferer = config.get_parsed_content("inferer")
    phantom = str(sorted(phantom_dir.glob("volume-*"))[0])
    image = config.get_parsed_content("preprocessing")({"image": phantom})["image"][None]
    odd = torch.rand(1, 1, 50, 37, 9, generator=torch.Generator().manual_seed(2))
    for name, volume in (("phantom " + Path(phantom).name, image), ("odd-size volume", odd)):
        diff = _compare_cascades(cascade, eager, inferer, volume)
        print(f"cascade on model.ts vs monai.bundle run's eager cascade, {name} {tuple(volume.shape[2:])}: "
              f"max |diff| of the log-probabilities = {diff:.3g}")  # fmt: skip
        assert diff < TOLERANCE, name


def test_onnx_export_matches_the_eager_network_in_onnxruntime(onnx_file: Path, eager: LiverTumorCascade) -> None:
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (image,), (pred,) = session.get_inputs(), session.get_outputs()
    assert (image.name, image.shape) == ("image", ["batch", 1, *PATCH])  # dynamic batch, fixed patch
    assert (pred.name, pred.shape) == ("pred", ["batch", 3, *PATCH])
    x = _patches()
    (out,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        diff = float(np.abs(out - eager.fine(x).numpy()).max())
    print(f"model.onnx (onnxruntime) vs eager H-DenseUNet: max |diff| = {diff:.3g}")
    assert diff < TOLERANCE


@pytest.mark.filterwarnings("ignore:No hash value provided")  # model.ts and model.onnx are not released
def test_large_files_yml_lists_every_model_file_for_monai_download(
    tmp_path: Path, torchscript: Path, onnx_file: Path
) -> None:
    """large_files.yml at the bundle root, where `monai.bundle download_large_files` and the zoo's CI look: the
    released models/model.pt with its md5; with the files present MONAI reads it, checks them and downloads nothing."""
    entries = yaml.safe_load((REPO / "large_files.yml").read_text())["large_files"]
    assert [e["path"] for e in entries] == ["models/model.pt", "models/model.ts", "models/model.onnx"]
    assert all(set(e) == {"path", "url", "hash_val", "hash_type"} and e["hash_type"] == "md5" for e in entries)
    released = REPO / "models" / "model.pt"
    assert entries[0]["hash_val"] == hashlib.md5(released.read_bytes()).hexdigest()
    (tmp_path / "models").mkdir()
    shutil.copy(REPO / "large_files.yml", tmp_path)
    for source in (released, torchscript, onnx_file):
        shutil.copy(source, tmp_path / "models" / source.name)
    before = {e["path"]: hashlib.md5((tmp_path / e["path"]).read_bytes()).hexdigest() for e in entries}
    download_large_files(bundle_path=str(tmp_path))
    assert before == {p: hashlib.md5((tmp_path / p).read_bytes()).hexdigest() for p in before}
