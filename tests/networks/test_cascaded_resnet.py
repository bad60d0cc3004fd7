"""CascadedResNet: Table 1 (convs, strides, dilations, parameter count), the cascade's use of the previous
probabilities, multi-scale fusion in eval mode only, shapes, size checks, gradients, TorchScript."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn as nn

from bundle.networks.cascaded_resnet import CascadedResNet, _PreActBlock

logger = logging.getLogger(__name__)

# Table 1 of Bi et al. 2017, row by row: ([(kernel, width, stride, dilation), ...] per block, number of blocks).
TABLE1_ROWS = [
    ([(3, 128, 2, 1), (3, 128, 1, 1)], 1),
    ([(3, 128, 1, 1), (3, 128, 1, 1)], 2),
    ([(3, 256, 2, 1), (3, 256, 1, 1)], 1),
    ([(3, 256, 1, 1), (3, 256, 1, 1)], 2),
    ([(3, 512, 2, 1), (3, 512, 1, 1)], 1),
    ([(3, 512, 1, 1), (3, 512, 1, 1)], 5),
    ([(3, 512, 1, 1), (3, 1024, 1, 2)], 1),
    ([(3, 512, 1, 2), (3, 1024, 1, 2)], 2),
    ([(1, 512, 1, 1), (3, 1024, 1, 4), (1, 2048, 1, 1)], 1),
    ([(1, 1024, 1, 1), (3, 2048, 1, 4), (1, 4096, 1, 1)], 1),
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Two OpenMP threads on a 2-core machine shared with other jobs spin against each other (10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def table1_param_count(in_channels: int, out_channels: int) -> int:
    """Parameters of one step counted by hand from Table 1: pre-activation blocks (a BN before every conv, 1x1
    projection shortcut where stride or width change), then BN-ReLU, 3x3 conv 512 (dilation 12), BN-ReLU, 3x3
    classifier (dilation 12, with bias). Convs before a BN carry no bias."""
    total = 9 * in_channels * 64  # 3x3, 64, stride 1
    c = 64
    for convs, number in TABLE1_ROWS:
        for _ in range(number):
            c_in = c
            for kernel, width, _stride, _dilation in convs:
                total += 2 * c + kernel * kernel * c * width
                c = width
            if c_in != c or convs[0][2] != 1:
                total += c_in * c
    return total + 2 * c + 9 * c * 512 + 2 * 512 + 9 * 512 * out_channels + out_channels


def test_paper_table1():
    with torch.device("meta"):
        net = CascadedResNet()
    expected_convs = [conv for convs, number in TABLE1_ROWS for _ in range(number) for conv in convs]
    step = net.steps[0]
    found = [
        (m.kernel_size[0], m.out_channels, m.stride[0], m.dilation[0])
        for block in step.stages
        if isinstance(block, _PreActBlock)
        for m in block.body
        if isinstance(m, nn.Conv2d)
    ]
    assert found == expected_convs
    head = [m for m in step.head if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.dilation[0]) for m in head] == [(512, 12), (3, 12)]
    assert net.size_divisor == 8  # 504 -> 63
    counts = net.step_parameter_counts()
    expected = [table1_param_count(1, 3), table1_param_count(1 + 2, 3)]  # step 2 adds the liver/tumor maps
    logger.info("CascadedResNet paper: %s parameters per step (Bi et al. give no figure)", counts)
    print(f"CascadedResNet paper: {counts} parameters per step, {sum(counts):,} in all (no figure in the paper)")
    assert counts == expected
    assert net.num_cascade_steps == 2 and net.steps[1].stem.in_channels == 3


@pytest.mark.parametrize("shape", [(1, 1, 224, 224, 12), (2, 1, 64, 48, 3)])
def test_small_shapes(shape):
    net = CascadedResNet(size="small").eval()
    with torch.no_grad():
        assert net(torch.rand(shape)).shape == (shape[0], 3, *shape[2:])
    net.train()
    x = torch.rand(2, 1, 32, 32, 2)
    assert net(x).shape == (2, 2, 3, 32, 32, 2)  # training: every step's logits, last first


def test_stacks_and_steps():
    net = CascadedResNet(size="small", num_cascade_steps=3, num_adjacent_slices=3).eval()
    assert [s.stem.in_channels for s in net.steps] == [3, 5, 5]
    with torch.no_grad():
        assert net(torch.rand(1, 1, 32, 32, 4)).shape == (1, 3, 32, 32, 4)


def test_errors():
    net = CascadedResNet(size="small")
    with pytest.raises(ValueError, match="H and W must be divisible by 8"):
        net(torch.rand(1, 1, 60, 64, 2))
    with pytest.raises(ValueError, match=r"expects \(N, 1, H, W, D\)"):
        net(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match="num_cascade_steps must be at least 1"):
        CascadedResNet(size="small", num_cascade_steps=0)
    with pytest.raises(ValueError, match="test_scales must be positive"):
        CascadedResNet(size="small", test_scales=(1.0, 0.0))


def test_cascade_uses_previous_probabilities():
    """Changing step 1's classifier changes what step 2 sees (its extra input channels) and its output."""
    torch.manual_seed(0)
    net = CascadedResNet(size="small").eval()
    seen: list[torch.Tensor] = []
    net.steps[1].register_forward_pre_hook(lambda _, args: seen.append(args[0].clone()))
    x = torch.rand(1, 1, 32, 32, 2)
    with torch.no_grad():
        before = net(x)
        net.steps[0].head[-1].bias.add_(torch.tensor([0.0, 2.0, -1.0]))
        after = net(x)
    assert torch.equal(seen[0][:, :1], seen[1][:, :1])  # the image channel is the same
    assert not torch.allclose(seen[0][:, 1:], seen[1][:, 1:])  # the liver and tumor probabilities changed
    assert not torch.allclose(before, after)


