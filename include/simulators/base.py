"""What every simulated office server shares: HTTP/1.1 on loopback, faults, admin paths.

The offices' own paths are exactly those of ../shared/contracts/SOURCES.md. Paths under
``/_sim/`` are ours (switch the period, set faults, read counters): they are how tests
and ``roster-sim`` steer a running simulator without losing its port.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Faults:
    """Each fault is switchable and has a rate (probability per request)."""

    rate_429: float = 0.0          # 429 Too Many Requests with Retry-After
    rate_5xx: float = 0.0          # transient 502/503/504 (503 only for org and HR)
    retry_after: int = 1           # seconds in the Retry-After header
    token_ttl: float = 600.0       # staffing token lifetime, seconds
    page_drift: float = 0.0        # org: chance a row moves to another page before a page is served
    truncate: float = 0.0          # HR: chance a download breaks off early
    drop_field: str | None = None  # "<collection>.<field>" left out of some items (bad input): staffing's
                                   # collections, or "gbxx.<field>" for the organisation department's rows
    drop_rate: float = 0.0         # chance per item that drop_field is left out
    html: float = 0.0              # chance a request is answered 200 with an HTML page (a proxy's login page)
    seed: int = 7

    @classmethod
    def from_dict(cls, d: dict) -> "Faults":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown fault setting(s): {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    @classmethod
    def all_on(cls, rate: float = 0.05, token_ttl: float = 1.0, seed: int = 7) -> "Faults":
        return cls(rate_429=rate, rate_5xx=rate, retry_after=0, token_ttl=token_ttl, page_drift=rate, truncate=rate, seed=seed)


class HttpError(Exception):
    def __init__(self, status: int, body: dict | None = None, headers: dict | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body or {}, headers or {}


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: "SimApp", host: str, port: int):
        self.app = app
        super().__init__((host, port), SimHandler)


class SimApp:
    """One office's server. Subclasses implement :meth:`route` and :meth:`load`."""

    name = "sim"
    transient_statuses = (502, 503, 504)

    def __init__(self, data_dir, period: str, faults: Faults | None = None):
        self.data_dir = data_dir
        self.faults = faults or Faults()
        self.rng = random.Random(self.faults.seed)
        self.lock = threading.RLock()
        self.counters: dict[str, int] = {}
        self.period = None
        self.load(period)

    # steering
    def load(self, period: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def set_faults(self, faults: Faults) -> None:
        with self.lock:
            self.faults = faults
            self.rng = random.Random(faults.seed)

    def count(self, what: str) -> None:
        with self.lock:
            self.counters[what] = self.counters.get(what, 0) + 1

    def chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self.lock:
            return self.rng.random() < rate

    def maybe_fail(self) -> None:
        """Rate limiting and transient errors, checked before anything else on every endpoint."""
        f = self.faults
        if self.chance(f.rate_429):
            self.count("429")
            raise HttpError(429, {"error": "rate_limited"}, {"Retry-After": str(f.retry_after)})
        if self.chance(f.rate_5xx):
            with self.lock:
                status = self.rng.choice(self.transient_statuses)
            self.count(str(status))
            raise HttpError(status, {"error": "service_unavailable"})

    def route(self, handler: "SimHandler", method: str, path: str, query: dict, body: bytes):  # pragma: no cover
        raise NotImplementedError

    # admin paths
    def admin(self, method: str, path: str, body: bytes):
        if path == "/_sim/status" and method == "GET":
            return 200, {"name": self.name, "period": self.period, "faults": dataclasses.asdict(self.faults), "counters": self.counters}
        if path == "/_sim/period" and method == "POST":
            period = json.loads(body or b"{}").get("period")
            self.load(period)
            return 200, {"period": self.period}
        if path == "/_sim/faults" and method == "POST":
            self.set_faults(Faults.from_dict(json.loads(body or b"{}")))
            return 200, dataclasses.asdict(self.faults)
        raise HttpError(404, {"error": "not_found"})


HTML_PAGE = ("<!DOCTYPE html><html><head><title>统一身份认证</title></head>"
             "<body><form action=/login>请登录</form></body></html>").encode()


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive: clients reuse connections
    server: SimServer

    def log_message(self, fmt, *args):  # quiet: request lines go to the debug log only
        log.debug("%s %s", self.server.app.name, fmt % args)

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            if parts.path.startswith("/_sim/"):
                status, payload = app.admin(method, parts.path, body)
                self.send_json(status, payload)
                return
            app.count("requests")
            if app.chance(app.faults.html):
                app.count("html")
                self.send_bytes(200, HTML_PAGE, "text/html; charset=utf-8")
                return
            result = app.route(self, method, parts.path, query, body)
            if result is not None:
                status, payload = result
                self.send_json(status, payload)
        except HttpError as exc:
            self.send_json(exc.status, exc.body, exc.headers)
        except ValueError as exc:
            self.send_json(400, {"error": "bad_request", "message": str(exc)})
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:  # noqa: BLE001 - a simulator answers 500 like a real server would
            log.exception("%s failed on %s", app.name, self.path)
            self.send_json(500, {"error": "internal"})

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def send_json(self, status: int, payload, headers: dict | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        self.send_bytes(status, data, "application/json; charset=utf-8", headers)

    def send_bytes(self, status: int, data: bytes, content_type: str, headers: dict | None = None, cut_at: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if cut_at is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if cut_at is None:
            self.wfile.write(data)
        else:  # the download breaks off: part of the body, then the connection drops
            self.wfile.write(data[:cut_at])
            self.wfile.flush()
            self.close_connection = True


def qint(query: dict, name: str, default: int, lo: int, hi: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HttpError(400, {"error": "bad_request", "message": f"{name} must be an integer"}) from None
    if not lo <= value <= hi:
        raise HttpError(400, {"error": "bad_request", "message": f"{name} must be between {lo} and {hi}"})
    return value
