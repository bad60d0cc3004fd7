"""Validation through the inference path: what a training stage's validation scores is what users will run.

MONAI's ``SupervisedEvaluator`` calls ``inferer(inputs, network)``. :class:`CascadeStageInferer` hands the
validation volume to :meth:`~bundle.networks.cascade.LiverTumorCascade.validation_logits`, which runs the very
code the deployed cascade runs on that part of the pipeline: the coarse network's whole-slice path on the
coarse-spacing volume (coarse stage), or the liver/tumor network's ROI path (H-DenseUNet: 2D branch once per
slice, 3D windows blended with a Gaussian at the configured overlap; BatchNorms folded) on the liver ROI (2d,
hybrid and joint stages). Checkpoints are thus chosen by the numbers of the path users run, not of a sliding
window path they never run.
"""

from __future__ import annotations

from typing import Any

import torch
from monai.inferers import Inferer
from torch import nn

__all__ = ["CascadeStageInferer"]


class CascadeStageInferer(Inferer):
    """``inferer(inputs, network)`` -> ``network.validation_logits(inputs)`` for a (possibly DDP-wrapped)
    :class:`~bundle.networks.cascade.LiverTumorCascade`: ``(N, 1, H, W, D)`` -> ``(N, C, H, W, D)``."""

    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args: Any, **kwargs: Any) -> torch.Tensor:
        cascade = getattr(network, "module", network)
        if not hasattr(cascade, "validation_logits"):
            raise TypeError(f"CascadeStageInferer needs a LiverTumorCascade, got {type(cascade).__name__}")
        if cascade.training:
            raise ValueError("CascadeStageInferer runs in eval mode (the evaluator sets it)")
        return cascade.validation_logits(inputs)
