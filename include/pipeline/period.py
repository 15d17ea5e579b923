"""Which period a run reconciles (OUTPUTS.md, "The period").

By default the latest payroll month (``gz_ff.ffyf``) not after the run's logical date;
a run parameter may name another, which must then have payroll rows.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from include import periods as P
from include.pipeline.errors import NotRetryable


class NoPayrollError(RuntimeError, NotRetryable):
    """The finance database has no payroll month a run could reconcile."""


def landed_months(root: str, ds: str) -> list[str] | None:
    """The payroll months the finance database had when run ``ds``'s extract landed (``YYYYMM``),
    or None when that extract has not landed."""
    from include.pipeline.store import latest_manifest

    manifest = latest_manifest(root, "finance", at=ds)
    return None if manifest is None else list(manifest.get("state", {}).get("available", []))


def resolve_period(finance_url, logical_date: dt.date, requested: str | None = None,
                   months: list[str] | None = None) -> str:
    """The period ``M`` for a run with this logical date (``YYYY-MM``).

    ``months``: the payroll months to choose from, as the run's finance extract saw them
    (:func:`landed_months`), so that a rerun of a logical date resolves the same period
    whatever the finance database holds today; without them, the database is asked.
    """
    if months is None:
        engine = sa.create_engine(finance_url, hide_parameters=True)
        try:
            with engine.connect() as conn:
                months = [r[0] for r in conn.execute(sa.text("SELECT DISTINCT ffyf FROM gz_ff"))]
        except sa.exc.DBAPIError as exc:
            from include.pipeline.extract.finance import database_error
            raise database_error("finance_db", exc) from None
        finally:
            engine.dispose()
    months = sorted(m.strip() for m in months if m and len(m.strip()) == 6 and m.strip().isdigit())
    if requested:
        P.parse_period(requested)
        if P.to_ffyf(requested) not in months:
            raise NoPayrollError(f"finance_db: period {requested} was requested but the finance database has no payroll rows for it "
                                 f"(it has {', '.join(P.from_ffyf(m) for m in months[-6:]) or 'none'})")
        return requested
    limit = P.to_ffyf(f"{logical_date.year:04d}-{logical_date.month:02d}")
    eligible = [m for m in months if m <= limit]
    if not eligible:
        raise NoPayrollError(f"finance_db: no payroll month on or before {logical_date:%Y-%m} in the finance database: "
                             "nothing to reconcile yet")
    return P.from_ffyf(eligible[-1])
