"""Which period a run reconciles (OUTPUTS.md, "The period").

By default the latest payroll month (``gz_ff.ffyf``) not after the run's logical date;
a run parameter may name another, which must then have payroll rows.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from include import periods as P


class NoPayrollError(RuntimeError):
    """The finance database has no payroll month a run could reconcile."""


def resolve_period(finance_url, logical_date: dt.date, requested: str | None = None) -> str:
    """The period ``M`` for a run with this logical date (``YYYY-MM``)."""
    engine = sa.create_engine(finance_url)
    try:
        with engine.connect() as conn:
            months = [r[0] for r in conn.execute(sa.text("SELECT DISTINCT ffyf FROM gz_ff"))]
    finally:
        engine.dispose()
    months = sorted(m.strip() for m in months if m and len(m.strip()) == 6 and m.strip().isdigit())
    if requested:
        P.parse_period(requested)
        if P.to_ffyf(requested) not in months:
            raise NoPayrollError(f"period {requested} was requested but the finance database has no payroll rows for it "
                                 f"(it has {', '.join(P.from_ffyf(m) for m in months[-6:]) or 'none'})")
        return requested
    limit = P.to_ffyf(f"{logical_date.year:04d}-{logical_date.month:02d}")
    eligible = [m for m in months if m <= limit]
    if not eligible:
        raise NoPayrollError(f"no payroll month on or before {logical_date:%Y-%m} in the finance database: "
                             "nothing to reconcile yet")
    return P.from_ffyf(eligible[-1])
