"""Why the phantom model over-segments tumors: the demo recipe with one factor changed at a time (class weights,
patch centres, epochs), the same phantoms and seed, and the tumor threshold and clean-up re-run on the saved
probabilities. Writes ``study.json`` and ``study.md`` (bundle/phantom_study.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle.phantom_study import VARIANTS, run_study


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/phantom_study", help="output folder")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--cases", type=int, default=8, help="phantoms to train and validate on")
    parser.add_argument("--heldout", type=int, default=4, help="phantoms held out for scoring")
    parser.add_argument("--size", type=int, default=128, help="phantom matrix (the demo's: 128)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    variants = {name: VARIANTS[name] for name in args.variants}
    return run_study(Path(args.out), variants, args.cases, args.heldout, args.size, args.seed)


if __name__ == "__main__":
    raise SystemExit(main())
