"""HybridSlidingWindowInferer: equal to HDenseUNet on one window, the 2D branch once per slice, and the cascade's
inference through it (log-probabilities on the input grid)."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor
from torch import nn

from bundle.networks import CoarseLiverNet, HDenseUNet, LiverTumorCascade
from bundle.networks.hybrid_inferer import HybridSlidingWindowInferer
from bundle.networks.slices import axial_slices, slice_stacks, slices_from_volume, whole_slice_inference


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is ~10x faster in wall time when other jobs share the two cores (no OpenMP
    barrier waits for a descheduled thread); the results do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_net() -> HDenseUNet:
    """Small H-DenseUNet with non-trivial BatchNorm statistics (so eval-mode normalisation matters)."""
    torch.manual_seed(0)
    net = HDenseUNet(size="small").eval()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return net


class SampleCounter:
    """Forward hook summing the batch sizes a module sees."""

    def __init__(self, module: nn.Module) -> None:
        self.samples = 0
        self.calls = 0
        module.register_forward_hook(self)

    def __call__(self, module, inputs, output) -> None:
        self.samples += inputs[0].shape[0]
        self.calls += 1


@pytest.mark.parametrize("roi_size, channels_last", [((64, 32, 8), True), ((0, 0, 8), False), ((0, 0, 0), True)])
def test_one_window_equals_the_network(roi_size, channels_last):
    net = small_net()
    x = torch.rand(1, 1, 64, 32, 8)
    with torch.no_grad():
        expected = net(x)
    out = HybridSlidingWindowInferer(roi_size, channels_last=channels_last)(x, net)
    assert out.shape == expected.shape
    assert torch.allclose(out, expected, atol=1e-4)
    assert not out.is_inference() and not out.requires_grad


def test_multi_window_roi_runs_the_2d_branch_once_per_slice():
    net = small_net()
    slices2d, windows3d = SampleCounter(net.dense2d.features.conv0), SampleCounter(net.dense3d.features.conv0)
    x = torch.rand(1, 1, 70, 40, 10)
    inferer = HybridSlidingWindowInferer(roi_size=(32, 32, 4), overlap=0.25, slice_batch=3)
    out = inferer(x, net)
    assert out.shape == (1, 3, 70, 40, 10) and torch.isfinite(out).all()
    log_probs = torch.log_softmax(out, dim=1)
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(1, 70, 40, 10), atol=1e-5)
    assert slices2d.samples == 10  # every slice once, although the 3D windows overlap in all three axes
    assert windows3d.calls == len(inferer.last_stats["windows_3d"]) == 4 * 3 * 3  # H 0,24,48,64; W 0,24,32; D 0,3,6
    assert inferer.last_stats["slices_2d"] == 10 and inferer.last_stats["padded_shape"] == [96, 64, 10]


def test_small_roi_is_padded_and_cropped_back():
    net = small_net()
    out = HybridSlidingWindowInferer(roi_size=(0, 0, 4))(torch.rand(2, 1, 40, 20, 3), net)  # batch 2, D < window
    assert out.shape == (2, 3, 40, 20, 3) and torch.isfinite(out).all()


def test_2d_mode_gives_the_2d_logits():
    net = small_net().set_mode("2d").eval()
    x = torch.rand(1, 1, 32, 64, 5)
    with torch.no_grad():
        assert torch.allclose(HybridSlidingWindowInferer()(x, net), net(x), atol=1e-4)


def test_rejects_training_mode_and_bad_window():
    net = small_net()
    with pytest.raises(ValueError, match="divisible"):
        HybridSlidingWindowInferer(roi_size=(60, 64, 8))(torch.rand(1, 1, 64, 64, 8), net)
    with pytest.raises(ValueError, match="eval mode"):
        HybridSlidingWindowInferer()(torch.rand(1, 1, 64, 64, 8), net.train())


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("channels_last", [True, False])
def test_inference_features_equal_forward_features(spatial_dims, channels_last):
    net = small_net()
    branch, shape = (net.dense2d, (2, 3, 64, 32)) if spatial_dims == 2 else (net.dense3d, (1, 4, 64, 32, 4))
    x = torch.rand(shape)
    with torch.no_grad():
        expected = branch.forward_features(x)
    assert torch.allclose(branch.inference_features(x, channels_last), expected, atol=1e-4)


@pytest.mark.parametrize("num_slices, start, stop", [(3, 0, 7), (3, 0, 1), (3, 2, 5), (3, 6, 7), (5, 1, 6)])
def test_slice_stacks_equal_slices_from_volume(num_slices, start, stop):
    volume = torch.rand(1, 2, 5, 4, 7)
    expected = slices_from_volume(volume, num_slices)[start:stop]
    assert torch.equal(slice_stacks(axial_slices(volume), start, stop, num_slices), expected)


def test_whole_slice_inference_equals_the_coarse_network():
    torch.manual_seed(0)
    coarse = CoarseLiverNet(size="small", num_adjacent_slices=5).eval()
    x = torch.rand(1, 1, 64, 48, 6)
    with torch.no_grad():
        expected = coarse(x)
        out = whole_slice_inference(coarse.unet, x, 5, coarse.size_divisor, slice_batch=4)
    assert torch.allclose(out, expected, atol=1e-4)
    out = whole_slice_inference(coarse.unet, torch.rand(1, 1, 50, 37, 3), 5, coarse.size_divisor)
    assert out.shape == (1, 2, 50, 37, 3)


def _cascade(**kwargs) -> LiverTumorCascade:
    torch.manual_seed(0)
    return LiverTumorCascade(size="small", patch_size=(32, 32, 4), stage="cascade", **kwargs).eval()


def test_cascade_through_the_hybrid_inferer_returns_log_probabilities_on_the_input_grid(monkeypatch):
    calls = []
    original = HybridSlidingWindowInferer.__call__
    monkeypatch.setattr(HybridSlidingWindowInferer, "__call__", lambda self, *a: calls.append(1) or original(self, *a))
    affine = torch.diag(torch.tensor([1.2, 1.2, 2.0, 1.0], dtype=torch.float64))
    x = MetaTensor(torch.rand(1, 1, 40, 36, 5), affine=affine)
    with torch.no_grad():
        out = _cascade()(x)
        plain = _cascade(fast_inference=False)(x)
    assert calls == [1]
    for result in (out, plain):
        assert isinstance(result, MetaTensor) and torch.equal(result.affine, x.affine)
        assert result.shape == (1, 3, 40, 36, 5) and (result <= 0).all()
        assert torch.allclose(result.exp().sum(1), torch.ones(1, 40, 36, 5), atol=1e-4)


def test_other_fine_networks_keep_the_sliding_window_path(monkeypatch):
    monkeypatch.setattr(HybridSlidingWindowInferer, "__call__", lambda *a: pytest.fail("hybrid path used"))
    fine = nn.Conv3d(1, 3, 1)
    with torch.no_grad():
        out = _cascade(fine=fine)(torch.rand(1, 1, 40, 36, 5))
    assert out.shape == (1, 3, 40, 36, 5) and torch.allclose(out.exp().sum(1), torch.ones(1, 40, 36, 5), atol=1e-4)
