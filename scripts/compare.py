"""Compare the liver/tumor networks on the same CT phantoms under the same CPU budget (see bundle/compare.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle.compare import CompareSettings, run_comparison

DEFAULTS = CompareSettings()


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULTS.out, help="output folder (runs/ is git-ignored)")
    parser.add_argument("--networks", type=_names, default=DEFAULTS.networks, help="comma-separated network names")
    parser.add_argument("--cases", type=int, default=DEFAULTS.num_cases, help="phantoms for training + validation")
    parser.add_argument("--heldout", type=int, default=DEFAULTS.num_heldout, help="held-out phantoms")
    parser.add_argument("--size", type=int, default=DEFAULTS.size, help="phantom matrix size (voxels)")
    parser.add_argument("--coarse-epochs", type=int, default=DEFAULTS.coarse_epochs, help="shared coarse stage")
    parser.add_argument("--fine-epochs", type=int, default=DEFAULTS.fine_epochs, help="epochs of each later stage")
    parser.add_argument(
        "--budget-minutes", type=float, default=DEFAULTS.budget_minutes, help="training time limit per network"
    )
    parser.add_argument(
        "--fill-budget", action="store_true", help="every network's last stage trains until the budget ends"
    )
    parser.add_argument("--num-folds", type=int, default=DEFAULTS.num_folds)
    parser.add_argument("--fold", type=int, default=DEFAULTS.fold, help="validation fold")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="phantoms and datalist split")
    parser.add_argument(
        "--real-data", default=str(DEFAULTS.real_data), help="folder of the real labelled cases ('' to skip)"
    )
    parser.add_argument("--real-cases", type=_names, default=DEFAULTS.real_cases, help="comma-separated real cases")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = CompareSettings(
        out=args.out,
        networks=args.networks,
        num_cases=args.cases,
        num_heldout=args.heldout,
        size=args.size,
        coarse_epochs=args.coarse_epochs,
        fine_epochs=args.fine_epochs,
        budget_minutes=args.budget_minutes,
        fill_budget=args.fill_budget,
        num_folds=args.num_folds,
        fold=args.fold,
        seed=args.seed,
        real_data=Path(args.real_data) if args.real_data else None,
        real_cases=args.real_cases,
    )
    return run_comparison(settings)


if __name__ == "__main__":
    raise SystemExit(main())
