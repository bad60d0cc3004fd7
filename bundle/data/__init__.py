"""Data: synthetic CT phantoms (LiTS layout), MSD-style datalists with k-fold splits, input validation."""

from .datalist import build_datalist, find_cases, write_datalist
from .phantom import NOMINAL_HU, PhantomCase, case_seed, make_phantom, save_preview_png, write_phantom_dataset
from .validation import ImageInfo, InvalidInputError, check_case, check_image_file, check_label_file

__all__ = [
    "NOMINAL_HU",
    "ImageInfo",
    "InvalidInputError",
    "PhantomCase",
    "build_datalist",
    "case_seed",
    "check_case",
    "check_image_file",
    "check_label_file",
    "find_cases",
    "make_phantom",
    "save_preview_png",
    "write_datalist",
    "write_phantom_dataset",
]
