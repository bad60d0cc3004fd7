"""`make demo`: CT phantoms, the whole cascade trained on them, inference on held-out ones, the LiTS metrics."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle.demo import run_demo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo", help="output folder (git-ignored)")
    parser.add_argument("--cases", type=int, default=8, help="phantom cases to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--coarse-epochs", type=int, help="coarse liver stage epochs (default: configs/demo.yaml)")
    parser.add_argument("--fine-epochs", type=int, help="epochs of each later stage (default: configs/demo.yaml)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return run_demo(
        Path(args.out),
        num_cases=args.cases,
        seed=args.seed,
        coarse_epochs=args.coarse_epochs,
        fine_epochs=args.fine_epochs,
    )


if __name__ == "__main__":
    raise SystemExit(main())
