"""Periods (months) and the simulated clock shared by the generator, the simulators and the pipeline.

A period is written ``YYYY-MM`` (the roster's form); finance writes it ``YYYYMM`` (``ffyf``).
All timestamps carry the +08:00 offset of the sources (SOURCES.md: a value without an
offset means +08:00).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

CST = dt.timezone(dt.timedelta(hours=8))
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_period(period: str) -> tuple[int, int]:
    m = _PERIOD.match(period or "")
    if not m:
        raise ValueError(f"a period is written YYYY-MM, got {period!r}")
    return int(m.group(1)), int(m.group(2))


def add_months(period: str, n: int) -> str:
    y, m = parse_period(period)
    k = y * 12 + (m - 1) + n
    return f"{k // 12:04d}-{k % 12 + 1:02d}"


def first_day(period: str) -> dt.date:
    y, m = parse_period(period)
    return dt.date(y, m, 1)


def last_day(period: str) -> dt.date:
    y, m = parse_period(period)
    return dt.date(y, m, calendar.monthrange(y, m)[1])


def to_ffyf(period: str) -> str:
    y, m = parse_period(period)
    return f"{y:04d}{m:02d}"


def from_ffyf(ffyf: str) -> str:
    return f"{ffyf[:4]}-{ffyf[4:6]}"


def snapshot_at(period: str) -> dt.datetime:
    """The simulated moment a period's state is served: 20:00 on the period's last day, +08:00."""
    d = last_day(period)
    return dt.datetime(d.year, d.month, d.day, 20, 0, 0, tzinfo=CST)


def period_range(first: str, count: int) -> list[str]:
    if count < 1:
        raise ValueError("at least one period is needed")
    return [add_months(first, i) for i in range(count)]


def parse_timestamp(value: str) -> dt.datetime:
    """ISO-8601 with or without an offset; no offset means +08:00 (SOURCES.md)."""
    ts = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=CST)
    return ts


def months_between(earlier: str, later: str) -> int:
    """Whole months from period ``earlier`` to period ``later`` (negative when later is earlier)."""
    (y1, m1), (y2, m2) = parse_period(earlier), parse_period(later)
    return (y2 * 12 + m2) - (y1 * 12 + m1)
