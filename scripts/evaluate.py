"""Score predicted liver/tumor label maps against references with the LiTS metrics.

Usage::

    python scripts/evaluate.py PRED_DIR LABEL_DIR [--out DIR] [--require-all]

Writes ``metrics.csv`` and ``metrics.json`` (default: into PRED_DIR), logs a table, and exits with 1 when a case
failed (e.g. shape/affine mismatch) or nothing matched. Matching rules: :mod:`bundle.metrics.evaluate`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from bundle.metrics.evaluate import evaluate_folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pred_dir", type=Path, help="predictions: <case>/<case>_seg.nii.gz or flat <case>[_seg].nii.gz")
    parser.add_argument(
        "label_dir",
        type=Path,
        help="references: LiTS segmentation-N.nii[.gz], NAME.nii[.gz], or a 3D-IRCADb folder / patient folder",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: PRED_DIR)")
    parser.add_argument("--require-all", action="store_true", help="fail when a reference has no prediction")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    result = evaluate_folder(args.pred_dir, args.label_dir, args.out, require_all=args.require_all)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
