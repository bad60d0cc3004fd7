"""Inference copies (bundle.networks.folding): BatchNorms folded into the convolution before them, same outputs,
the original network untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from bundle.networks import CoarseLiverNet, HDenseUNet
from bundle.networks.folding import fold_batch_norms, inference_copy
from bundle.networks.hybrid_inferer import HybridSlidingWindowInferer
from bundle.networks.presets import dense2d_config, dense3d_config
from bundle.perf import FlopCounter


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small nets on a shared machine: faster in wall time, same result
    yield
    torch.set_num_threads(threads)


def with_running_stats(net: nn.Module) -> nn.Module:
    """Eval-mode ``net`` whose BatchNorms have non-trivial statistics and affine parameters (so folding matters)."""
    torch.manual_seed(0)
    for m in net.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    return net.eval()


def batch_norms(net: nn.Module) -> int:
    return sum(isinstance(m, _BatchNorm) for m in net.modules())


def test_hdenseunet_copy_gives_the_same_output_and_leaves_the_original_alone():
    torch.manual_seed(0)
    net = with_running_stats(HDenseUNet(size="small"))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fast = inference_copy(net)
    # per DenseUNet: stem, one per micro-block (conv1 -> norm2), one per decoder level; and the HFF conv
    blocks2d, blocks3d = (sum(config("small")["block_config"]) for config in (dense2d_config, dense3d_config))
    assert batch_norms(net) - batch_norms(fast) == (1 + blocks2d + 5) + (1 + blocks3d + 5) + 1
    assert fast.dense3d.decoder[0].conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert fast.dense2d.features.conv0.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(1, 1, 64, 32, 8)
    with torch.no_grad():
        expected = net(x)
    assert torch.allclose(HybridSlidingWindowInferer((0, 0, 8))(x, fast), expected, atol=1e-4)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())


def test_coarse_unet_copy_folds_every_batch_norm_and_gives_the_same_output():
    torch.manual_seed(0)
    net = with_running_stats(CoarseLiverNet(size="small").unet)
    fast = inference_copy(net)
    assert batch_norms(net) > 0 and batch_norms(fast) == 0  # MONAI Convolution: conv -> ADN(N, D, A), all folded
    x = torch.rand(2, 3, 48, 40)
    with torch.no_grad():
        assert torch.allclose(fast(x.contiguous(memory_format=torch.channels_last)), net(x), atol=1e-5)


def test_only_batch_norms_right_after_a_conv_are_folded():
    torch.manual_seed(0)
    pre_activation = with_running_stats(nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 4, 3)))
    after_act = with_running_stats(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)))
    through_dropout = with_running_stats(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout(0.5), nn.BatchNorm2d(4)))
    x = torch.rand(2, 3, 9, 9)
    for net, folded in ((pre_activation, 0), (after_act, 0), (through_dropout, 1)):
        with torch.no_grad():
            expected = net(x)
        assert fold_batch_norms(net) == folded
        with torch.no_grad():
            assert torch.allclose(net(x), expected, atol=1e-5)


def test_copy_drops_the_hooks_and_a_global_counter_still_counts_it():
    net = with_running_stats(CoarseLiverNet(size="small").unet)
    calls = []
    net.model[0].conv.unit0.conv.register_forward_hook(lambda *a: calls.append(1))
    fast = inference_copy(net)
    x = torch.rand(1, 3, 32, 32)
    with FlopCounter(net) as own, FlopCounter() as everywhere, torch.no_grad():
        fast(x)
    assert calls == [] and own.flops == 0 and everywhere.flops > 0


def test_training_mode_is_refused():
    with pytest.raises(ValueError, match="eval mode"):
        inference_copy(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
