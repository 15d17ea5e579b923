"""The workspace over HTTP: a FastAPI app the Airflow api-server serves under ``/roster-sync``
(``plugins/roster_sync_workspace.py``), OUTPUTS.md "The workspace API".

Authenticated as Airflow's own REST API is: a bearer token from the auth manager
(``POST /auth/token``), or the session cookie the Airflow UI sets at login, through
Airflow's own ``get_user`` dependency. Airflow does not authenticate a plugin's app by
itself: every route here depends on :func:`caller`.

Reads ``roster_db`` through the Airflow connection ``roster_db`` (as the DAG does), and the
offices' users from the recipients configuration (the Variable ``roster_sync_recipients``,
else the file).
"""

from __future__ import annotations

import functools
import json
import logging

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from include.workspace import service as W

log = logging.getLogger("roster_sync.workspace")
PREFIX = "/roster-sync"


def is_admin(user) -> bool:
    """Airflow's admin role: the simple auth manager's ``ADMIN`` role, or FAB's ``Admin``."""
    role = getattr(user, "role", None)
    if isinstance(role, str) and role.upper() == "ADMIN":
        return True
    return any(getattr(r, "name", r) == "Admin" for r in (getattr(user, "roles", None) or []))


def _routing():
    from include.alerts.routing import load

    try:
        from airflow.models import Variable

        text = Variable.get("roster_sync_recipients", default_var=None)
    except Exception:   # no metadata database reachable: the file
        text = None
    return load(text)


@functools.lru_cache(maxsize=4)
def _engine(url: str) -> sa.Engine:
    from include.pipeline import database

    return database.engine(url)


def roster_engine() -> sa.Engine:
    """``roster_db`` from the Airflow connection of that name (env, secrets backend or metadata DB)."""
    from airflow.models.connection import Connection

    from include.pipeline.connections import sqlalchemy_url

    c = Connection.get_connection_from_secrets("roster_db")
    extra = c.extra_dejson or {}
    url = sqlalchemy_url("roster_db", {"conn_type": c.conn_type, "host": c.host, "port": c.port, "login": c.login,
                                       "password": c.password, "schema": c.schema, "uri": extra.get("uri")})
    return _engine(url.render_as_string(hide_password=False) if isinstance(url, sa.URL) else str(url))


def create_app(engine_factory=roster_engine, routing_factory=_routing, user_dependency=None) -> FastAPI:
    """The app; the factories and the user dependency are Airflow's by default (a test may
    pass its own)."""
    if user_dependency is None:
        from airflow.api_fastapi.core_api.security import get_user as user_dependency

    app = FastAPI(title="roster-sync workspace", description="全口径财政供养人员数据库：编办工作台",
                  docs_url="/api/docs", openapi_url="/api/openapi.json")

    def caller(user=Depends(user_dependency)) -> W.Caller:
        return W.Caller.of(user.get_name(), is_admin(user), routing_factory())

    @app.exception_handler(W.WorkspaceError)
    async def _refused(request: Request, exc: W.WorkspaceError):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.get("/api/alerts")
    def list_alerts(request: Request, who: W.Caller = Depends(caller)):
        with engine_factory().connect() as conn:
            return W.list_alerts(conn, who, dict(request.query_params))

    @app.get("/api/alerts/{alert_key}")
    def get_alert(alert_key: str, who: W.Caller = Depends(caller)):
        with engine_factory().begin() as conn:    # the view of an unmasked ID is recorded with it
            return W.get_alert(conn, who, alert_key)

    @app.post("/api/alerts/{alert_key}/disposition", status_code=201)
    async def dispose(alert_key: str, request: Request, who: W.Caller = Depends(caller)):
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            raise W.BadRequest("body: not JSON (send {\"status\", \"reason\", \"note\", \"until\"})") from None
        from starlette.concurrency import run_in_threadpool

        def write():
            with engine_factory().begin() as conn:
                return W.dispose(conn, who, alert_key, body)
        return await run_in_threadpool(write)

    return app