def test_multiscale_only_in_eval():
    torch.manual_seed(0)
    net = CascadedResNet(size="small")
    x = torch.rand(1, 1, 32, 32, 2)
    net.train()
    with torch.no_grad():
        single = net(x)
        net.multiscale_test = True
        assert torch.equal(net(x), single)
    net.eval()
    with torch.no_grad():
        fused = net(x)
        net.multiscale_test = False
        plain = net(x)
        assert fused.shape == plain.shape == (1, 3, 32, 32, 2)
        assert not torch.allclose(fused, plain)
        assert torch.allclose(fused.exp().sum(1), torch.ones(1, 32, 32, 2), atol=1e-5)  # log-probabilities
        one_scale = CascadedResNet(size="small", multiscale_test=True, test_scales=(1.0,))
        one_scale.load_state_dict(net.state_dict())
        assert torch.allclose(one_scale.eval()(x), torch.log_softmax(plain, 1), atol=1e-5)


@pytest.mark.parametrize("detach", [True, False])
def test_gradients(detach):
    torch.manual_seed(0)
    net = CascadedResNet(size="small", detach_probabilities=detach).train()
    x = torch.rand(2, 1, 32, 32, 2, requires_grad=True)
    target = torch.randint(0, 3, (2, 32, 32, 2))
    out = net(x)
    ce = nn.CrossEntropyLoss()
    ce(out[:, 0], target).backward(retain_graph=True)  # the last step's loss alone
    # the stack sends zeros to step 1's own output, so step 1 gets nonzero gradients only through the probabilities
    step1_reached = any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.steps[0].parameters())
    assert step1_reached != detach
    net.zero_grad()
    (ce(out[:, 0], target) + ce(out[:, 1], target)).backward()  # one loss per step
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_torchscript(tmp_path):
    net = CascadedResNet(size="small", multiscale_test=True).eval()
    torch.jit.save(torch.jit.script(net), tmp_path / "cascaded_resnet.ts")
    loaded = torch.jit.load(tmp_path / "cascaded_resnet.ts")
    x = torch.rand(1, 1, 32, 32, 2)
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x), atol=1e-5)
