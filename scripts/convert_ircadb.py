#!/usr/bin/env python
"""Convert 3D-IRCADb patients (3Dircadb1.N folders) to the LiTS layout: volume-N.nii.gz and segmentation-N.nii.gz.

Example::

    python scripts/convert_ircadb.py /data/3Dircadb1 /data/ircadb_lits

The label map is 0 background, 1 liver, 2 tumor (the ``livertumor*`` masks inside the liver); see
:mod:`bundle.data.ircadb_convert`. The output is 3D-IRCADb data under its licence (CC BY-NC-ND 4.0): keep it out of
the repository.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from bundle.data.ircadb_convert import convert_ircadb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ircadb_dir", type=Path, help="folder of 3Dircadb1.N patients, or one patient folder")
    parser.add_argument("out_dir", type=Path, help="output folder (LiTS layout)")
    parser.add_argument("--overwrite", action="store_true", help="rewrite patients whose files already exist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        convert_ircadb(args.ircadb_dir, args.out_dir, overwrite=args.overwrite)
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"convert_ircadb: error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
