"""F / F⁻¹: the tensor functions and the invertible SliceStacks / SliceStacksd transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.data import MetaTensor
from monai.inferers import SliceInferer
from monai.transforms import Compose, Invertd, RandSpatialCropd, SpatialCropd, SqueezeDimd

from bundle.transforms import SliceStacks, SliceStacksd, is_slice_stack, slices_from_volume, volume_from_slices

AFFINE = torch.tensor([[0.7, 0, 0, -10.0], [0, 0.7, 0, 5.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]], dtype=torch.float64)

shapes = st.tuples(
    st.integers(1, 3),  # C
    st.integers(1, 7),  # H, odd sizes included
    st.integers(1, 6),  # W
    st.integers(1, 6),  # D, includes D = 1 and D = 2
)


def _reference(x: torch.Tensor) -> torch.Tensor:
    """Slow, obvious F for one channel-first volume ``(C, H, W, D)`` -> ``(3C, H, W, D)``."""
    d = x.shape[-1]
    out = [torch.cat([x[..., max(k - 1, 0)], x[..., k], x[..., min(k + 1, d - 1)]], dim=0) for k in range(d)]
    return torch.stack(out, dim=-1)


# --- tensor functions ---------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(shape=shapes, n=st.integers(1, 2))
def test_functions_round_trip(shape, n):
    c, h, w, d = shape
    x = torch.randn(n, c, h, w, d)
    y = slices_from_volume(x)
    assert y.shape == (n * d, 3 * c, h, w)
    assert torch.equal(volume_from_slices(y[:, c : 2 * c], n), x)
    assert torch.equal(volume_from_slices(y, n)[0], _reference(x[0]))


def test_functions_reject_wrong_rank():
    with pytest.raises(ValueError):
        slices_from_volume(torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError):
        volume_from_slices(torch.zeros(5, 3, 2, 2), 2)


# --- SliceStacks (array) ------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(shape=shapes)
def test_slice_stacks_round_trip(shape):
    """(C, H, W, D) -> (3C, H, W, D) with edge slices repeated; inverse gives the input back, metadata intact."""
    c, h, w, d = shape
    x = MetaTensor(torch.randn(c, h, w, d), affine=AFFINE)
    t = SliceStacks()
    y = t(x)
    assert isinstance(y, MetaTensor) and y.shape == (3 * c, h, w, d)
    assert torch.equal(y.as_tensor(), _reference(x.as_tensor()))
    assert torch.equal(y[:c, ..., 0], x[..., 0]) and torch.equal(y[2 * c :, ..., d - 1], x[..., d - 1])
    assert torch.equal(y.affine, AFFINE) and len(y.applied_operations) == 1
    assert is_slice_stack(y, c)
    z = t.inverse(y)
    assert torch.equal(z.as_tensor(), x.as_tensor())
    assert torch.equal(z.affine, AFFINE) and z.applied_operations == []


def test_slice_stacks_d1_d2_edges():
    x = torch.arange(2.0).reshape(1, 1, 1, 2)  # D = 2
    np.testing.assert_array_equal(SliceStacks()(x)[:, 0, 0].numpy(), [[0, 0], [0, 1], [1, 1]])
    x = torch.tensor([[[[5.0]]]])  # D = 1
    np.testing.assert_array_equal(SliceStacks()(x)[:, 0, 0, 0].numpy(), [5, 5, 5])


def test_slice_stacks_numpy_and_errors():
    x = np.random.default_rng(0).normal(size=(1, 4, 3, 5)).astype(np.float32)
    y = SliceStacks()(x)
    assert isinstance(y, np.ndarray) and y.shape == (3, 4, 3, 5) and y.dtype == np.float32
    with pytest.raises(ValueError, match="channel-first"):
        SliceStacks()(np.zeros((4, 3, 5)))


def test_inverse_keeps_a_prediction_unchanged():
    """A (K, H, W, D) prediction carrying the image's record (as in Invertd) is not a stack: kept, record popped."""
    t = SliceStacks()
    x = MetaTensor(torch.rand(1, 4, 4, 5), affine=AFFINE)
    y = t(x)
    for k in (3, 2):  # K == 3C (three classes, one CT channel) and K != 3C
        pred = MetaTensor(torch.softmax(torch.randn(k, 4, 4, 5), 0), affine=AFFINE)
        pred.applied_operations = [dict(op) for op in y.applied_operations]
        out = t.inverse(pred)
        assert out.shape == (k, 4, 4, 5) and out.applied_operations == []


