"""The blocks of :class:`~bundle.networks.denseunet.DenseUNet`, 2D and 3D: the DenseNet-BC micro-block, dense
block and transition (names as torchvision's DenseNet, so ImageNet weights map one to one) and a decoder level.

Public so that BatchNorm folding (:mod:`bundle.networks.folding`) can find the conv -> BN pairs inside them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from monai.networks.layers.factories import Conv, Pool
from monai.networks.layers.utils import get_act_layer, get_norm_layer

__all__ = ["INTERP_MODES", "DenseBlock", "DenseLayer", "Transition", "UpLevel"]

#: upsampling mode per spatial dimension count (1, 2, 3)
INTERP_MODES = ("linear", "bilinear", "trilinear")


@contextlib.contextmanager
def _restore_buffers(module: nn.Module) -> Iterator[None]:
    """Undo buffer updates made inside the block: the backward pass of ``memory_efficient`` recomputes norm1's forward,
    which would otherwise update its running statistics twice per step (torchvision's DenseNet does). Restoring in
    ``finally`` also covers the checkpoint's early stop of the recomputation."""
    saved = [b.clone() for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(module.buffers(), saved):
                buffer.copy_(value)


class DenseLayer(nn.Module):
    """One micro-block: BN-ReLU-1x1 conv (``bn_size·k``) then BN-ReLU-3x3 conv (``k``); names as torchvision."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        growth_rate: int,
        bn_size: int,
        act: str | tuple,
        norm: str | tuple,
        memory_efficient: bool,
    ) -> None:
        super().__init__()
        conv_type = Conv[Conv.CONV, spatial_dims]
        self.memory_efficient = memory_efficient
        self.norm1 = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=in_channels)
        self.relu1 = get_act_layer(name=act)
        self.conv1 = conv_type(in_channels, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=bn_size * growth_rate)
        self.relu2 = get_act_layer(name=act)
        self.conv2 = conv_type(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False)

    def bottleneck(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        """concat → BN → ReLU → 1x1 conv: the part whose activations ``memory_efficient`` recomputes."""
        return self.conv1(self.relu1(self.norm1(torch.cat(inputs, 1))))

    def any_requires_grad(self, inputs: list[torch.Tensor]) -> bool:
        for tensor in inputs:
            if tensor.requires_grad:
                return True
        return False

    @torch.jit.unused
    def checkpoint_bottleneck(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        def closure(*tensors: torch.Tensor) -> torch.Tensor:
            return self.bottleneck(list(tensors))

        def contexts() -> tuple:
            return contextlib.nullcontext(), _restore_buffers(self.norm1)

        return cp.checkpoint(closure, *inputs, use_reentrant=False, context_fn=contexts)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if self.memory_efficient and self.any_requires_grad(inputs) and not torch.jit.is_scripting():
            out = self.checkpoint_bottleneck(inputs)
        else:  # TorchScript cannot checkpoint: it takes this path, same outputs, more memory
            out = self.bottleneck(inputs)
        return self.conv2(self.relu2(self.norm2(out)))


class DenseBlock(nn.ModuleDict):
    """``num_layers`` micro-blocks, each fed the concatenation of the block input and all previous outputs."""

    def __init__(
        self,
        spatial_dims: int,
        num_layers: int,
        in_channels: int,
        growth_rate: int,
        bn_size: int,
        act: str | tuple,
        norm: str | tuple,
        memory_efficient: bool,
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(
                spatial_dims, in_channels + i * growth_rate, growth_rate, bn_size, act, norm, memory_efficient
            )
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for _, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)

    def forward_preallocated(self, x: torch.Tensor, layout: torch.memory_format) -> torch.Tensor:
        """:meth:`forward` for inference: every micro-block reads a view of one growing tensor (in memory format
        ``layout``) and writes its ``k`` new channels into it; same arithmetic as ``torch.cat`` of all previous
        outputs, without the copies."""
        layers = list(self.values())
        channels = x.shape[1]
        total = channels + sum(layer.conv2.out_channels for layer in layers)
        features = torch.empty((x.shape[0], total, *x.shape[2:]), dtype=x.dtype, device=x.device)
        features = features.contiguous(memory_format=layout)
        features[:, :channels] = x
        for layer in layers:
            inputs = features[:, :channels]
            out = layer.conv1(layer.relu1(layer.norm1(inputs)))
            out = layer.conv2(layer.relu2(layer.norm2(out)))
            features[:, channels : channels + out.shape[1]] = out
            channels += out.shape[1]
        return features


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv (compression) then average pooling; names as torchvision."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        pool_size: Sequence[int],
        act: str | tuple,
        norm: str | tuple,
    ) -> None:
        super().__init__()
        self.add_module("norm", get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=in_channels))
        self.add_module("relu", get_act_layer(name=act))
        self.add_module("conv", Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size=1, bias=False))
        self.add_module("pool", Pool[Pool.AVG, spatial_dims](kernel_size=pool_size, stride=pool_size))


class UpLevel(nn.Module):
    """Upsample, UNet summation (before or after the conv), 3x3 conv + BN-ReLU."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        skip_channels: int,
        scale: Sequence[int],
        merge_before: bool,
        act: str | tuple,
        norm: str | tuple,
    ) -> None:
        super().__init__()
        conv_type = Conv[Conv.CONV, spatial_dims]
        self.has_skip = skip_channels > 0
        self.merge_before = merge_before
        self.upsample = nn.Upsample(
            scale_factor=tuple(float(s) for s in scale), mode=INTERP_MODES[spatial_dims - 1], align_corners=False
        )
        stream = in_channels if merge_before else out_channels
        self.skip_proj: nn.Module = nn.Identity()
        if self.has_skip and skip_channels != stream:
            self.skip_proj = conv_type(skip_channels, stream, kernel_size=1, bias=True)
        self.conv = conv_type(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.norm = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=out_channels)
        self.act = get_act_layer(name=act)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, use_skip: bool) -> torch.Tensor:
        x = self.upsample(x)
        add_skip = use_skip and self.has_skip
        if add_skip and self.merge_before:
            x = x + self.skip_proj(skip)
        x = self.act(self.norm(self.conv(x)))
        if add_skip and not self.merge_before:
            x = x + self.skip_proj(skip)
        return x
