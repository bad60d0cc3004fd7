"""F and F⁻¹ of H-DenseUNet as an invertible MONAI transform pair: each axial slice gets its two neighbours as channels.

Li et al., H-DenseUNet, IEEE TMI 2018, section III-A, Fig. 2(d). :class:`SliceStacks` turns a channel-first
volume ``(C, H, W, D)`` into ``(3C, H, W, D)``: at every depth ``d`` the channels are slices ``d - 1, d, d + 1``
(in that order, each block ``C`` channels wide), so any ``(3C, H, W)`` section at one depth is the 2D input the
paper's 2D DenseUNet takes. The arrangement is the one of :func:`bundle.transforms.slice_stacks.slices_from_volume`
(which it calls), with its edge convention: the first and last slices have one neighbour only and the missing one
is the edge slice itself repeated, so depth 0 holds ``[s0, s0, s1]``, depth ``D-1`` holds ``[s_{D-2}, s_{D-1},
s_{D-1}]`` and a volume with ``D = 1`` gives ``[s0, s0, s0]``.

Typical uses::

    # training a 2D network on (3C, 224, 224) samples
    SliceStacksd("image"), RandSpatialCropd(["image", "label"], roi_size=(224, 224, 1)),
    SqueezeDimd(["image", "label"], dim=-1)
    # inference: the stacked (B, 3C, H, W, D) volume goes through SliceInferer(roi_size=(224, 224), spatial_dim=2)

The transform is invertible and keeps ``affine`` and the other metadata unchanged, as it moves no voxel. Its
inverse recognises a stacked volume by its structure: ``3C`` channels whose first and last blocks are the centre
block shifted by one slice (edge repeated). Such a tensor gives back the centre block, i.e. the input. Anything
else is returned unchanged and only the transform's record is popped: that is what a *prediction* needs when
:class:`~monai.transforms.Invertd` sends it through the image's transforms (``Invertd(keys="pred",
orig_keys="image")``), since a ``(K, H, W, D)`` prediction from ``SliceInferer`` is already on the voxel grid,
even when ``K == 3C`` (3 classes for a 1-channel CT).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import InvertibleTransform, MapTransform, Transform
from monai.utils import TraceKeys, TransformBackends, convert_to_dst_type, convert_to_tensor

from .slice_stacks import slices_from_volume

__all__ = ["SliceStacks", "SliceStacksd", "is_slice_stack"]

logger = logging.getLogger(__name__)


class SliceStacks(InvertibleTransform, Transform):
    """F as an array transform: ``(C, H, W, D)`` -> ``(3C, H, W, D)``, neighbours of every axial slice as channels.

    Output channels ``[0:C]`` at depth ``d`` are slice ``d - 1``, ``[C:2C]`` slice ``d`` (the input itself) and
    ``[2C:3C]`` slice ``d + 1``, with the edge slice repeated where a neighbour is missing (see module docstring).
    Values, dtype, ``affine`` and metadata are unchanged; only the channel dimension grows. ``D`` may be any size
    ``>= 1``. The inverse returns the centre block ``[C:2C]``, i.e. exactly the input (and anything that is not
    such a stack, e.g. a prediction sent through by ``Invertd``, unchanged).

    Examples::

        x = torch.arange(4.0).reshape(1, 1, 1, 4)   # one channel, 1 x 1 pixel, 4 slices
        SliceStacks()(x)[:, 0, 0]                    # [[0, 0, 1, 2], [0, 1, 2, 3], [1, 2, 3, 3]]
    """

    backend = [TransformBackends.TORCH]

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """``(C, H, W, D)`` -> ``(3C, H, W, D)``; numpy in, numpy out; a ``MetaTensor`` records the transform."""
        if img.ndim != 4:
            raise ValueError(f"SliceStacks expects a channel-first volume (C, H, W, D), got shape {tuple(img.shape)}")
        img_t = convert_to_tensor(img, track_meta=get_track_meta())
        plain = img_t.as_tensor() if isinstance(img_t, MetaTensor) else img_t
        stacks = slices_from_volume(plain.unsqueeze(0))  # (D, 3C, H, W)
        out = stacks.permute(1, 2, 3, 0).contiguous()  # (3C, H, W, D)
        out, *_ = convert_to_dst_type(out, dst=img_t)
        if isinstance(out, MetaTensor) and get_track_meta():
            self.push_transform(out, extra_info={"in_channels": int(img.shape[0])})
        return out if isinstance(img, torch.Tensor) else convert_to_dst_type(out, dst=img)[0]

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """F⁻¹ for a volume: ``(3C, H, W, D)`` -> ``(C, H, W, D)``, the centre block; pops the recorded transform.

        A tensor that is not a slice stack of ``C``-channel slices (e.g. a ``(K, H, W, D)`` prediction carrying the
        image's ``applied_operations`` in ``Invertd``) is returned unchanged, only the record being popped.
        """
        transform = self.pop_transform(data)
        c = int(transform[TraceKeys.EXTRA_INFO]["in_channels"])
        if not is_slice_stack(data, c):
            logger.debug(
                "SliceStacks.inverse: %s channels are not a stack of %s-channel slices, kept", data.shape[0], c
            )
            return data
        return data[c : 2 * c]


def is_slice_stack(x: torch.Tensor, in_channels: int) -> bool:
    """Whether ``x`` ``(3C, H, W, D)`` is :class:`SliceStacks` of a ``C = in_channels`` volume (exact comparison)."""
    c = in_channels
    if x.ndim != 4 or x.shape[0] != 3 * c:
        return False
    prev, centre, nxt = x[:c], x[c : 2 * c], x[2 * c :]
    return (
        torch.equal(prev[..., 1:], centre[..., :-1])
        and torch.equal(prev[..., :1], centre[..., :1])
        and torch.equal(nxt[..., :-1], centre[..., 1:])
        and torch.equal(nxt[..., -1:], centre[..., -1:])
    )


class SliceStacksd(MapTransform, InvertibleTransform):
    """Dictionary wrapper of :class:`SliceStacks`: each ``d[key]`` ``(C, H, W, D)`` -> ``(3C, H, W, D)``.

    Usually applied to the image only (the label stays ``(1, H, W, D)``, the class of the centre slice).
    :meth:`inverse` returns the centre block of every stacked key present (other tensors, such as predictions
    inverted by ``Invertd``, unchanged) and pops the recorded transform: it works inside ``Compose.inverse`` and
    ``Invertd``.

    Args:
        keys: keys of the volumes to stack.
        allow_missing_keys: don't raise an exception if a key is missing.

    Examples::

        pre = Compose([LoadImaged("image", ensure_channel_first=True), SliceStacksd("image")])
        d = pre({"image": "ct.nii.gz"})   # d["image"]: (3, H, W, D)
        pre.inverse(d)["image"]           # (1, H, W, D), the loaded volume
    """

    backend = SliceStacks.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.stacker = SliceStacks()

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.stacker(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.stacker.inverse(d[key])
        return d
