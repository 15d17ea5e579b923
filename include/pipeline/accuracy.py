"""Accuracy: what a run found against the generator's ground truth, per code and for the roster.

    roster-accuracy --data var/demo/data --period 2026-10 --roster-db sqlite:///var/demo/roster.db

Findings are compared on each code's key (OUTPUTS.md "The codes"): the unit and quota
type for OVER_QUOTA, the unit and level for LEADER_OVER_LIMIT, the unit for the other
unit-level codes, the person for person-level codes, the source and raw value for
INVALID_ID.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from include.findings import CODES, key_columns


def finding_keys(findings: pd.DataFrame) -> set[tuple]:
    keys = set()
    for row in findings.to_dict("records"):
        cols = key_columns(row["code"])
        keys.add((row["code"],) + tuple(None if pd.isna(row.get(c)) else str(row.get(c)) for c in cols))
    return keys


def compare(found: pd.DataFrame, expected: pd.DataFrame, roster_found, roster_expected) -> pd.DataFrame:
    f, e = finding_keys(found), finding_keys(expected)
    rows = []
    codes = sorted({k[0] for k in e | f} | set(CODES))
    for code in codes:
        ec, fc = {k for k in e if k[0] == code}, {k for k in f if k[0] == code}
        hit = len(ec & fc)
        rows.append({"what": code, "expected": len(ec), "found": len(fc),
                     "recall": hit / len(ec) if ec else 1.0, "precision": hit / len(fc) if fc else 1.0})
    rf, re_ = set(roster_found), set(roster_expected)
    hit = len(rf & re_)
    rows.append({"what": "ROSTER", "expected": len(re_), "found": len(rf),
                 "recall": hit / len(re_) if re_ else 1.0, "precision": hit / len(rf) if rf else 1.0})
    return pd.DataFrame(rows)


def render(table: pd.DataFrame) -> str:
    lines = [f"{'what':30s} {'expected':>9s} {'found':>9s} {'recall':>7s} {'precision':>9s}"]
    for r in table.itertuples():
        lines.append(f"{r.what:30s} {r.expected:9,d} {r.found:9,d} {r.recall:7.2f} {r.precision:9.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    import sqlalchemy as sa

    from include.generator import oracle

    ap = argparse.ArgumentParser(prog="roster-accuracy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the generated data directory (its truth)")
    ap.add_argument("--period", required=True)
    ap.add_argument("--roster-db", required=True, help="SQLAlchemy URL of roster_db")
    args = ap.parse_args(argv)
    truth = oracle.load(args.data, args.period)
    engine = sa.create_engine(args.roster_db, hide_parameters=True)
    with engine.connect() as c:
        found = pd.read_sql(sa.text("SELECT * FROM reconciliation_finding WHERE period = :p"), c, params={"p": args.period})
        roster = pd.read_sql(sa.text("SELECT id_number FROM roster WHERE period = :p"), c, params={"p": args.period})
    engine.dispose()
    table = compare(found, truth["findings"], roster.id_number, truth["roster"])
    print(render(table))
    perfect = bool((table.recall == 1).all() and (table.precision == 1).all())
    print("all 1.00" if perfect else "NOT all 1.00")
    return 0 if perfect else 1


if __name__ == "__main__":
    sys.exit(main())
