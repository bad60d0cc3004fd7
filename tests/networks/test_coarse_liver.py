"""CoarseLiverNet: 2.5D residual U-Net, volume in, volume logits out, 3 or 5 adjacent slices, TorchScript."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn as nn

from bundle.networks import CoarseLiverNet

logger = logging.getLogger(__name__)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_size():
    net = CoarseLiverNet().eval()
    convs = sum(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for m in net.modules())
    logger.info("CoarseLiverNet paper: %d conv layers, %.2fM parameters", convs, count_params(net) / 1e6)
    assert net.size_divisor == 16
    assert count_params(net) == 6_501_324  # the model card's 6.5 M
    with torch.no_grad():
        assert net(torch.rand(1, 1, 32, 32, 2)).shape == (1, 2, 32, 32, 2)


@pytest.mark.parametrize("num_adjacent_slices", [3, 5])
@pytest.mark.parametrize("shape", [(1, 1, 64, 64, 8), (2, 1, 32, 48, 1)])
def test_small_shapes(num_adjacent_slices, shape):
    net = CoarseLiverNet(size="small", num_adjacent_slices=num_adjacent_slices).eval()
    assert net.unet.model[0].conv.unit0.conv.in_channels == num_adjacent_slices
    with torch.no_grad():
        assert net(torch.rand(shape)).shape == (shape[0], 2, *shape[2:])


def test_slices_are_independent_samples():
    """Each output slice depends only on its own stack: changing slice 0 leaves slices >= 2 unchanged (3-stack)."""
    net = CoarseLiverNet(size="small").eval()
    x = torch.rand(1, 1, 32, 32, 6)
    y = x.clone()
    y[..., 0] = 0
    with torch.no_grad():
        a, b = net(x), net(y)
    assert torch.allclose(a[..., 2:], b[..., 2:]) and not torch.allclose(a[..., :2], b[..., :2])


def test_errors():
    net = CoarseLiverNet(size="small")
    with pytest.raises(ValueError, match="H and W must be divisible by 8"):
        net(torch.rand(1, 1, 36, 32, 4))
    with pytest.raises(ValueError, match=r"expects \(N, 1, H, W, D\)"):
        net(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="positive odd number"):
        CoarseLiverNet(size="small", num_adjacent_slices=4)
    with pytest.raises(ValueError, match="network size must be one of"):
        CoarseLiverNet(size="huge")


def test_gradients():
    net = CoarseLiverNet(size="small").train()
    net(torch.rand(2, 1, 32, 32, 3)).square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("num_adjacent_slices", [3, 5])
def test_torchscript(tmp_path, num_adjacent_slices):
    net = CoarseLiverNet(size="small", num_adjacent_slices=num_adjacent_slices).eval()
    torch.jit.save(torch.jit.script(net), tmp_path / "coarse.ts")
    loaded = torch.jit.load(tmp_path / "coarse.ts")
    x = torch.rand(1, 1, 32, 64, 5)
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x), atol=1e-5)
