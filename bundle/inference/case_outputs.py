"""What inference writes per case, atomically: ``<output_dir>/<case>/<case>_seg.nii.gz``, ``_report.json``,
``_overlay.png`` and, on request, ``_probabilities.nii.gz``.

MONAI's ``SaveImaged`` writes straight to the final name; a job killed mid-write would leave a truncated file
that a rerun takes for a finished case. These transforms write with MONAI's ``NibabelWriter`` to a temporary
name in the same folder and ``os.replace`` it, so a case's files are either whole or absent.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor, NibabelWriter
from monai.transforms import MapTransform

from .inputs import case_name
from .overlay import save_overlay_png
from .report import atomic_output, case_report, write_json_atomic

__all__ = ["SaveCaseImaged", "WriteCaseReportd", "case_output_path"]

logger = logging.getLogger(__name__)


def case_output_path(output_dir: str | Path, source: str | Path, postfix: str, suffix: str) -> Path:
    """``<output_dir>/<case>/<case>_<postfix><suffix>``; ``<case>`` from the input's name (never leaves output_dir)."""
    case = case_name(source)
    return Path(output_dir) / case / f"{case}_{postfix}{suffix}"


def _source(data: MetaTensor) -> str:
    name = data.meta.get("filename_or_obj") if isinstance(data, MetaTensor) else None
    if not name:
        raise ValueError("the tensor carries no 'filename_or_obj' metadata: cannot name the case's outputs")
    return str(name)


class SaveCaseImaged(MapTransform):
    """Write ``d[key]`` (``(C, H, W, D)`` MetaTensor on the input's grid) as ``<case>_<postfix>.nii.gz`` atomically.

    Args:
        keys: the key(s) to write, e.g. ``"pred"`` after ``Invertd``.
        output_dir: root folder of the per-case folders.
        postfix: file name postfix (``"seg"`` for the label map).
        output_dtype: dtype written (``np.uint8`` for labels, ``np.float32`` for probabilities).
        squeeze_channel: write a single-channel tensor as a 3D image (labels), else channels go last (4D).
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str,
        postfix: str = "seg",
        output_dtype: type | str = np.uint8,
        squeeze_channel: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir = output_dir
        self.postfix = postfix
        self.output_dtype = np.dtype(output_dtype)
        self.squeeze_channel = squeeze_channel

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            target = case_output_path(self.output_dir, _source(image), self.postfix, ".nii.gz")
            array = image.detach().cpu()
            if self.squeeze_channel and array.shape[0] == 1:
                array, channel_dim = array[0], None
            else:
                channel_dim = 0
            writer = NibabelWriter(output_dtype=self.output_dtype)
            writer.set_data_array(array, channel_dim=channel_dim)
            writer.set_metadata(image.meta, resample=False)
            with atomic_output(target) as tmp:
                writer.write(str(tmp.with_name(tmp.name + ".nii.gz")), verbose=False)
                tmp.with_name(tmp.name + ".nii.gz").replace(tmp)
            logger.info("wrote %s", target)
        return d


class WriteCaseReportd(MapTransform):
    """Write the case's JSON report and overlay PNG from the label map on the RAS grid.

    Args:
        keys: the label-map key (``(1, H, W, D)`` with 0/1/2, RAS, e.g. after ``LiverTumorCleanupd``).
        image_key: the preprocessed image (``(1, H, W, D)``, HU window scaled to [0, 1]), for the overlay.
        output_dir: root folder of the per-case folders.
        hu_window: the window that scaled the image, to show it in HU again.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str,
        image_key: str = "image",
        hu_window: Sequence[float] = (-200.0, 250.0),
        overlay: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir = output_dir
        self.image_key = image_key
        self.hu_window = (float(hu_window[0]), float(hu_window[1]))
        self.overlay = overlay

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        image = d[self.image_key]
        source = _source(image)
        affine = np.asarray(image.affine, dtype=np.float64)
        for key in self.key_iterator(d):
            label = np.asarray(d[key].detach().cpu())[0].astype(np.uint8)
            report = case_report(label, affine, case_name(source))
            report["input"] = source
            write_json_atomic(report, case_output_path(self.output_dir, source, "report", ".json"))
            if self.overlay:
                lo, hi = self.hu_window
                hu = np.asarray(image.detach().cpu())[0] * (hi - lo) + lo
                save_overlay_png(hu, label, affine, case_output_path(self.output_dir, source, "overlay", ".png"))
        return d
