"""``roster-gen``: generate a synthetic jurisdiction with known truth.

    roster-gen --persons 7000 --periods 2 --out var/data
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from include.generator.generate import generate
from include.generator.world import WorldParams


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="roster-gen", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="data directory to write (created; replaced with --force)")
    ap.add_argument("--persons", type=int, default=7000, help="persons on the books in the first period (default: a county, 7000)")
    ap.add_argument("--seed", type=int, default=20261)
    ap.add_argument("--first-period", default="2026-10", help="YYYY-MM of the first period")
    ap.add_argument("--periods", type=int, default=2, help="consecutive periods to generate")
    ap.add_argument("--findings-per-code", type=int, default=3, help="injected problems per finding code (0: a clean baseline)")
    ap.add_argument("--cities", type=int, default=None, help="cities in a province (default: from --persons)")
    ap.add_argument("--jurisdictions", type=int, default=None,
                    help="jurisdictions to spread the persons over (default: one per ~7,400 persons)")
    ap.add_argument("--force", action="store_true", help="replace an existing data directory")
    args = ap.parse_args(argv)
    params = WorldParams(persons=args.persons, seed=args.seed, first_period=args.first_period, periods=args.periods,
                         findings_per_code=args.findings_per_code, cities=args.cities,
                         jurisdictions=args.jurisdictions)
    try:
        params.validate()
    except ValueError as exc:
        print(f"roster-gen: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        if not args.force:
            print(f"roster-gen: {out} is not empty; pass --force to replace it", file=sys.stderr)
            return 2
        shutil.rmtree(out)
    generate(params, out, progress=lambda msg: print(msg, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
