"""RAUNet: Tables II and III (widths, attention depths), parameter counts vs the paper, 2D slice-wise and 3D
shapes, size checks, gradients with a Dice loss, TorchScript."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn as nn
from monai.losses import DiceLoss

from bundle.networks.raunet import RAUNet, RAUNet2D, RAUNet3D, _SoftMaskLevel

logger = logging.getLogger(__name__)

# Section IV-B: RA-UNet-II has "only 4M training parameters"; section IV-E: the brain-tumor version of Table VIII
# "has 12M parameters". Both are given to one significant digit, hence a 15% tolerance.
PAPER_PARAMS_II = 4e6
PAPER_PARAMS_BRAIN = 12e6


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Two OpenMP threads on a 2-core machine shared with other jobs spin against each other (10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_parameter_counts():
    with torch.device("meta"):
        stage2 = RAUNet3D()
        brain = RAUNet(3, 4, 1, channels=(32, 64, 128, 256, 512, 512))  # Table VIII: 4 MRI modalities
        stage1 = RAUNet2D()
    n2, nb, n1 = count_params(stage2), count_params(brain), count_params(stage1)
    logger.info("RA-UNet-II %d (paper 4M), brain %d (paper 12M), RA-UNet-I %d (no figure)", n2, nb, n1)
    print(f"RA-UNet-II {n2:,} (paper: 4M); Table VIII brain net {nb:,} (paper: 12M); RA-UNet-I {n1:,} (not given)")
    assert abs(n2 / PAPER_PARAMS_II - 1) < 0.15
    assert abs(nb / PAPER_PARAMS_BRAIN - 1) < 0.15


@pytest.mark.parametrize(
    "spatial_dims, widths",
    [(2, (16, 16, 32, 64, 128, 256)), (3, (32, 32, 64, 128, 256, 512))],  # Table II (RA-UNet-I), III (RA-UNet-II)
)
def test_tables_ii_iii(spatial_dims, widths):
    """Attention depth per decoder level: Att1 on Res4 depth 0, Att2 on Res3 depth 1, Att3 on Res2 depth 2, Att4 on
    Res1 depth 3; decoder widths Res7..Res10 = Res4..Res1; Conv2 = Conv1."""
    with torch.device("meta"):
        net = RAUNet(spatial_dims, 1, 1)
    assert net.attention_depths == [0, 1, 2, 3]
    assert net.conv1.conv.out_channels == widths[0]
    assert [level[-1].conv3.out_channels for level in net.encoder] == list(widths[1:])
    for j, level in enumerate(net.decoder):
        attended = widths[4 - j]  # Res4, Res3, Res2, Res1
        assert level.attention.depth == j
        assert sum(isinstance(m, _SoftMaskLevel) for m in level.attention.modules()) == j + 1  # j skips, j+1 pools
        assert level.attention.res_in.conv1.in_channels == attended
        assert level.res.conv3.out_channels == attended
    assert net.conv2.conv.out_channels == widths[0]
    assert net.size_divisors == [32] * spatial_dims


@pytest.mark.parametrize("shape", [(1, 1, 224, 224, 12), (2, 1, 64, 96, 8)])
def test_small_3d_shapes(shape):
    net = RAUNet3D(size="small").eval()
    with torch.no_grad():
        assert net(torch.rand(shape)).shape == (shape[0], 3, *shape[2:])


@pytest.mark.parametrize("shape", [(1, 1, 224, 224, 12), (2, 1, 64, 32, 3)])
def test_small_2d_slicewise_shapes(shape):
    net = RAUNet2D(size="small").eval()  # stage I: background, liver
    with torch.no_grad():
        assert net(torch.rand(shape)).shape == (shape[0], 2, *shape[2:])


def test_2d_slices_and_stacks():
    net = RAUNet2D(size="small", out_channels=3, num_adjacent_slices=3).eval()
    assert net.net.conv1.conv.in_channels == 3
    x = torch.rand(1, 1, 32, 32, 6)
    y = x.clone()
    y[..., 0] = 0
    with torch.no_grad():
        a, b = net(x), net(y)
    assert a.shape == (1, 3, 32, 32, 6)
    assert torch.allclose(a[..., 2:], b[..., 2:]) and not torch.allclose(a[..., :2], b[..., :2])
    with torch.no_grad():
        assert RAUNet(2, 1, 3, size="small").eval()(torch.rand(2, 1, 64, 64)).shape == (2, 3, 64, 64)


def test_errors():
    with torch.device("meta"):
        paper3d = RAUNet3D()
        with pytest.raises(ValueError, match=r"must be divisible by \[32, 32, 32\]"):
            paper3d(torch.empty(1, 1, 224, 224, 12))  # the bundle's windows need anisotropic pools
    small = RAUNet3D(size="small")
    with pytest.raises(ValueError, match=r"must be divisible by \[32, 32, 4\]"):
        small(torch.rand(1, 1, 224, 224, 10))
    with pytest.raises(ValueError, match=r"expects \(N, 1, H, W, D\)"):
        small(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match=r"expected a volume \(N, 1, H, W, D\)"):
        RAUNet2D(size="small")(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match="positive odd number"):
        RAUNet2D(size="small", num_adjacent_slices=2)
    with pytest.raises(ValueError, match="pool_sizes needs len"):
        RAUNet(3, 1, 3, size="small", pool_sizes=((2, 2, 2),) * 4)


def test_gradients_with_dice_loss():
    torch.manual_seed(0)
    net = RAUNet3D(size="small").train()
    x = torch.rand(1, 1, 64, 64, 8, requires_grad=True)
    target = torch.randint(0, 3, (1, 1, 64, 64, 8))
    loss = DiceLoss(to_onehot_y=True, softmax=True, squared_pred=True)(net(x), target)
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("factory, shape", [(RAUNet3D, (1, 1, 64, 64, 8)), (RAUNet2D, (1, 1, 32, 64, 3))])
def test_torchscript(factory, shape, tmp_path):
    net = factory(size="small").eval()
    torch.jit.save(torch.jit.script(net), tmp_path / "raunet.ts")
    loaded = torch.jit.load(tmp_path / "raunet.ts")
    x = torch.rand(shape)
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x), atol=1e-5)
