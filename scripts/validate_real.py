"""Segment real CT with trained weights exactly as users run them, and score it (LiTS metrics).

Usage::

    python scripts/validate_real.py --model runs/foldA/models/model.pt --patients 3Dircadb1.1 --out runs/foldA/real

Every patient named (a ``3Dircadb1.N`` folder of ``--ircadb``) goes through ``configs/inference.yaml`` and is
scored against its expert masks; the sample CT of ``sample/`` too (liver Dice against a model's label). Writes
``<out>/real_validation.json``, ``<out>/metrics/metrics.csv`` and the predictions with their overlays.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from bundle.real_ct_validation import validate_on_real_ct


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="weights (models/model.pt of a training)")
    parser.add_argument("--patients", nargs="*", default=[], help="3Dircadb1.N folders to segment and score")
    parser.add_argument("--ircadb", type=Path, default=Path("../shared/data/real/ircadb"), help="3D-IRCADb folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--no-sample", action="store_true", help="skip the shipped sample CT")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    validate_on_real_ct(args.model, args.ircadb, args.patients, args.out, with_sample=not args.no_sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
