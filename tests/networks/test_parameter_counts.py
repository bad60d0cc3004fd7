"""Exact parameter counts of every network the model card (docs/README.md) quotes, and the card quoting them.

Paper-size networks are built (no forward pass, a few seconds in all); the card's table states each count as an
exact integer next to its rounding, so a change of architecture or preset fails here until the card follows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
from torch import nn

from bundle.networks import (
    CascadedResNet,
    DenseUNet3DOnly,
    DenseUNet65,
    DenseUNet167,
    DenseUNet569,
    LiverTumorCascade,
    RAUNet3D,
)

MODEL_CARD = Path(__file__).resolve().parents[2] / "docs" / "README.md"


@functools.cache
def cascade(size: str) -> LiverTumorCascade:
    """The whole cascade, built once per size: its parts are the H-DenseUNet rows of the card."""
    return LiverTumorCascade(size=size)


# (row of the card's table, preset, the network, its exact number of parameters)
COUNTS: list[tuple[str, str, Callable[[], nn.Module], int]] = [
    ("2D DenseUNet-167", "paper", lambda: cascade("paper").fine.dense2d, 49_526_435),
    ("2D DenseUNet-167", "small", lambda: cascade("small").fine.dense2d, 366_151),
    ("3D DenseUNet-65", "paper", lambda: cascade("paper").fine.dense3d, 16_226_875),
    ("3D DenseUNet-65", "small", lambda: cascade("small").fine.dense3d, 289_631),
    ("HFF layer", "paper", lambda: cascade("paper").fine.hff, 110_915),
    ("HFF layer", "small", lambda: cascade("small").fine.hff, 6_995),
    ("H-DenseUNet", "paper", lambda: cascade("paper").fine, 65_864_225),
    ("H-DenseUNet", "small", lambda: cascade("small").fine, 662_777),
    ("coarse liver network", "paper", lambda: cascade("paper").coarse, 6_501_324),
    ("coarse liver network", "small", lambda: cascade("small").coarse, 228_732),
    ("whole cascade", "paper", lambda: cascade("paper"), 72_365_549),
    ("whole cascade", "small", lambda: cascade("small"), 891_509),
    ("3D DenseUNet alone", "paper", lambda: DenseUNet3DOnly(size="paper"), 16_128_091),
    ("3D DenseUNet alone", "small", lambda: DenseUNet3DOnly(size="small"), 256_703),
    ("3D-DenseUNet-569", "paper", lambda: DenseUNet569(size="paper"), 37_225_123),
    ("3D-DenseUNet-569", "small", lambda: DenseUNet569(size="small"), 89_099),
    ("RA-UNet-II", "paper", lambda: RAUNet3D(size="paper"), 4_413_635),
    ("RA-UNet-II", "small", lambda: RAUNet3D(size="small"), 69_375),
    ("cascaded ResNet", "paper", lambda: CascadedResNet(size="paper"), 247_919_110),
    ("cascaded ResNet", "small", lambda: CascadedResNet(size="small"), 231_686),
]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("row", "size", "build", "expected"), COUNTS, ids=[f"{r}-{s}" for r, s, _, _ in COUNTS])
def test_exact_parameter_count(row: str, size: str, build: Callable[[], nn.Module], expected: int) -> None:
    assert count_parameters(build()) == expected


def test_table_i_constructors_build_the_cascade_branches() -> None:
    """``DenseUNet167()`` / ``DenseUNet65()`` (Table I's networks) are exactly H-DenseUNet's paper branches."""
    assert count_parameters(DenseUNet167()) == 49_526_435
    assert count_parameters(DenseUNet65()) == 16_226_875


def test_the_model_card_quotes_every_exact_count() -> None:
    card = MODEL_CARD.read_text()
    for row, size, _, expected in COUNTS:
        if size == "paper":
            quoted = f"{expected:,} ({expected / 1e6:.1f} M)" if expected >= 1_000_000 else f"{expected:,}"
        else:
            quoted = f"{expected:,}"
        assert quoted in card, f"docs/README.md should quote {row} ({size}) as {quoted}"
    assert "tests/networks/test_parameter_counts.py" in card
