"""The three HTTP offices of SOURCES.md: staffing (编办), organisation (组织部), HR (人社)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
import time
from pathlib import Path

import numpy as np
import pandas as pd

from include import periods as P
from include.simulators.base import HttpError, SimApp, qint

STAFFING_COLLECTIONS = {  # collection -> sort key (stable paging order)
    "units": ["unit_code"],
    "quotas": ["unit_code", "quota_type"],
    "leader_posts": ["unit_code", "level"],
    "persons": ["record_id"],
}


class StaffingApp(SimApp):
    """编办 real-name system: token auth, cursor paging, ``updated_since``, tombstones."""

    name = "staffing"

    def __init__(self, data_dir, period, faults=None, client_id="roster-sync", client_secret="staffing-secret"):
        self.client_id, self.client_secret = client_id, client_secret
        self.tokens: dict[str, float] = {}
        self._cursor_key = secrets.token_bytes(16)
        super().__init__(data_dir, period, faults)

    def load(self, period: str) -> None:
        P.parse_period(period)
        base = Path(self.data_dir) / "periods" / period / "staffing"
        if not base.exists():
            raise ValueError(f"the data directory has no period {period}")
        collections = {}
        for name, key in STAFFING_COLLECTIONS.items():
            df = pd.read_parquet(base / f"{name}.parquet").sort_values(key, kind="stable", ignore_index=True)
            # Plain object columns: taking a page from Arrow-backed strings costs O(table), not O(page).
            df = df.astype(object).where(df.notna(), None)
            epoch = pd.to_datetime(df.updated_at, format="ISO8601", utc=True).dt.as_unit("s").astype("int64").to_numpy()
            collections[name] = (df, epoch)
        snap = json.loads((base / "snapshot.json").read_text())["snapshot_at"]
        with self.lock:
            self.collections, self.snapshot_at, self.period = collections, snap, period

    # cursors are opaque and signed: an unknown or altered one is a 400
    def _encode_cursor(self, state: dict) -> str:
        raw = json.dumps(state, separators=(",", ":")).encode()
        sig = hmac.new(self._cursor_key, raw, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(raw + sig).decode().rstrip("=")

    def _decode_cursor(self, cursor: str) -> dict:
        try:
            blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            raw, sig = blob[:-12], blob[-12:]
            ok = hmac.compare_digest(sig, hmac.new(self._cursor_key, raw, hashlib.sha256).digest()[:12])
            state = json.loads(raw) if ok else None
        except (binascii.Error, ValueError, UnicodeDecodeError):
            state = None
        if not isinstance(state, dict):
            raise HttpError(400, {"error": "invalid_cursor"})
        return state

    def route(self, handler, method, path, query, body):
        self.maybe_fail()
        if path == "/api/v1/auth/token" and method == "POST":
            try:
                creds = json.loads(body or b"{}")
            except ValueError:
                raise HttpError(400, {"error": "bad_request"}) from None
            if not (isinstance(creds, dict) and hmac.compare_digest(str(creds.get("client_id", "")), self.client_id)
                    and hmac.compare_digest(str(creds.get("client_secret", "")), self.client_secret)):
                raise HttpError(403, {"error": "invalid_client"})
            token = secrets.token_urlsafe(24)
            with self.lock:
                self.tokens[token] = time.monotonic() + self.faults.token_ttl
            self.count("tokens")
            return 200, {"access_token": token, "expires_in": max(1, math.ceil(self.faults.token_ttl))}
        prefix = "/api/v1/"
        if method != "GET" or not path.startswith(prefix) or path[len(prefix):] not in STAFFING_COLLECTIONS:
            raise HttpError(404, {"error": "not_found"})
        auth = handler.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        with self.lock:
            expiry = self.tokens.get(token) if token else None
        if expiry is None or expiry < time.monotonic():
            self.count("401")
            raise HttpError(401, {"error": "token_expired"})
        collection = path[len(prefix):]
        with self.lock:
            df, epoch = self.collections[collection]
            snapshot_at = self.snapshot_at
        if query.get("cursor"):
            state = self._decode_cursor(query["cursor"])
            if state.get("c") != collection:
                raise HttpError(400, {"error": "invalid_cursor"})
            since, size, start = state["s"], state["n"], state["p"]
        else:
            size = qint(query, "page_size", 500, 1, 1000)
            since = None
            if query.get("updated_since"):
                try:
                    since = int(P.parse_timestamp(query["updated_since"]).timestamp())
                except ValueError:
                    raise HttpError(400, {"error": "bad_request", "message": "updated_since must be ISO-8601"}) from None
            start = 0
        idx = np.flatnonzero(epoch > since) if since is not None else None
        if idx is None:
            page = np.arange(start, min(start + size, len(df)))
            more = start + size < len(df)
        else:
            k = int(np.searchsorted(idx, start))
            page = idx[k:k + size]
            more = k + size < len(idx)
        # Serialise the page once, straight from the frame (pandas' C JSON writer).
        items = df.iloc[page].to_json(orient="records", force_ascii=False) if len(page) else "[]"
        dropped = self.faults.drop_field
        if dropped and dropped.startswith(collection + ".") and self.faults.drop_rate > 0:
            field = dropped.split(".", 1)[1]
            parsed = json.loads(items)
            for item in parsed:
                if self.chance(self.faults.drop_rate):
                    item.pop(field, None)
                    self.count("dropped_field")
            items = json.dumps(parsed, ensure_ascii=False)
        nxt = self._encode_cursor({"c": collection, "s": since, "n": size, "p": int(page[-1]) + 1}) if more else None
        body = '{"items":' + items + ',"next_cursor":' + json.dumps(nxt) + ',"snapshot_at":' + json.dumps(snapshot_at) + "}"
        return 200, body.encode()


class OrgApp(SimApp):
    """组织部 cadre system: Basic auth, page/size/total, every value a string, rows that move."""

    name = "org"
    transient_statuses = (503,)

    def __init__(self, data_dir, period, faults=None, user="roster", password="org-secret"):
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        super().__init__(data_dir, period, faults)

    def load(self, period: str) -> None:
        P.parse_period(period)
        path = Path(self.data_dir) / "periods" / period / "org" / "gbxx.parquet"
        if not path.exists():
            raise ValueError(f"the data directory has no period {period}")
        df = pd.read_parquet(path).fillna("").astype(str)
        records = df.to_dict("records")
        with self.lock:
            self.rows = records
            self.order = list(range(len(records)))
            self.period = period

    def route(self, handler, method, path, query, body):
        if not hmac.compare_digest(handler.headers.get("Authorization", ""), self.expected):
            raise HttpError(401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Basic realm="gbxx"'})
        self.maybe_fail()
        if method != "GET" or path != "/gbxx/list":
            raise HttpError(404, {"error": "not_found"})
        page = qint(query, "page", 1, 1, 10**9)
        size = qint(query, "size", 100, 1, 500)
        with self.lock:
            if self.chance(self.faults.page_drift) and len(self.order) > 1:
                # The list changes while it is read: one row moves to another place.
                src = self.rng.randrange(len(self.order))
                row = self.order.pop(src)
                self.order.insert(self.rng.randrange(len(self.order) + 1), row)
                self.count("drift")
            chosen = self.order[(page - 1) * size: page * size]
            rows = [self.rows[i] for i in chosen]
            total = len(self.order)
        dropped = self.faults.drop_field
        if dropped and dropped.startswith("gbxx.") and self.faults.drop_rate > 0:
            field = dropped.split(".", 1)[1]
            rows = [{k: v for k, v in r.items() if k != field} if self.chance(self.faults.drop_rate) else r for r in rows]
        return 200, {"total": total, "page": page, "rows": rows}


class HrApp(SimApp):
    """人社 file exports: API key, index with sizes and sha256, GB18030 CSV, broken downloads."""

    name = "hr"
    transient_statuses = (503,)

    def __init__(self, data_dir, period, faults=None, api_key="hr-secret-key"):
        self.api_key = api_key
        super().__init__(data_dir, period, faults)

    def load(self, period: str) -> None:
        P.parse_period(period)
        path = Path(self.data_dir) / "periods" / period / "hr_index.json"
        if not path.exists():
            raise ValueError(f"the data directory has no period {period}")
        index = json.loads(path.read_text())
        with self.lock:
            self.index, self.period = index, period
            self.names = {e["name"] for e in index}

    def route(self, handler, method, path, query, body):
        if not hmac.compare_digest(handler.headers.get("X-Api-Key", ""), self.api_key):
            raise HttpError(401, {"error": "unauthorized"})
        self.maybe_fail()
        if method != "GET":
            raise HttpError(404, {"error": "not_found"})
        if path == "/exports/index.json":
            with self.lock:
                return 200, list(self.index)
        name = path[len("/exports/"):] if path.startswith("/exports/") else None
        with self.lock:
            known = name in self.names
        if not known:
            raise HttpError(404, {"error": "not_found"})
        data = (Path(self.data_dir) / "hr" / name).read_bytes()
        cut = None
        if self.chance(self.faults.truncate) and len(data) > 1:
            with self.lock:
                cut = self.rng.randrange(len(data))
            self.count("truncated")
        handler.send_bytes(200, data, "text/csv; charset=GB18030", cut_at=cut)
        return None
