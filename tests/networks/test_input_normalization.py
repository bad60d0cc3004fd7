"""ImageNet input normalisation of the 2D DenseUNet (with --pretrained_2d): applied inside the network, so training,
validation, the fast inference path, the sliding-window path and exported TorchScript all normalise identically."""

from __future__ import annotations

import io

import pytest
import torch

from bundle.networks import DenseUNet, LiverTumorCascade
from bundle.networks.denseunet import IMAGENET_MEAN, IMAGENET_STD
from bundle.networks.folding import inference_copy
from bundle.networks.presets import dense2d_config

MEAN = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)


def _pair() -> tuple[DenseUNet, DenseUNet]:
    """The same small 2D DenseUNet twice: with ImageNet normalisation and without (identity)."""
    torch.manual_seed(0)
    plain = DenseUNet(2, 3, 3, **dense2d_config("small")).eval()
    normalised = DenseUNet(2, 3, 3, **dense2d_config("small")).eval()
    normalised.load_state_dict(plain.state_dict())
    normalised.set_input_normalization(IMAGENET_MEAN, IMAGENET_STD)
    return normalised, plain


def test_every_forward_path_normalises_once() -> None:
    """net(x) == identity-net((x - mean) / std) on the training path (forward_features), the fast inference path
    (inference_features) and a BatchNorm-folded inference copy."""
    normalised, plain = _pair()
    stacks = torch.rand(2, 3, 64, 64)
    reference = (stacks - MEAN) / STD
    with torch.no_grad():
        assert torch.equal(normalised.forward_features(stacks), plain.forward_features(reference))
        torch.testing.assert_close(
            normalised.inference_features(stacks), plain.inference_features(reference), rtol=0, atol=1e-5
        )
        torch.testing.assert_close(
            inference_copy(normalised).inference_features(stacks), plain.forward_features(reference), rtol=0, atol=1e-4
        )
        assert not torch.allclose(normalised.forward_features(stacks), plain.forward_features(stacks), atol=1e-3)


def test_identity_by_default_and_refused_when_it_does_not_fit() -> None:
    net = DenseUNet(2, 3, 3, **dense2d_config("small")).eval()
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(net.normalize_input(x), x)
    with pytest.raises(ValueError, match="one mean and one std per input channel"):
        net.set_input_normalization((0.5,), (0.2,))
    with pytest.raises(ValueError, match="std must be positive"):
        net.set_input_normalization((0.5,) * 3, (0.2, 0.0, 0.2))
    net.set_input_normalization(IMAGENET_MEAN, IMAGENET_STD).set_input_normalization(None, None)
    assert torch.equal(net.normalize_input(x), x)


@pytest.fixture(scope="module")
def imagenet_cascade() -> LiverTumorCascade:
    """The small cascade with ImageNet normalisation set in its 2D branch, 64 x 64 x 12 windows."""
    torch.manual_seed(0)
    cascade = LiverTumorCascade(size="small", patch_size=(64, 64, 12)).eval()
    cascade.fine.dense2d.set_input_normalization(IMAGENET_MEAN, IMAGENET_STD)
    return cascade


def test_training_forward_and_both_inference_paths_agree(imagenet_cascade: LiverTumorCascade) -> None:
    """On an ROI one window big, the network's forward (what training and the 2d stage's loss see), the fast path
    (HybridSlidingWindowInferer, BatchNorms folded: what `monai.bundle run` and validation run) and the
    sliding-window path give the same probabilities; without the normalisation they would not."""
    roi = torch.rand(1, 1, 64, 64, 12, generator=torch.Generator().manual_seed(1))
    fast = LiverTumorCascade(size="small", patch_size=(64, 64, 12), fast_inference=True).eval()
    slow = LiverTumorCascade(size="small", patch_size=(64, 64, 12), fast_inference=False).eval()
    for net in (fast, slow):
        net.load_state_dict(imagenet_cascade.state_dict())
    with torch.no_grad():
        forward = torch.softmax(imagenet_cascade.fine(roi), dim=1)
        fast_probs = fast.roi_probabilities(roi)
        slow_probs = slow.roi_probabilities(roi)
        imagenet_cascade.fine.dense2d.set_input_normalization(None, None)
        without = torch.softmax(imagenet_cascade.fine(roi), dim=1)
        imagenet_cascade.fine.dense2d.set_input_normalization(IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(fast_probs, forward, rtol=0, atol=1e-5)
    torch.testing.assert_close(slow_probs, forward, rtol=0, atol=1e-6)
    assert (without - forward).abs().max() > 1e-3


def test_the_normalisation_travels_in_the_checkpoint_and_the_torchscript(imagenet_cascade: LiverTumorCascade) -> None:
    """Saved, loaded into a fresh cascade as configs/inference.yaml builds it (strict), and scripted as ckpt_export
    scripts it: the ImageNet mean and std come along and the outputs are the eager ones."""
    buffer = io.BytesIO()
    torch.save(imagenet_cascade.state_dict(), buffer)
    buffer.seek(0)
    loaded = LiverTumorCascade(size="small", patch_size=(64, 64, 12)).eval()
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(loaded.fine.dense2d.input_mean, MEAN) and torch.equal(loaded.fine.dense2d.input_std, STD)
    scripted = torch.jit.script(loaded)
    assert torch.equal(scripted.fine.dense2d.input_mean, MEAN)
    patch = torch.rand(1, 1, 64, 64, 12, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        eager = imagenet_cascade.fine(patch)
        torch.testing.assert_close(scripted(patch), eager, rtol=0, atol=1e-5)
        torch.testing.assert_close(loaded.fine(patch), eager, rtol=0, atol=0)


def test_a_checkpoint_from_before_the_buffers_loads_as_identity() -> None:
    """Released weights (models/model.pt) and older checkpoints have no input_mean / input_std: they load strict and
    compute as before; a partial state dict (an encoder) leaves the buffers as they are."""
    torch.manual_seed(0)
    net = LiverTumorCascade(size="small").eval()
    old = {k: v for k, v in net.state_dict().items() if not k.endswith(("input_mean", "input_std"))}
    fresh = LiverTumorCascade(size="small").eval()
    fresh.fine.dense2d.set_input_normalization(IMAGENET_MEAN, IMAGENET_STD)
    fresh.load_state_dict(old)
    assert torch.equal(fresh.fine.dense2d.input_mean, torch.zeros(1, 3, 1, 1))
    assert torch.equal(fresh.fine.dense2d.input_std, torch.ones(1, 3, 1, 1))
    fresh.fine.dense2d.set_input_normalization(IMAGENET_MEAN, IMAGENET_STD)
    encoder = {k: v for k, v in fresh.fine.dense2d.state_dict().items() if k.startswith("features.")}
    fresh.fine.dense2d.load_state_dict(encoder, strict=False)
    assert torch.equal(fresh.fine.dense2d.input_mean, MEAN)
