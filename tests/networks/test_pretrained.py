"""load_densenet161_encoder with synthetic state dicts in torchvision's DenseNet-161 layout (nothing downloaded)."""

from __future__ import annotations

import re

import pytest
import torch

from bundle.networks import DenseUNet, DenseUNet65, DenseUNet167, HDenseUNet, load_densenet161_encoder
from bundle.networks.denseunet import IMAGENET_MEAN, IMAGENET_STD
from bundle.networks.presets import dense2d_config


def bn(prefix: str, channels: int) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": torch.rand(channels),
        f"{prefix}.bias": torch.randn(channels),
        f"{prefix}.running_mean": torch.randn(channels),
        f"{prefix}.running_var": torch.rand(channels) + 0.5,
    }


def torchvision_densenet161(old_names: bool = False) -> dict[str, torch.Tensor]:
    """A random state dict with torchvision ``densenet161``'s keys and shapes, written from the architecture
    (k=48, bn_size 4, blocks 6/12/36/24, init 96, compression 0.5), independently of our model code.
    ``old_names`` uses the pre-0.3 torchvision names (``norm.1``, ``conv.2``) inside the dense layers."""
    sd = {"features.conv0.weight": torch.randn(96, 3, 7, 7), **bn("features.norm0", 96)}
    channels = 96
    for b, num_layers in enumerate((6, 12, 36, 24), start=1):
        for i in range(1, num_layers + 1):
            layer = f"features.denseblock{b}.denselayer{i}"
            sep = "." if old_names else ""
            sd.update(bn(f"{layer}.norm{sep}1", channels))
            sd[f"{layer}.conv{sep}1.weight"] = torch.randn(192, channels, 1, 1)
            sd.update(bn(f"{layer}.norm{sep}2", 192))
            sd[f"{layer}.conv{sep}2.weight"] = torch.randn(48, 192, 3, 3)
            channels += 48
        if b < 4:
            sd.update(bn(f"features.transition{b}.norm", channels))
            sd[f"features.transition{b}.conv.weight"] = torch.randn(channels // 2, channels, 1, 1)
            channels //= 2
    sd.update(bn("features.norm5", channels))
    sd["classifier.weight"] = torch.randn(1000, channels)
    sd["classifier.bias"] = torch.randn(1000)
    return sd


def own_encoder_dict(net: DenseUNet) -> dict[str, torch.Tensor]:
    """The encoder's own shapes, random values (our encoder already uses torchvision's names)."""
    return {
        k: torch.randn_like(v) if v.is_floating_point() else v + 7
        for k, v in net.state_dict().items()
        if k.startswith("features.")
    }


@pytest.mark.parametrize("old_names", [False, True], ids=["torchvision", "old-torchvision-names"])
def test_paper_encoder_takes_densenet161(tmp_path, old_names):
    net = DenseUNet167()
    sd = torchvision_densenet161(old_names)
    torch.save(sd, tmp_path / "densenet161.pth")
    decoder_before = {
        k: v.clone() for k, v in net.state_dict().items() if not k.startswith(("features.", "input_mean", "input_std"))
    }
    report = load_densenet161_encoder(net, str(tmp_path / "densenet161.pth"))
    state = net.state_dict()
    expected = {re.sub(r"\.(norm|conv)\.([12])\.", r".\1\2.", k): v for k, v in sd.items()}
    for key, value in expected.items():
        if key.startswith("features."):
            assert torch.equal(state[key], value), key
    assert len(report["loaded"]) == len([k for k in sd if k.startswith("features.")])
    assert report["ignored"] == ["classifier.weight", "classifier.bias"]
    assert report["unexpected"] == [] and report["shape_mismatch"] == []
    assert all(not k.startswith("features.") for k in report["random_init"])
    assert {"decoder.0.skip_proj.weight", "classifier.weight"} <= set(report["random_init"])
    assert all(torch.equal(state[k], v) for k, v in decoder_before.items())
    assert report["input_normalization"] == "imagenet"
    assert state["input_mean"].flatten().tolist() == pytest.approx(IMAGENET_MEAN)
    assert state["input_std"].flatten().tolist() == pytest.approx(IMAGENET_STD)


def test_hdenseunet_loads_2d_branch_only(tmp_path):
    net = HDenseUNet(size="small")
    sd = own_encoder_dict(net.dense2d)
    torch.save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "enc.pth")  # DDP-style prefix
    dense3d_before = {k: v.clone() for k, v in net.dense3d.state_dict().items()}
    report = load_densenet161_encoder(net, str(tmp_path / "enc.pth"))
    assert all(k.startswith("dense2d.features.") for k in report["loaded"])
    for key, value in sd.items():
        assert torch.equal(net.dense2d.state_dict()[key], value), key
    assert all(torch.equal(net.dense3d.state_dict()[k], v) for k, v in dense3d_before.items())


def test_shape_mismatch(tmp_path):
    net = DenseUNet(2, 3, 3, **dense2d_config("small"))
    sd = own_encoder_dict(net)
    sd["features.denseblock2.denselayer1.conv1.weight"] = torch.randn(64, 31, 1, 1)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(
        ValueError, match=r"denseblock2\.denselayer1\.conv1\.weight.*\(64, 31, 1, 1\).*\(64, 32, 1, 1\)"
    ):
        load_densenet161_encoder(net, str(tmp_path / "bad.pth"))
    report = load_densenet161_encoder(net, str(tmp_path / "bad.pth"), strict_shapes=False)
    assert report["shape_mismatch"] == [
        ("features.denseblock2.denselayer1.conv1.weight", (64, 31, 1, 1), (64, 32, 1, 1))
    ]
    assert "features.denseblock2.denselayer1.conv1.weight" in report["random_init"]
    # the full DenseNet-161 does not fit the small encoder either
    torch.save(torchvision_densenet161(), tmp_path / "densenet161.pth")
    with pytest.raises(ValueError, match="do not fit the 2D encoder"):
        load_densenet161_encoder(net, str(tmp_path / "densenet161.pth"))


def test_missing_file_and_wrong_model(tmp_path):
    missing = str(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        load_densenet161_encoder(DenseUNet(2, 3, 3, **dense2d_config("small")), missing)
    with pytest.raises(ValueError, match="2D DenseUNet"):
        load_densenet161_encoder(DenseUNet65(), missing)
