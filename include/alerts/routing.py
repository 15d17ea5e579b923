"""Which staffing office (编办) receives which finding, and who the data engineers are.

Recipients are configuration, versioned with the code in ``config/recipients.json`` and
overridable per deployment: by the file named in ``ROSTER_SYNC_RECIPIENTS``, or, in
Airflow, by the Variable ``roster_sync_recipients`` (the same JSON). The shape::

    {
      "offices": {
        "150204": {"name": "青山区委编办", "region": "包头市青山区", "to": ["bb@qingshan.example.gov.cn"], "cc": [],
                   "users": ["qs_clerk"]},
        "150200": {"name": "包头市委编办", "to": ["bb@baotou.example.gov.cn"]},
        "150000": {"name": "自治区党委编办", "to": ["bb@nmg.example.gov.cn"]}
      },
      "default_office": "150000",
      "engineers": ["roster-sync-ops@example.org"]
    }

A finding goes to the office of its ``region_code`` (OUTPUTS.md: the staffing office
that must act). Where that region has no office configured it goes up the hierarchy of
GB/T 2260 codes: county ``PPCCDD`` -> city ``PPCC00`` -> province ``PP0000``. A finding
with no region at all (``LEADER_OVER_LIMIT`` for a unit no staffing record knows) goes to
``default_office``, the top of the configured hierarchy.

``users`` lists an office's users of the workspace (their login names in Airflow): a user
sees and answers the findings of the office's region and the regions under it
(OUTPUTS.md "Who may see and say what"); a user listed by two offices sees both.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "recipients.json"
ENV_CONFIG = "ROSTER_SYNC_RECIPIENTS"
_REGION = re.compile(r"\d{6}")
_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")


class RoutingConfigError(ValueError):
    """The recipients configuration cannot be used; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class Office:
    region_code: str                       # the region whose staffing office this is
    name: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    region_name: str | None = None         # the jurisdiction's name, for report titles
    users: tuple[str, ...] = ()            # the office's users of the workspace (Airflow login names)


@dataclasses.dataclass(frozen=True)
class Routing:
    offices: Mapping[str, Office]
    default_office: str
    engineers: tuple[str, ...] = ()

    def office_code(self, region_code: object) -> str:
        """The configured office that must act for ``region_code`` (county -> city -> province)."""
        for code in lineage(region_code):
            if code in self.offices:
                return code
        return self.default_office

    def region_name(self, region_code: str) -> str:
        """The jurisdiction's name where configured, else its code."""
        office = self.offices.get(region_code)
        return office.region_name if office and office.region_name else f"区划 {region_code}"

    def offices_of(self, user: str) -> list[str]:
        """The offices (their region codes) that list ``user``."""
        return sorted(code for code, office in self.offices.items() if user in office.users)

    def route(self, region_codes: pd.Series) -> pd.Series:
        """:meth:`office_code` over a column; one lookup per distinct region."""
        distinct = region_codes.astype(object).where(region_codes.notna(), None).drop_duplicates()
        table = {r: self.office_code(r) for r in distinct}
        return region_codes.astype(object).where(region_codes.notna(), None).map(table).astype(object)


def lineage(region_code: object) -> list[str]:
    """The region and the levels above it: ``150204`` -> ``[150204, 150200, 150000]``."""
    if region_code is None or (isinstance(region_code, float) and pd.isna(region_code)) or region_code is pd.NA:
        return []
    code = str(region_code).strip()
    if not _REGION.fullmatch(code):
        return []
    out = [code]
    for parent in (code[:4] + "00", code[:2] + "0000"):
        if parent != out[-1]:
            out.append(parent)
    return out


def covers(region: str, region_code: object) -> bool:
    """Whether ``region`` is ``region_code`` or lies above it (GB/T 2260: ``PP0000`` covers
    ``PP****``, ``PPCC00`` covers ``PPCC**``)."""
    return region in lineage(region_code)


def region_prefix(region: str) -> str:
    """The prefix every region code ``region`` covers starts with: ``150000`` -> ``15``,
    ``150200`` -> ``1502``, ``150204`` -> ``150204``."""
    if region[2:] == "0000":
        return region[:2]
    if region[4:] == "00":
        return region[:4]
    return region


def parse(config: Mapping, origin: str = "recipients") -> Routing:
    """Check and build a :class:`Routing` from the JSON shape above."""
    def fail(msg: str):
        raise RoutingConfigError(f"{origin}: {msg}")

    if not isinstance(config, Mapping):
        fail("must be a JSON object")
    raw = config.get("offices")
    if not isinstance(raw, Mapping) or not raw:
        fail('"offices" must be an object with at least one region code')
    offices = {}
    for code, o in raw.items():
        if not _REGION.fullmatch(str(code)):
            fail(f"office key {code!r} is not a 6-digit region code (GB/T 2260)")
        if not isinstance(o, Mapping):
            fail(f"office {code}: must be an object with name and to")
        to, cc = o.get("to") or [], o.get("cc") or []
        if isinstance(to, str) or isinstance(cc, str):
            fail(f"office {code}: to and cc are lists of addresses")
        if not to:
            fail(f"office {code}: no recipients in to")
        for addr in [*to, *cc]:
            if not isinstance(addr, str) or not _EMAIL.fullmatch(addr.strip()):
                fail(f"office {code}: {addr!r} is not an e-mail address")
        users = o.get("users") or []
        if isinstance(users, str) or not all(isinstance(u, str) and u.strip() and u.strip() == u for u in users):
            fail(f"office {code}: users is a list of login names (non-empty, no surrounding spaces)")
        offices[str(code)] = Office(str(code), str(o.get("name") or f"{code} 机构编制委员会办公室"),
                                    tuple(a.strip() for a in to), tuple(a.strip() for a in cc),
                                    str(o["region"]) if o.get("region") else None, tuple(users))
    default = str(config.get("default_office") or "")
    if not default:   # the top of the configured hierarchy: the shortest lineage, then the lowest code
        default = min(offices, key=lambda c: (len(lineage(c)), c))
    if default not in offices:
        fail(f'"default_office" {default!r} is not one of the offices')
    engineers = config.get("engineers") or []
    for addr in engineers:
        if not isinstance(addr, str) or not _EMAIL.fullmatch(addr.strip()):
            fail(f"engineers: {addr!r} is not an e-mail address")
    return Routing(offices, default, tuple(a.strip() for a in engineers))


def load(text: str | None = None, path: str | os.PathLike | None = None) -> Routing:
    """The routing in force: ``text`` (an Airflow Variable's JSON) if given, else the file at
    ``path``, else ``$ROSTER_SYNC_RECIPIENTS``, else ``config/recipients.json``."""
    if text:
        origin = "Variable roster_sync_recipients"
    else:
        p = Path(path or os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG)
        origin = str(p)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise RoutingConfigError(f"{origin}: cannot read the recipients file ({exc.strerror})") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RoutingConfigError(f"{origin}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return parse(config, origin)
