"""CPU benchmark: machine peak, per-network cost of a 224x224x12 patch, whole-case inference (bundle.perf).

python scripts/benchmark.py --quick --json /tmp/bench.json   # under 5 minutes
python scripts/benchmark.py --json bench.json                # everything (paper networks' training steps,
                                                             # paper cascade on every case, MONAI baseline)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bundle.perf.benchmark import format_table, run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a subset that runs in under 5 minutes")
    parser.add_argument("--json", type=Path, help="write the full result as JSON to this path")
    parser.add_argument("--timeout", type=float, help="seconds per measurement subprocess")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    result = run_benchmark(quick=args.quick, timeout=args.timeout)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(format_table(result))


if __name__ == "__main__":
    main()
