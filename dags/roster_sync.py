"""roster_sync: one run reconciles one period and publishes (OUTPUTS.md).

Thin by design: every step is a function in ``include/pipeline``; this file only wires
them. Nothing here touches a connection or a database at import time.

Built so far (issue 2): the period a run reconciles. Extract, standardise, resolve,
reconcile, quality gates and publish are issues 3-6 and are added as tasks here.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task

DEFAULT_ARGS = {
    "owner": "roster-sync",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=1),
    "retry_exponential_backoff": True,
}


@dag(
    dag_id="roster_sync",
    schedule="0 6 * * *",
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["roster-sync", "reconciliation", "全口径财政供养人员"],
    params={"period": Param(None, type=["null", "string"], pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                            description="YYYY-MM to reconcile; default: the latest payroll month not after the logical date")},
    doc_md=__doc__,
)
def roster_sync():
    @task
    def resolve_period() -> str:
        """The period M: the latest payroll month not after the logical date, or the `period` parameter."""
        from airflow.sdk import BaseHook

        from include.pipeline.connections import sqlalchemy_url
        from include.pipeline.period import resolve_period as resolve

        ctx = get_current_context()
        conn = BaseHook.get_connection("finance_db")
        url = sqlalchemy_url("finance_db", {"conn_type": conn.conn_type, "host": conn.host, "port": conn.port,
                                            "login": conn.login, "password": conn.password, "schema": conn.schema})
        period = resolve(url, ctx["logical_date"].date(), ctx["params"].get("period"))
        print(f"roster_sync reconciles period {period} (logical date {ctx['logical_date']:%Y-%m-%d})")
        return period

    resolve_period()


roster_sync()
