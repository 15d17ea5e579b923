"""The pipeline's settings: read here, from the environment, at call time (never at import).

Each setting is a ``ROSTER_SYNC_*`` environment variable with a default; the operator's
guide (docs/OPERATIONS.md §Settings) lists them and a test keeps the list true. Reading
them at call time lets a test or a worker change one without re-importing anything.

Older settings still read where they are used (standardise's freshness limits, the data
root, the region level); new ones belong here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass


class SettingError(ValueError):
    """A setting that cannot be read; names the variable, never a secret."""


def _float(name: str, default: float, lo: float = 0.0, hi: float = float("inf")) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise SettingError(f"{name}={raw!r} must be between {lo:g} and {hi:g}")
    return value


def _int(name: str, default: int, lo: int = 0) -> int:
    value = _float(name, default, lo)
    if value != int(value):
        raise SettingError(f"{name}={os.environ.get(name)!r} must be a whole number")
    return int(value)


def quarantine_limit(source: str) -> float:
    """The largest share of a source's rows that may be quarantined before the run stops
    (standardise's batch gate), per source and per reason.

    ``ROSTER_SYNC_MAX_QUARANTINE_SHARE`` (default 0.05), or per source
    ``ROSTER_SYNC_MAX_QUARANTINE_SHARE_<SOURCE>`` (``STAFFING``, ``ORG``, ``FINANCE``, ``HR``, and the
    tables ``UNITS``, ``QUOTAS``, ``LEADER_POSTS`` of staffing and ``YS_DW`` of finance). A few bad rows are set aside and the run goes on; a missing or renamed field
    quarantines every row, which is a broken source, not a few bad rows.
    """
    default = _float("ROSTER_SYNC_MAX_QUARANTINE_SHARE", 0.05, 0.0, 1.0)
    return _float(f"ROSTER_SYNC_MAX_QUARANTINE_SHARE_{source.upper()}", default, 0.0, 1.0)


@dataclass(frozen=True)
class PublishBands:
    """How far a period may move from the last published one before publish stops
    (:mod:`include.quality.publish_gate`). Shares are of the last published roster's size.

    Measured on the generator's evolving periods (hires, leavers, transfers, a third of
    last month's problems fixed and as many new ones): a normal month moves the roster by
    under 2% and opens or resolves alerts for under 1% of it (docs/OPERATIONS.md §4 has
    the figures); a flood is on the scale of the roster itself.
    """

    roster_change: float = 0.10     # |persons now - persons before| / persons before
    opened: float = 0.05            # alerts that would open or reopen, / persons before
    resolved: float = 0.05          # alerts that would resolve, / persons before
    code_growth: float = 0.03       # growth of one code's findings, / persons before
    floor: int = 25                 # changes of fewer findings than this never trip a band (small counties)


def publish_bands() -> PublishBands:
    """``ROSTER_SYNC_PUBLISH_BANDS``: JSON overriding any of :class:`PublishBands`' fields,
    e.g. ``{"roster_change": 0.2}``."""
    raw = os.environ.get("ROSTER_SYNC_PUBLISH_BANDS")
    if not raw or not raw.strip():
        return PublishBands()
    try:
        given = json.loads(raw)
        return PublishBands(**given)
    except (ValueError, TypeError) as exc:
        raise SettingError(f"ROSTER_SYNC_PUBLISH_BANDS is not a JSON object of {list(PublishBands.__annotations__)}: "
                           f"{exc}") from None


def lock_wait_seconds() -> int:
    """How long a run waits for another run's lock (publish, a logical date's raw or work
    directory) before it fails clearly: ``ROSTER_SYNC_LOCK_WAIT_SECONDS`` (default 600)."""
    return _int("ROSTER_SYNC_LOCK_WAIT_SECONDS", 600)


def report_batches() -> int:
    """How many mapped tasks build the month's reports (数据月报), each a share of the
    jurisdictions, in parallel as the executor allows: ``ROSTER_SYNC_REPORT_BATCHES``
    (default 4)."""
    return max(1, _int("ROSTER_SYNC_REPORT_BATCHES", 4, lo=1))


def data_docs_index_limit() -> int | None:
    """How many validations, the newest, the Data Docs index lists: ``ROSTER_SYNC_DATA_DOCS_INDEX_LIMIT``
    (default 250, a month of nights at eight suites a night; 0: every one). Each build of the
    index reads back every validation it lists, about 4 ms each: unbounded, a night's two
    builds would grow with the history (1.4-1.8 s each at 410 validations; after a year of
    nights, about 3,000 validations, some 12 s each). Older validations keep their pages; only
    the index stops linking them."""
    return _int("ROSTER_SYNC_DATA_DOCS_INDEX_LIMIT", 250) or None


def reconcile_memory() -> str | None:
    """DuckDB's memory limit in each reconcile task: ``ROSTER_SYNC_RECONCILE_MEMORY`` (default
    ``2GB``; ``none``: DuckDB's own default, 80% of the machine). Past it DuckDB spills its joins
    to disk. Measured at 2M persons in one piece: 3.3 GB at 23.5 s without a limit, 2.1 GB at
    28.5 s with 2GB, 1.7 GB at 31.4 s with 1500MB."""
    import re

    raw = os.environ.get("ROSTER_SYNC_RECONCILE_MEMORY", "2GB").strip()
    if raw.lower() in ("", "none"):
        return None
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", raw, flags=re.IGNORECASE):
        raise SettingError(f"ROSTER_SYNC_RECONCILE_MEMORY={raw!r}: give a size such as 2GB or 1500MB, or none")
    return raw


def expectations_dir():
    """The directory of the Great Expectations suites (one JSON file a suite, named as the suite):
    ``ROSTER_SYNC_EXPECTATIONS_DIR`` (default the project's ``expectations/``). A deployment that
    keeps its own suites (other severities, added expectations) points here."""
    from pathlib import Path

    raw = os.environ.get("ROSTER_SYNC_EXPECTATIONS_DIR", "").strip()
    if not raw:
        return Path(__file__).resolve().parents[1] / "expectations"
    if not Path(raw).is_dir():
        raise SettingError(f"ROSTER_SYNC_EXPECTATIONS_DIR={raw!r} is not a directory")
    return Path(raw)


def workspace_url() -> str | None:
    """Where the offices open the workspace, as they reach the api-server (e.g.
    ``https://roster.example.gov.cn/roster-sync``): ``ROSTER_SYNC_WORKSPACE_URL``. When set,
    each digest line links to its finding's page; unset, digests carry no links."""
    raw = os.environ.get("ROSTER_SYNC_WORKSPACE_URL", "").strip()
    if raw and not raw.startswith(("http://", "https://")):
        raise SettingError(f"ROSTER_SYNC_WORKSPACE_URL must be an http(s) address, not {raw!r}")
    return raw.rstrip("/") or None
