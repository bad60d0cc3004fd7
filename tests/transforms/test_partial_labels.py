"""MarkUnlabelledTumord: a liver-only case's liver becomes "liver or tumor" (3); fully labelled cases are untouched."""

from __future__ import annotations

import pytest
import torch

from bundle.transforms import LIVER_OR_TUMOR, MarkUnlabelledTumord


@pytest.mark.parametrize("flag", [False, "false", "0"])
def test_liver_only_case_marks_its_liver(flag):
    label = torch.tensor([0, 1, 1, 2]).reshape(1, 4, 1, 1).float()
    out = MarkUnlabelledTumord("label")({"label": label, "tumor_labelled": flag})
    assert out["label"].flatten().tolist() == [0, LIVER_OR_TUMOR, LIVER_OR_TUMOR, 2]


@pytest.mark.parametrize("entry", [{"tumor_labelled": True}, {}])
def test_fully_labelled_case_is_unchanged(entry):
    label = torch.tensor([0, 1, 2]).reshape(1, 3, 1, 1).float()
    out = MarkUnlabelledTumord("label")({"label": label, **entry})
    assert torch.equal(out["label"], label)
