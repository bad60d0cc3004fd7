#!/usr/bin/env python
"""Write synthetic CT phantoms in the LiTS layout (volume-N.nii.gz, segmentation-N.nii.gz).

Example::

    python scripts/make_phantoms.py --out demo/data --cases 8 --seed 0 --size 256 --preview
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from bundle.data.phantom import save_preview_png, write_phantom_dataset

logger = logging.getLogger("make_phantoms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--cases", required=True, type=int, help="number of cases")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (case N uses a seed derived from it)")
    parser.add_argument("--size", type=int, default=256, help="in-plane matrix; 512 is LiTS size")
    parser.add_argument("--start-index", type=int, default=0, help="number N of the first case")
    parser.add_argument("--preview", action="store_true", help="also write preview-N.png (axial + coronal)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    cases = write_phantom_dataset(args.out, args.cases, seed=args.seed, size=args.size, start_index=args.start_index)
    if args.preview:
        for index, case in enumerate(cases, start=args.start_index):
            save_preview_png(case, args.out / f"preview-{index}.png")
    logger.info("wrote %d cases to %s", len(cases), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
