"""Start, steer and stop the four simulated offices together."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from pathlib import Path

from include.generator.generate import load_manifest
from include.simulators import finance
from include.simulators.base import Faults, SimServer
from include.simulators.offices import HrApp, OrgApp, StaffingApp

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"staffing": 8081, "org": 8082, "hr": 8084}


@dataclasses.dataclass(frozen=True)
class Credentials:
    staffing_client_id: str = "roster-sync"
    staffing_client_secret: str = "staffing-secret"
    org_user: str = "roster"
    org_password: str = "org-secret"
    hr_api_key: str = "hr-secret-key"


class Simulators:
    """The four offices serving one period of a data directory.

    ``ports`` of 0 pick free ports (tests); the defaults are those of OUTPUTS.md's examples.
    The finance database is written to ``finance_url`` (default: ``DATA/finance.db``).
    """

    def __init__(self, data_dir: str | Path, period: str | None = None, faults: Faults | None = None,
                 host: str = "127.0.0.1", ports: dict | None = None, finance_url: str | None = None,
                 credentials: Credentials = Credentials()):
        self.data_dir = Path(data_dir)
        manifest = load_manifest(self.data_dir)
        self.periods = manifest["periods"]
        self.period = period or self.periods[0]
        if self.period not in self.periods:
            raise ValueError(f"period {self.period} is not in the data directory (it has {', '.join(self.periods)})")
        self.host = host
        self.ports = {**DEFAULT_PORTS, **(ports or {})}
        self.finance_url = finance_url or f"sqlite:///{(self.data_dir / 'finance.db').resolve()}"
        self.credentials = credentials
        faults = faults or Faults()
        c = credentials
        self.apps = {
            "staffing": StaffingApp(self.data_dir, self.period, faults, c.staffing_client_id, c.staffing_client_secret),
            "org": OrgApp(self.data_dir, self.period, faults, c.org_user, c.org_password),
            "hr": HrApp(self.data_dir, self.period, faults, c.hr_api_key),
        }
        self.servers: dict[str, SimServer] = {}
        self.threads: list[threading.Thread] = []

    # lifecycle
    def start(self) -> "Simulators":
        finance.materialise(self.data_dir, self.period, self.finance_url)
        for name, app in self.apps.items():
            server = SimServer(app, self.host, self.ports[name])
            self.servers[name] = server
            t = threading.Thread(target=server.serve_forever, name=f"sim-{name}", daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()
        self.servers.clear()

    def __enter__(self) -> "Simulators":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # steering
    def url(self, name: str) -> str:
        port = self.servers[name].server_address[1] if name in self.servers else self.ports[name]
        return f"http://{self.host}:{port}"

    def advance(self, period: str) -> None:
        """Serve another period on the same ports (and rewrite the finance tables)."""
        if period not in self.periods:
            raise ValueError(f"period {period} is not in the data directory (it has {', '.join(self.periods)})")
        finance.materialise(self.data_dir, period, self.finance_url)
        for app in self.apps.values():
            app.load(period)
        self.period = period

    def set_faults(self, faults: Faults) -> None:
        for app in self.apps.values():
            app.set_faults(faults)

    def counters(self) -> dict:
        return {name: dict(app.counters) for name, app in self.apps.items()}

    def connections(self) -> dict[str, dict]:
        """The Airflow connections (OUTPUTS.md, JSON form) that point at these simulators."""
        c = self.credentials
        if self.finance_url.startswith("sqlite:///"):
            finance_conn = {"conn_type": "sqlite", "host": self.finance_url[len("sqlite:///"):]}
        else:   # the OUTPUTS.md form: host, port, login, password, schema (= the database)
            import sqlalchemy as sa
            u = sa.engine.make_url(self.finance_url)
            finance_conn = {"conn_type": "postgres", "host": u.host, "port": u.port, "login": u.username,
                            "password": u.password, "schema": u.database}
        return {
            "staffing_api": {"conn_type": "http", "host": self.url("staffing"), "login": c.staffing_client_id, "password": c.staffing_client_secret},
            "org_api": {"conn_type": "http", "host": self.url("org"), "login": c.org_user, "password": c.org_password},
            "finance_db": finance_conn,
            "hr_exports": {"conn_type": "http", "host": self.url("hr"), "password": c.hr_api_key},
        }

    def env(self) -> dict[str, str]:
        return {f"AIRFLOW_CONN_{k.upper()}": json.dumps(v) for k, v in self.connections().items()}
