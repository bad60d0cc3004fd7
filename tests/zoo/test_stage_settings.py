"""train.yaml's one table of per-stage settings, and what each overlay changes in it, as monai.bundle parses them."""

from __future__ import annotations

from pathlib import Path

import pytest
from monai.bundle import ConfigParser

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# overlay -> stage -> (num_classes, class_weights, patch_class_ratios)
EXPECTED = {
    (): {"coarse": (2, [1.0, 1.0], [1, 1]), "2d": (3, [0.78, 0.65, 8.57], [1, 1, 2, 1])},
    ("demo.yaml",): {"coarse": (2, [1.0, 1.0], [1, 1]), "joint": (3, [0.78, 0.65, 8.57], [1, 1, 2, 1])},
    ("demo.yaml", "phantoms.yaml"): {"coarse": (2, [1.0, 1.0], [1, 1]), "hybrid": (3, [1.0, 1.0, 2.0], [1, 1, 1, 1])},
    ("real_ct.yaml",): {"coarse": (2, [1.0, 1.0], [2, 1]), "2d": (3, [1.0, 1.0, 2.0], [1, 1, 1, 1])},
}


@pytest.mark.parametrize(("overlays", "stage"), [(o, s) for o, stages in EXPECTED.items() for s in stages])
def test_stage_settings_per_overlay(overlays: tuple[str, ...], stage: str) -> None:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / name) for name in ("train.yaml", *overlays)])
    parser["stage"] = stage
    got = tuple(parser.get_parsed_content(k) for k in ("num_classes", "class_weights", "patch_class_ratios"))
    assert got == EXPECTED[overlays][stage]
    assert len(got[1]) == got[0]  # one weight per class
    # one patch-centre ratio per class, plus "liver or tumor" (label 3) in the liver stages
    assert len(got[2]) == got[0] + (stage != "coarse")
