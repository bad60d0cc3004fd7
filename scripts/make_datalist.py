#!/usr/bin/env python
"""Write an MSD-style dataset.json (training / validation / test) for a folder of CT cases.

Example::

    python scripts/make_datalist.py demo/data --out demo/data/dataset.json --folds 5 --fold 0 --seed 0
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from bundle.data.datalist import build_datalist, write_datalist

logger = logging.getLogger("make_datalist")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="folder in LiTS (volume-N/segmentation-N) or MSD layout")
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--folds", type=int, default=5, help="number of cross-validation folds")
    parser.add_argument("--fold", type=int, default=0, help="the fold used for validation")
    parser.add_argument("--seed", type=int, default=0, help="shuffling seed")
    parser.add_argument("--val-fraction", type=float, default=None, help="single random split instead of k-fold")
    parser.add_argument("--test-fraction", type=float, default=0.0, help="fraction of cases held out as test")
    parser.add_argument("--relative", action="store_true", help="paths relative to DATA_DIR instead of absolute")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        datalist = build_datalist(
            args.data_dir,
            num_folds=args.folds,
            fold=args.fold,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction,
            seed=args.seed,
            relative=args.relative,
        )
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"make_datalist: error: {error}\n")
    write_datalist(datalist, args.out)
    logger.info(
        "wrote %s: %d training, %d validation, %d test",
        args.out,
        datalist["numTraining"],
        datalist["numValidation"],
        datalist["numTest"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
