"""Draw the learning curves (training loss, validation Dice per stage) of a training's MLflow store (PNG or SVG).

Usage::

    python scripts/plot_learning_curves.py OUTPUT_DIR/mlruns.db EXPERIMENT --out curves.png

``OUTPUT_DIR`` is the training's ``output_dir`` (``<bundle_root>/eval``); EXPERIMENT its ``--experiment_name``.
A tracking URI (``sqlite:///...``, ``http://...``) is accepted in place of the file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from bundle.metrics.learning_curves import plot_learning_curves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="mlruns.db of the training, or a tracking URI")
    parser.add_argument("experiment", help="the training's --experiment_name")
    parser.add_argument("--out", type=Path, required=True, help="figure to write: .png, or .svg (text)")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    uri = args.store if "://" in args.store else f"sqlite:///{Path(args.store).resolve()}"
    plot_learning_curves(uri, args.experiment, args.out, title=args.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
