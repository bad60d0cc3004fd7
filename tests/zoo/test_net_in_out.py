"""`monai.bundle verify_net_in_out` on configs/inference.yaml: ``network_def`` is the whole cascade, and the
metadata's ``network_data_format`` (any spatial shape in and the same shape out, 3 channels, float32) is true."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from monai.bundle import ConfigParser

from tests.engines.bundle_runs import META, REPO

INFERENCE = str(REPO / "configs" / "inference.yaml")


def test_verify_net_in_out_command_passes_on_the_cascade() -> None:
    """The command as the model card gives it (small networks here): a random ``(1, 1, 24, 24, 24)`` volume through
    coarse liver network → ROI → H-DenseUNet; MONAI checks the output's channels and dtype against metadata.json."""
    command = [sys.executable, "-m", "monai.bundle", "verify_net_in_out", "network_def"]
    command += ["--meta_file", META, "--config_file", INFERENCE, "--device", "cpu", "--any", "24"]
    command += ["--network_size", "small"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "data shape of network is verified with no error" in result.stdout + result.stderr


@pytest.mark.parametrize("shape", [(1, 1, 1), (37, 23, 5), (70, 64, 13)])
def test_the_cascade_takes_any_shape_as_the_metadata_says(shape: tuple[int, int, int]) -> None:
    """``spatial_shape: ["*", "*", "*"]``, ``is_patch_data: false``: network_def from the config, odd shapes in,
    log-probabilities of 3 classes on the same grid out."""
    torch.set_num_threads(2)
    parser = ConfigParser()
    parser.read_config(INFERENCE)
    parser.read_meta(META)
    parser["network_size"] = "small"
    parser["patch_size"] = [64, 64, 8]
    pred = json.loads((REPO / "configs" / "metadata.json").read_text())["network_data_format"]["outputs"]["pred"]
    net = parser.get_parsed_content("network_def").eval()
    torch.manual_seed(0)
    with torch.no_grad():
        out = net(torch.rand(1, 1, *shape))
    assert out.shape == (1, pred["num_channels"], *shape) and out.dtype == torch.float32
    torch.testing.assert_close(out.exp().sum(1), torch.ones(1, *shape))
