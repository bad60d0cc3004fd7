"""Cases labelled for the liver only: their liver voxels become "liver or tumor", so no loss says "no tumor here".

A TotalSegmentator liver mask (a model's output) or any liver-only reference marks tumors inside the liver as liver,
or leaves them out: its label 1 does not mean "liver, not tumor". :class:`MarkUnlabelledTumord` turns label 1 of such
a case into :data:`~bundle.engines.losses.LIVER_OR_TUMOR` (3), which
:class:`~bundle.engines.losses.WeightedCrossEntropyLoss` scores with the marginal ``-log(p_liver + p_tumor)``.
Which cases are liver-only is said per datalist entry: ``"tumor_labelled": false``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from bundle.config_values import as_bool

__all__ = ["LIVER_OR_TUMOR", "MarkUnlabelledTumord"]

#: the label value of "liver or tumor, unknown which" (the same constant as the loss's)
LIVER_OR_TUMOR = 3


class MarkUnlabelledTumord(MapTransform):
    """Label 1 -> :data:`LIVER_OR_TUMOR` in ``keys`` where ``d[flag_key]`` is false; other cases unchanged.

    Args:
        keys: label keys, ``(1, H, W, D)`` class indices (0 background, 1 liver, 2 tumor).
        flag_key: the datalist entry's flag, ``True`` (default when absent) if tumors are labelled.
        allow_missing_keys: don't raise an exception if a key is missing.
    """

    def __init__(self, keys: KeysCollection, flag_key: str = "tumor_labelled", allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.flag_key = flag_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        if as_bool(d.get(self.flag_key, True), self.flag_key):
            return d
        for key in self.key_iterator(d):
            label = d[key]
            d[key] = torch.where(label == 1, torch.full_like(label, LIVER_OR_TUMOR), label)
        return d
