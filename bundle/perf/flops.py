"""Analytical FLOP counting: 2 × the multiply-accumulates (MACs) of every convolution and linear layer.

What is counted: ``nn.Conv1d/2d/3d`` (``out.numel() · in_channels/groups · prod(kernel)`` MACs), transposed
convolutions (``in.numel() · out_channels/groups · prod(kernel)``) and ``nn.Linear`` (``out.numel() ·
in_features``), each MAC as 2 FLOP. Not counted: biases, normalisation, activations, pooling, interpolation,
softmax, concatenation and copies. These are memory-bound and, in the networks of this bundle, under 1 % of the
arithmetic; GFLOP/s figures therefore measure how well the convolutions use the machine.

Shapes come from forward hooks, so the count is exact for the shapes actually run. :func:`count_flops` runs the
model on the ``meta`` device (no arithmetic, no memory: a paper H-DenseUNet patch is counted in milliseconds);
:class:`FlopCounter` counts a real run, e.g. a whole cascade case.

Examples::

    >>> count_flops(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 32, 32)) == 2 * 32 * 32 * 8 * 3 * 9
    True
    >>> with FlopCounter(net) as counter:
    ...     net(x)
    >>> counter.flops, counter.by_type
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from itertools import chain

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.nn.modules.module import register_module_forward_hook

__all__ = ["COUNTED_MODULES", "FlopCounter", "count_flops", "module_macs"]

COUNTED_MODULES = (_ConvNd, nn.Linear)


def module_macs(module: nn.Module, inputs: Sequence[torch.Tensor], output: torch.Tensor) -> int:
    """Multiply-accumulates of one call of a convolution or linear layer (0 for any other module)."""
    if isinstance(module, _ConvTransposeNd):
        x = inputs[0]
        return x.numel() * (module.out_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, _ConvNd):
        return output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


class FlopCounter:
    """Context manager that counts the FLOP of every conv / linear call of ``model`` (forward hooks), or with
    ``model=None`` of every module anywhere (a global forward hook: also counts copies made during the run, such
    as :func:`~bundle.networks.folding.inference_copy`'s).

    Attributes (cumulative over all forward passes inside the ``with`` block):
        flops: 2 · MACs.
        calls: number of counted layer calls.
        by_type: FLOP per layer class name (``"Conv2d"``, ``"Conv3d"``, ...).
    """

    def __init__(self, model: nn.Module | None = None) -> None:
        self.model = model
        self.flops = 0
        self.calls = 0
        self.by_type: dict[str, int] = defaultdict(int)
        self._handles: list = []

    def _hook(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if not isinstance(module, COUNTED_MODULES):
            return
        flops = 2 * module_macs(module, inputs, output)
        self.flops += flops
        self.calls += 1
        self.by_type[type(module).__name__] += flops

    def __enter__(self) -> FlopCounter:
        if self.model is None:
            self._handles = [register_module_forward_hook(self._hook)]
        else:
            self._handles = [
                m.register_forward_hook(self._hook) for m in self.model.modules() if isinstance(m, COUNTED_MODULES)
            ]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


class _Method(nn.Module):
    """Calls one method of ``model`` as its forward, so that ``functional_call`` can run any method."""

    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, *args: torch.Tensor) -> object:
        if self.method == "forward":
            return self.model(*args)  # through __call__, so that hooks on the model itself fire
        return getattr(self.model, self.method)(*args)


def count_flops(model: nn.Module, *inputs: Sequence[int] | torch.Tensor, method: str = "forward") -> int:
    """FLOP of one call of ``model`` (2 · conv/linear MACs) for inputs of the given shapes, without computing.

    Args:
        model: any module; it is not changed (its parameters and buffers are replaced by ``meta`` tensors for the
            call only, through ``torch.func.functional_call``). Train/eval mode is the model's own.
        inputs: shapes (tuples) or tensors (only their shapes and dtypes are used).
        method: the method to count, e.g. ``"forward_features"`` for a DenseUNet without its classifier.
    """
    wrapper = _Method(model, method)
    meta = {
        name: torch.empty_like(t, device="meta")
        for name, t in chain(wrapper.named_parameters(), wrapper.named_buffers())
    }
    args = tuple(
        torch.empty_like(x, device="meta") if isinstance(x, torch.Tensor) else torch.empty(tuple(x), device="meta")
        for x in inputs
    )
    with FlopCounter(model) as counter, torch.no_grad():
        functional_call(wrapper, meta, args)
    return counter.flops
