"""FLOP counting (bundle.perf.flops) against hand counts: single layers and a tiny DenseUNet."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bundle.networks import DenseUNet, HDenseUNet
from bundle.perf import FlopCounter, count_flops


@pytest.mark.parametrize(
    "layer, shape, macs",
    [
        (nn.Conv2d(3, 8, 3, padding=1), (2, 3, 16, 16), 2 * 8 * 16 * 16 * 3 * 9),
        (nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2), (1, 8, 10, 10), 16 * 5 * 5 * 4 * 9),
        (nn.Conv3d(4, 6, 3, padding=1), (1, 4, 8, 8, 5), 6 * 8 * 8 * 5 * 4 * 27),
        (nn.Conv3d(4, 6, (3, 3, 1)), (1, 4, 8, 8, 5), 6 * 6 * 6 * 5 * 4 * 9),
        (nn.ConvTranspose2d(4, 2, 2, stride=2), (1, 4, 5, 5), 4 * 5 * 5 * 2 * 4),
        (nn.Linear(10, 5), (3, 10), 3 * 5 * 10),
        (nn.BatchNorm2d(3), (1, 3, 4, 4), 0),
    ],
    ids=["conv2d", "conv2d-strided-grouped", "conv3d", "conv3d-anisotropic", "transposed", "linear", "batchnorm"],
)
def test_single_layers(layer, shape, macs):
    assert count_flops(layer, shape) == 2 * macs
    with FlopCounter(layer) as counter:
        layer(torch.rand(shape))
    assert counter.flops == 2 * macs


def tiny_denseunet() -> DenseUNet:
    return DenseUNet(
        2, 1, 2, init_features=4, growth_rate=2, block_config=(1, 1), bn_size=1, decoder_channels=(4, 4, 4)
    )


def test_tiny_denseunet_hand_count():
    """32x32 input; every conv of the plan (see bundle/networks/denseunet.py) counted by hand."""
    macs = {
        "stem 7x7 1->4 at 16x16": 4 * 16 * 16 * 1 * 49,
        "block1 1x1 4->2 at 8x8": 2 * 64 * 4,
        "block1 3x3 2->2": 2 * 64 * 2 * 9,
        "transition 1x1 6->3 at 8x8": 3 * 64 * 6,
        "block2 1x1 3->2 at 4x4": 2 * 16 * 3,
        "block2 3x3 2->2": 2 * 16 * 2 * 9,
        "level1 skip projection 1x1 6->5 at 8x8": 5 * 64 * 6,
        "level1 3x3 5->4": 4 * 64 * 5 * 9,
        "level2 3x3 4->4 at 16x16": 4 * 256 * 4 * 9,
        "level3 3x3 4->4 at 32x32": 4 * 1024 * 4 * 9,
        "classifier 1x1 4->2": 2 * 1024 * 4,
    }
    net = tiny_denseunet().eval()
    assert count_flops(net, (1, 1, 32, 32)) == 2 * sum(macs.values())
    assert count_flops(net, (1, 1, 32, 32), method="forward_features") == 2 * (
        sum(macs.values()) - macs["classifier 1x1 4->2"]
    )


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small net on a shared machine: faster in wall time, same result
    yield
    torch.set_num_threads(threads)


def test_matches_torch_flop_counter_and_leaves_the_model_alone(one_thread):
    """Same count as PyTorch's dispatch-level counter on a real run; count_flops computes nothing on the model."""
    torch.manual_seed(0)
    net = HDenseUNet(size="small").eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(1, 1, 64, 64, 8)
    with FlopCounterMode(display=False) as reference, FlopCounter(net) as hooks, FlopCounter() as everywhere:
        with torch.no_grad():
            net(x)
    assert count_flops(net, x.shape) == hooks.flops == everywhere.flops == reference.get_total_flops()
    assert hooks.by_type.keys() == {"Conv2d", "Conv3d"} and hooks.calls > 0
    assert all(torch.equal(v, net.state_dict()[k]) and v.device.type == "cpu" for k, v in before.items())


def test_global_counter_counts_modules_created_during_the_run(one_thread):
    """FlopCounter() hooks every module, also copies made inside the counted code (the cascade's inference
    copies); FlopCounter(net) sees only net's own modules."""
    net = nn.Conv2d(3, 8, 3, padding=1)
    x = torch.rand(1, 3, 16, 16)
    with FlopCounter(net) as own, FlopCounter() as everywhere, torch.no_grad():
        nn.Conv2d(3, 8, 3, padding=1)(x)
    assert own.flops == 0 and everywhere.flops == count_flops(net, x.shape) > 0
    with FlopCounter() as after:
        pass
    nn.Conv2d(3, 8, 3)(x)  # outside the block: not counted (the global hook was removed)
    assert after.flops == 0
