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
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from include.workspace import pages
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
    """One engine per roster_db; the first use adds what an earlier version's roster_db lacks."""
    from include.pipeline import database
    from include.pipeline.publish import ensure_schema

    engine = database.engine(url)
    ensure_schema(engine)
    return engine


def roster_engine() -> sa.Engine:
    """``roster_db`` from the Airflow connection of that name (env, secrets backend or metadata DB)."""
    from airflow.models.connection import Connection

    from include.pipeline.connections import sqlalchemy_url

    c = Connection.get_connection_from_secrets("roster_db")
    extra = c.extra_dejson or {}
    url = sqlalchemy_url("roster_db", {"conn_type": c.conn_type, "host": c.host, "port": c.port, "login": c.login,
                                       "password": c.password, "schema": c.schema, "uri": extra.get("uri")})
    return _engine(url.render_as_string(hide_password=False) if isinstance(url, sa.URL) else str(url))


def _is_page(request: Request) -> bool:
    return "/api/" not in request.url.path


def _login_url(next_url: str) -> str:
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login(next_url=next_url)
    except Exception:   # no auth manager (a test's own app): Airflow's default login path
        from urllib.parse import urlencode

        return "/auth/login?" + urlencode({"next": next_url})


def _error_page(exc: W.WorkspaceError, prefix: str) -> str:
    import html

    title = {403: "无权查看", 404: "没有这条问题"}.get(exc.status, "请求有误")
    return (f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body style='font-family:sans-serif;margin:40px'><h1>{title}</h1><p id='error'>{html.escape(exc.zh)}</p>"
            f"<p><a href='{prefix}/'>返回问题清单</a></p></body></html>")


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
        if _is_page(request):
            return HTMLResponse(_error_page(exc, request.scope.get("root_path", "") or ""), status_code=exc.status)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def _unauthenticated(request: Request, exc: HTTPException):
        """A page without a valid login goes to Airflow's login page, and back here after."""
        if _is_page(request) and exc.status_code in (401, 403):
            return RedirectResponse(_login_url(str(request.url)), status_code=303)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    def prefix(request: Request) -> str:
        return request.scope.get("root_path", "") or ""

    @app.get("/", response_class=HTMLResponse)
    def list_page(request: Request, who: W.Caller = Depends(caller)):
        params = {k: v for k, v in request.query_params.items() if v != ""}
        with engine_factory().connect() as conn:
            result = W.list_alerts(conn, who, params)
        return pages.list_page(result, params, who, prefix(request))

    @app.get("/alerts/{alert_key}", response_class=HTMLResponse)
    def alert_page(alert_key: str, request: Request, saved: str | None = None, who: W.Caller = Depends(caller)):
        with engine_factory().begin() as conn:
            alert = W.get_alert(conn, who, alert_key)
        return pages.alert_page(alert, who, prefix(request), message="答复已保存。" if saved else None)

    @app.post("/alerts/{alert_key}", response_class=HTMLResponse)
    async def answer_page(alert_key: str, request: Request, who: W.Caller = Depends(caller)):
        from starlette.concurrency import run_in_threadpool

        form = dict(await request.form())

        def write():
            try:
                with engine_factory().begin() as conn:
                    W.dispose(conn, who, alert_key, pages.form_body(form))
                return None
            except W.BadRequest as exc:     # the page again, with the message and what was typed
                with engine_factory().begin() as conn:
                    alert = W.get_alert(conn, who, alert_key)
                return HTMLResponse(pages.alert_page(alert, who, prefix(request), error=exc.zh,
                                                     form={**form, "reason_choice": form.get("reason")}), status_code=400)
        refused = await run_in_threadpool(write)
        return refused or RedirectResponse(f"{prefix(request)}/alerts/{alert_key}?saved=1", status_code=303)

    @app.get("/api/units/{unit_code}")
    def unit_api(unit_code: str, who: W.Caller = Depends(caller)):
        with engine_factory().connect() as conn:
            return W.unit_view(conn, who, unit_code)

    @app.get("/units/{unit_code}", response_class=HTMLResponse)
    def unit_page(unit_code: str, request: Request, who: W.Caller = Depends(caller)):
        with engine_factory().connect() as conn:
            view = W.unit_view(conn, who, unit_code)
        return pages.unit_page(view, who, prefix(request))

    @app.get("/api/engineers")
    def engineers_api(who: W.Caller = Depends(caller)):
        with engine_factory().connect() as conn:
            return W.engineers_view(conn, who)

    @app.get("/ops", response_class=HTMLResponse)
    def engineers_page(request: Request, who: W.Caller = Depends(caller)):
        with engine_factory().connect() as conn:
            view = W.engineers_view(conn, who)
        return pages.engineers_page(view, who, prefix(request))

    @app.get("/search", response_class=HTMLResponse)
    def search_page(request: Request, q: str = "", who: W.Caller = Depends(caller)):
        q = q.strip()
        if not q:
            return pages.search_page(q, None, who, prefix(request))
        try:
            with engine_factory().connect() as conn:
                result = W.list_alerts(conn, who, {"q": q, "limit": W.LIST_MAX})
        except W.BadRequest as exc:
            return HTMLResponse(pages.search_page(q, None, who, prefix(request), error=exc.zh), status_code=400)
        return pages.search_page(q, result, who, prefix(request))

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
