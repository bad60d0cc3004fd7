"""Data: synthetic CT phantoms in the LiTS layout (``phantom/``), 3D-IRCADb reading and conversion (``ircadb``,
``ircadb_convert``), MSD-style datalists with k-fold splits (``datalist``), real-CT datalists (``real_ct``), and
input validation before any heavy work (``validation``: the rules; ``image_headers``: the header readers)."""

from .datalist import build_datalist, find_cases, write_datalist
from .ircadb import IrcadbReader, find_ircadb_cases, ircadb_image, ircadb_label
from .ircadb_convert import convert_ircadb
from .phantom import NOMINAL_HU, PhantomCase, case_seed, make_phantom, save_preview_png, write_phantom_dataset
from .real_ct import ensure_phantoms, real_ct_cases, real_ct_datalist
from .validation import ImageInfo, InvalidInputError, check_case, check_image_file, check_label_file

__all__ = [
    "NOMINAL_HU",
    "ImageInfo",
    "InvalidInputError",
    "IrcadbReader",
    "PhantomCase",
    "build_datalist",
    "case_seed",
    "check_case",
    "check_image_file",
    "check_label_file",
    "convert_ircadb",
    "ensure_phantoms",
    "find_cases",
    "find_ircadb_cases",
    "ircadb_image",
    "ircadb_label",
    "make_phantom",
    "real_ct_cases",
    "real_ct_datalist",
    "save_preview_png",
    "write_datalist",
    "write_phantom_dataset",
]
