"""ImageNet DenseNet-161 weights for the 2D DenseUNet encoder, from a local file (nothing is downloaded).

Li et al. 2018, section III-C: "The parameters of the encoder part in 2D DenseUNet f2d are initialized with
DenseNet's weights (object classification-trained) while the decoder part are trained with the random
initialization." The encoder of :class:`~bundle.networks.denseunet.DenseUNet` uses torchvision's module names
(``features.conv0``, ``features.denseblockB.denselayerL.{norm1,conv1,norm2,conv2}``, ``features.transitionT``,
``features.norm5``), so a torchvision ``densenet161`` state dict maps one to one; ``classifier.*`` is ignored.

Those weights were trained on RGB images normalised with ImageNet's mean and std; the encoder gets its inputs the
same way: the three adjacent slices of a stack (HU-windowed, in [0, 1]) are its R, G and B channels, normalised
inside the network (:meth:`DenseUNet.set_input_normalization`, buffers of the state dict), so training,
validation, inference and exported modules all normalise identically.
"""

from __future__ import annotations

import logging
import os
import re

import torch

from .denseunet import IMAGENET_MEAN, IMAGENET_STD, DenseUNet
from .hdenseunet import HDenseUNet

__all__ = ["load_densenet161_encoder"]

logger = logging.getLogger(__name__)

# Old torchvision checkpoints name micro-block layers "norm.1", "conv.2", ...; torchvision's own
# ``_load_state_dict`` rewrites them to "norm1", "conv2" with this pattern.
_OLD_LAYER_NAME = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def _torchvision_keys(state_dict: dict) -> dict:
    """Unwrap ``{"state_dict": ...}``, drop a DDP ``module.`` prefix and rewrite old ``norm.1``-style names."""
    if isinstance(state_dict.get("state_dict"), dict):
        state_dict = state_dict["state_dict"]
    out = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        match = _OLD_LAYER_NAME.match(key)
        if match:
            key = match.group(1) + match.group(2)
        out[key] = value
    return out


def load_densenet161_encoder(
    model: DenseUNet | HDenseUNet, path: str, strict_shapes: bool = True, imagenet_normalization: bool = True
) -> dict:
    """Load a local torchvision-layout DenseNet-161 state dict into the 2D DenseUNet encoder.

    Args:
        model: a 2D :class:`DenseUNet` or an :class:`HDenseUNet` (its ``dense2d`` branch is loaded).
        path: local ``.pth`` file holding the state dict (``torch.load(..., weights_only=True)``).
        strict_shapes: raise ``ValueError`` on the first shape mismatch; if False, skip and report mismatches.
        imagenet_normalization: set the 2D network's input normalisation to ImageNet's mean and std
            (:data:`~bundle.networks.denseunet.IMAGENET_MEAN`, ``IMAGENET_STD``; the 3-slice stack as R, G, B), as
            the weights were trained; needs 3 input channels.

    Returns:
        A report with model-side key names: ``loaded`` (tensors copied), ``random_init`` (model tensors left as
        initialised: the decoder, projections and classifier), ``shape_mismatch`` (``(key, checkpoint shape,
        model shape)``, only with ``strict_shapes=False``), ``unexpected`` (encoder keys of the file that the model
        lacks, e.g. a shallower ``block_config``), ``ignored`` (file keys outside the encoder: ``classifier.*``) and
        ``input_normalization`` (``"imagenet"`` or ``None``). The normalisation buffers are in none of the lists.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the model has no 2D DenseUNet, or (``strict_shapes``) a tensor's shape differs.
    """
    prefix = ""
    target = model
    if isinstance(model, HDenseUNet):
        target, prefix = model.dense2d, "dense2d."
    if not isinstance(target, DenseUNet) or target.spatial_dims != 2:
        raise ValueError("load_densenet161_encoder needs a 2D DenseUNet or an HDenseUNet (its 2D branch)")
    if imagenet_normalization and target.in_channels != len(IMAGENET_MEAN):
        raise ValueError(
            f"ImageNet input normalisation needs a 3-channel 2D network (3 slices as R, G, B), got "
            f"{target.in_channels} channels (pass imagenet_normalization=False)"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"DenseNet-161 weights not found at {path!r} (nothing is downloaded)")

    source = _torchvision_keys(torch.load(path, map_location="cpu", weights_only=True))
    own = target.state_dict()
    to_load: dict[str, torch.Tensor] = {}
    report: dict = {"loaded": [], "random_init": [], "shape_mismatch": [], "unexpected": [], "ignored": []}
    for key, value in source.items():
        if not key.startswith("features."):
            report["ignored"].append(key)
        elif key not in own:
            report["unexpected"].append(key)
        elif value.shape != own[key].shape:
            if strict_shapes:
                raise ValueError(
                    f"DenseNet-161 weights at {path!r} do not fit the 2D encoder: {key!r} has shape "
                    f"{tuple(value.shape)} in the file but {tuple(own[key].shape)} in the model "
                    "(pass strict_shapes=False to skip mismatched tensors)"
                )
            report["shape_mismatch"].append((prefix + key, tuple(value.shape), tuple(own[key].shape)))
        else:
            to_load[key] = value
    target.load_state_dict(to_load, strict=False)
    report["loaded"] = [prefix + k for k in to_load]
    buffers = ("num_batches_tracked", "input_mean", "input_std")
    report["random_init"] = [prefix + k for k in own if k not in to_load and not k.endswith(buffers)]
    report["input_normalization"] = None
    if imagenet_normalization:
        target.set_input_normalization(IMAGENET_MEAN, IMAGENET_STD)
        report["input_normalization"] = "imagenet"
    encoder_left = [k for k in report["random_init"] if k.startswith(prefix + "features.")]
    logger.info(
        "DenseNet-161 encoder from %s: %d tensors loaded, %d left randomly initialised (%d of them in the encoder), "
        "%d ignored, %d unexpected, %d shape mismatches; input normalisation: %s",
        path,
        len(report["loaded"]),
        len(report["random_init"]),
        len(encoder_left),
        len(report["ignored"]),
        len(report["unexpected"]),
        len(report["shape_mismatch"]),
        "ImageNet mean and std (the 3 slices as R, G, B)" if imagenet_normalization else "unchanged",
    )
    if encoder_left or report["unexpected"]:
        logger.warning("encoder tensors not loaded: %s; file keys unused: %s", encoder_left, report["unexpected"])
    return report
