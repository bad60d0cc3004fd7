"""Synthetic abdominal CT phantoms with liver and liver-tumour labels, in the LiTS file layout.

A phantom is built on a physical millimetre grid: an adult abdomen (:mod:`.anatomy`, :mod:`.liver`) is
scaled by ``size / 512`` so that it fills a ``size``-voxel matrix as a LiTS case fills 512, sampled at
the case's spacing, given partial-volume blur and noise, then stored in one of the axis orientations
scanners write (``RAS``, ``LAS``, ``LPS``, ``LPI``) with the matching affine. The same seed gives the
same anatomy in world space whatever the spacing or orientation.

Labels follow LiTS: 0 background, 1 liver (parenchyma and its vessels), 2 tumour. World coordinates
are RAS+ as in NIfTI (+x towards the patient's right), so the liver lies at larger x than the body's
centre whatever the stored orientation.

Example::

    case = make_phantom(seed=3, size=128)
    case.image.shape, case.image.dtype   # (128, 128, Z) int16 HU
    write_phantom_dataset("data/phantoms", num_cases=8)  # volume-N.nii.gz + segmentation-N.nii.gz

Modules, in the order a phantom is made: :mod:`.tissues` (HU ranges), :mod:`.geometry` (canvas, shapes,
landmarks), :mod:`.anatomy` (one painter per structure, :func:`~.anatomy.paint_abdomen` in order), :mod:`.liver`
(liver, vessels, tumours), :mod:`.scanner` (acquisition, affine, HU synthesis), :mod:`.dataset`
(:func:`make_phantom`, :func:`write_phantom_dataset`), :mod:`.preview` (PNG).
"""

from .dataset import PhantomCase, case_seed, make_phantom, write_phantom_dataset
from .preview import save_preview_png
from .scanner import ORIENTATIONS
from .tissues import NOMINAL_HU

__all__ = [
    "NOMINAL_HU",
    "ORIENTATIONS",
    "PhantomCase",
    "case_seed",
    "make_phantom",
    "save_preview_png",
    "write_phantom_dataset",
]
