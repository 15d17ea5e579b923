"""The evidence of findings as an office reads it: masked, and laid out by kind of record.

``alert_evidence`` (OUTPUTS.md "Evidence") keeps every record a finding rests on with its
fields as received, IDs unmasked: it is a data store. Whatever leaves it for an office (a
digest line, the workbook attached to a digest) passes through here, where every ID is
masked (first 6 and last 4 characters): the ID field of each source's rows, the ID part of
a record key, and, as a second line of defence, anything else shaped like an ID.

Records are grouped by kind, each kind one sheet of the workbook with the record's own
fields as columns, as the source wrote them, so a clerk can find the same row in the
source system.
"""

from __future__ import annotations

import json

import pandas as pd
import sqlalchemy as sa

from include.alerts.codes import SOURCE_LABEL
from include.identifiers import mask_id, redact
from include.pipeline.publish import evidence_table
from include.pipeline.received import RECORD_KEYS
from include.pipeline.standardise import ID_FIELDS

# Each kind of record: its sheet's title, in the order the workbook shows them. The key's
# prefix says the kind (OUTPUTS.md "Record keys"); an HR row's key starts with its file name.
KINDS = {
    "quotas": "编制核定", "leader_posts": "领导职数", "units": "机构",
    "persons": "实名制人员", "gbxx": "组织部干部", "gz_ff": "财政工资", "hr": "人社参保",
}
# Where the ID sits in a record key (1 after the prefix): from the key's own definition.
_KEY_ID_PART = {prefix: 1 + fields.index(ID_FIELDS[source])
                for source, (prefix, fields) in RECORD_KEYS.items() if ID_FIELDS[source] in fields}


def kind(source: str, record_key: str) -> str:
    return "hr" if source == "hr" else record_key.split("|", 1)[0]


def kind_order(source: str, record_key: str) -> int:
    """Where a record comes in a list of evidence: in :data:`KINDS` order (reference items first)."""
    k = kind(source, record_key)
    return _ORDER.get(k, len(_ORDER))


_ORDER = {k: i for i, k in enumerate(KINDS)}


def masked_key(source: str, record_key: str) -> str:
    """A record key to show: its ID part masked."""
    parts = record_key.split("|")
    at = _KEY_ID_PART.get(parts[0]) if source != "hr" else None
    if at is not None and at < len(parts):
        parts[at] = mask_id(parts[at])
    return redact("|".join(parts))


def masked_facts(source: str, facts: str | None) -> dict:
    """A record's fields as received, its ID masked; every other text value redacted."""
    try:
        d = json.loads(facts) if facts else {}
    except (TypeError, ValueError):
        return {}
    out = {}
    for k, v in d.items():
        if k == ID_FIELDS.get(source) and v is not None:
            out[k] = mask_id(v)
        elif isinstance(v, str):
            out[k] = redact(v)
        else:
            out[k] = v
    return out


def load(conn, alerts: pd.DataFrame) -> pd.DataFrame:
    """The evidence of ``alerts`` (columns ``alert_key``, ``last_seen``) from the period each
    was last seen in: columns alert_key, source, record_key, facts (unmasked)."""
    cols = ["alert_key", "source", "record_key", "facts"]
    if alerts.empty:
        return pd.DataFrame(columns=cols)
    wanted = alerts[["alert_key", "last_seen"]].drop_duplicates()
    e = evidence_table.c
    parts = []
    for period, keys in wanted.groupby("last_seen").alert_key:
        keys = sorted(keys)
        for i in range(0, len(keys), 500):
            parts.append(pd.read_sql(sa.select(e.alert_key, e.source, e.record_key, e.facts).where(
                e.period == period, e.alert_key.in_(keys[i:i + 500])), conn))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    return out.sort_values(["alert_key", "source", "record_key"], ignore_index=True)


def keys_line(ev: pd.DataFrame, shown: int = 3) -> dict[str, str]:
    """For each alert key, its records to look up, masked: the first few keys (reference
    items first), then how many there are in all."""
    out = {}
    if ev.empty:
        return out
    ev = ev.assign(_k=[kind_order(s, k) for s, k in zip(ev.source, ev.record_key)])
    ev = ev.sort_values(["alert_key", "_k", "record_key"], kind="stable")
    for key, g in ev.groupby("alert_key", sort=False):
        first = [f"{SOURCE_LABEL.get(s, s)} {masked_key(s, k)}" for s, k in zip(g.source.iloc[:shown], g.record_key.iloc[:shown])]
        more = f" 等共 {len(g)} 条（见附件）" if len(g) > shown else ""
        out[key] = "；".join(first) + more
    return out


def sheets(ev: pd.DataFrame, about: dict[str, dict]) -> dict[str, pd.DataFrame]:
    """The evidence as one table per kind of record: which finding (``about[alert_key]``:
    the columns that say so, e.g. 问题, 人员), the record's key, then its fields as received,
    masked. Kinds in :data:`KINDS` order."""
    out = {}
    if ev.empty:
        return out
    kinds = [kind(s, k) for s, k in zip(ev.source, ev.record_key)]
    ev = ev.assign(_kind=kinds)
    for k in [*KINDS, *sorted(set(kinds) - set(KINDS))]:
        part = ev[ev._kind == k]
        if part.empty:
            continue
        rows = []
        for a, s, rk, facts in zip(part.alert_key, part.source, part.record_key, part.facts):
            rows.append({**about.get(a, {}), "记录键": masked_key(s, rk), **masked_facts(s, facts)})
        out[KINDS.get(k, k)[:31]] = pd.DataFrame(rows)
    return out
