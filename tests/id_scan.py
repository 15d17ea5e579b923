"""Find full ID numbers in text: the ones a generated world holds, and anything shaped like one."""

from __future__ import annotations

import re

from include.generator import oracle

_SHAPE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def _checks(s: str) -> bool:   # GB 11643 check character, written here apart from include.identifiers
    return "10X98765432"[sum(int(c) * w for c, w in zip(s[:17], _W)) % 11] == s[17].upper()


def known_ids(world, periods) -> set[str]:
    ids = set()
    for p in periods:
        t = oracle.load(world, p)
        ids.update(t["roster"])
        for col in ("id_number", "raw_value"):
            ids.update(v.strip() for v in t["findings"][col].dropna() if len(v.strip()) >= 15)
    return ids


def full_ids_in(text: str, known: set[str]) -> list[str]:
    """Every full ID in ``text``: a known one anywhere, or an 18-character shape whose check character is right."""
    hits = [m.group(0) for m in _SHAPE.finditer(text) if _checks(m.group(0))]
    hits += [k for k in known if k in text]
    return sorted(set(hits))
