"""Losses of the paper: weighted cross-entropy (eq. 5) and the joint loss λ·L(y, ŷ2d′) + L(y, ŷH) (eq. 6)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.losses import DeepSupervisionLoss
from torch import nn

__all__ = ["HybridLoss", "WeightedCrossEntropyLoss"]

from bundle.transforms.partial_labels import LIVER_OR_TUMOR


class WeightedCrossEntropyLoss(nn.Module):
    """Eq. (5) of Li et al.: ``L = -1/N Σ_i Σ_c w_c y_i^c log ŷ_i^c``.

    Unlike ``nn.CrossEntropyLoss(weight=...)``, which divides by the sum of the voxels' weights, this divides
    by the number of voxels N, as the paper's equation and the released Keras code do
    (``-mean(concat([0.78·log p_bg, 0.65·log p_liver, 8.57·log p_tumor]))``).

    Partial labels: a target voxel of value :data:`LIVER_OR_TUMOR` (3, only with 3 output channels) is liver or
    tumor, unknown which (cases labelled for the liver only). Its loss is the marginal one,
    ``-w_liver · log(ŷ^liver + ŷ^tumor)`` (Shi et al., "Marginal loss and exclusion loss for partially supervised
    multi-organ segmentation", MedIA 2021): such a voxel teaches "not background" and nothing about tumor, so a
    liver-only case never teaches "no tumor here".

    Args:
        class_weights: one weight per class (background, liver, tumor); the paper's code uses 0.78, 0.65, 8.57.
            ``None`` gives plain cross-entropy.

    Shapes: ``input`` logits ``(B, C, *spatial)``; ``target`` class indices ``(B, 1, *spatial)`` or
    ``(B, *spatial)`` (any integer or float dtype holding whole numbers).
    """

    def __init__(self, class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        weights = None if class_weights is None else torch.as_tensor(list(class_weights), dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dim() == input.dim():
            if target.shape[1] != 1:
                raise ValueError(f"target must have one channel of class indices, got shape {tuple(target.shape)}")
            target = target[:, 0]
        target = target.long()
        if self.class_weights is not None and self.class_weights.numel() != input.shape[1]:
            raise ValueError(f"{self.class_weights.numel()} class weights for {input.shape[1]} output channels")
        log_probs = torch.log_softmax(input.float(), dim=1)
        partial = target == LIVER_OR_TUMOR
        known = torch.where(partial, 0, target)
        if int(known.max()) >= input.shape[1] or int(known.min()) < 0:
            raise ValueError(f"target holds class indices outside 0..{input.shape[1] - 1}")
        per_voxel = -log_probs.gather(1, known.unsqueeze(1)).squeeze(1)
        if bool(partial.any()):
            if input.shape[1] != 3:
                raise ValueError(
                    f"label {LIVER_OR_TUMOR} (liver or tumor) needs 3 output channels, got {input.shape[1]}"
                )
            per_voxel = torch.where(partial, -torch.logsumexp(log_probs[:, 1:3], dim=1), per_voxel)
        if self.class_weights is not None:
            weights = self.class_weights.to(per_voxel.device)
            per_voxel = per_voxel * torch.where(partial, weights[1], weights[known])
        return per_voxel.mean()


class HybridLoss(nn.Module):
    """Eq. (6): ``L_total = λ·L(y, ŷ2d′) + L(y, ŷH)`` with λ = 0.5, on MONAI's ``DeepSupervisionLoss``.

    ``HDenseUNet`` in joint training returns ``(B, 2, C, *spatial)``: index 0 the fused (HFF) logits, index 1 the
    2D branch's logits mapped back to the volume (like DynUNet's deep supervision output). Any other network
    output ``(B, C, *spatial)`` gets the plain loss, so one loss serves every training stage.
    """

    def __init__(self, loss: nn.Module, lambda_2d: float = 0.5) -> None:
        super().__init__()
        self.loss = loss
        self.lambda_2d = lambda_2d
        self.supervision = DeepSupervisionLoss(loss, weights=[1.0, lambda_2d])

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if input.dim() == target.dim() + 1:
            return self.supervision(list(torch.unbind(input, dim=1)), target)
        return self.loss(input, target)
