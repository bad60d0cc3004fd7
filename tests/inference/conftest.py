"""Fixtures of the inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bundle.networks import LiverTumorCascade


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cascade with random weights: grids, files and failures do not depend on what a network learnt."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    torch.save(LiverTumorCascade(size="small").state_dict(), path)
    return path