# --- SliceStacksd inside MONAI pipelines --------------------------------------------------------------------------


def test_slice_stacksd_inverse_inside_compose():
    """Compose.inverse undoes a crop after SliceStacksd and the stacking itself: the image comes back exactly."""
    image = MetaTensor(torch.randn(1, 8, 7, 6), affine=AFFINE)
    label = MetaTensor((torch.rand(1, 8, 7, 6) > 0.5).float(), affine=AFFINE)
    pre = Compose([SliceStacksd("image"), SpatialCropd(["image", "label"], roi_start=(1, 2, 0), roi_end=(7, 7, 6))])
    d = pre({"image": image, "label": label})
    assert d["image"].shape == (3, 6, 5, 6) and d["label"].shape == (1, 6, 5, 6)
    inv = pre.inverse(d)
    assert inv["image"].shape == (1, 8, 7, 6)
    assert torch.equal(inv["image"][:, 1:7, 2:7].as_tensor(), image[:, 1:7, 2:7].as_tensor())
    assert torch.equal(inv["image"].affine, AFFINE) and inv["image"].applied_operations == []


def test_slice_stacksd_invertd_prediction():
    """Invertd sends a 3-class prediction through SliceStacksd untouched and undoes the crop."""
    image = MetaTensor(torch.randn(1, 8, 7, 6), affine=AFFINE)
    pre = Compose([SpatialCropd("image", roi_start=(1, 2, 0), roi_end=(7, 7, 6)), SliceStacksd("image")])
    d = pre({"image": image})
    d["pred"] = MetaTensor(torch.softmax(torch.randn(3, 6, 5, 6), 0))
    out = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)(d)
    assert out["pred"].shape == (3, 8, 7, 6)
    assert torch.equal(out["pred"][:, 1:7, 2:7].as_tensor(), d["pred"].as_tensor())
    assert torch.equal(out["pred"].affine, AFFINE)


def test_2d_training_samples_and_slice_inferer():
    """Depth-1 crops of the stacked volume are (3C, h, w) 2D samples; SliceInferer restacks a 2D net's output."""
    depth = torch.arange(5.0).expand(1, 12, 10, 5)  # every voxel holds its slice index
    image = MetaTensor(depth + 0.01 * torch.rand(1, 12, 10, 5), affine=AFFINE)
    label = MetaTensor(depth.clone(), affine=AFFINE)
    train = Compose(
        [
            SliceStacksd("image"),
            RandSpatialCropd(["image", "label"], roi_size=(8, 8, 1), random_size=False),
            SqueezeDimd(["image", "label"], dim=-1),
        ]
    )
    for seed in range(6):
        train.set_random_state(seed)
        s = train({"image": image, "label": label})
        assert s["image"].shape == (3, 8, 8) and s["label"].shape == (1, 8, 8)
        k = int(s["label"][0, 0, 0])  # the crop's depth: channels are slices k-1, k, k+1 (edges repeated)
        np.testing.assert_array_equal(s["image"].floor().amax((1, 2)).numpy(), [max(k - 1, 0), k, min(k + 1, 4)])

    stacked = SliceStacks()(image).unsqueeze(0)  # (1, 3, H, W, D)
    centre = SliceInferer(roi_size=(12, 10), sw_batch_size=2, spatial_dim=2)(stacked, lambda x: x[:, 1:2])
    assert centre.shape == (1, 1, 12, 10, 5)
    assert torch.allclose(torch.as_tensor(centre)[0], image.as_tensor())
