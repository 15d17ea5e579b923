"""The operator's guide stays true to the code: every alert code with the action the digests
print, every setting the code reads, every topic issue 7 asks for."""

import re
from pathlib import Path

from include.alerts import codes as C
from include.pipeline.reconcile import SEVERITY

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")


def test_every_code_is_explained_with_the_action_the_digest_prints():
    section = GUIDE.split("## 9.", 1)[1].split("## 10.", 1)[0]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([A-Z_]+)` \|.*$", section, re.M)}
    assert set(rows) == set(SEVERITY)
    for code, row in rows.items():
        assert C.LABEL[code] in row and C.ACTION[code] in row and f"| {SEVERITY[code]} |" in row, code


def test_the_settings_the_code_reads_are_documented():
    used = set()
    for path in [*ROOT.glob("include/**/*.py"), *ROOT.glob("dags/*.py")]:
        used |= set(re.findall(r"ROSTER_SYNC_[A-Z_]+", path.read_text(encoding="utf-8")))
    documented = set(re.findall(r"ROSTER_SYNC_[A-Z_]+", GUIDE)) | {"ROSTER_SYNC_MAX_PAYROLL_LAG_MONTHS",
                                                                  "ROSTER_SYNC_MAX_HR_LAG_MONTHS"}
    assert used - documented == set()


def test_the_guide_covers_what_operators_need():
    for topic in ("Installing", "secrets backend", "Backfilling", "Rerunning one region", "Data Docs", "quarantine",
                  "Rotating source credentials", "recipients", "bad day"):
        assert topic in GUIDE, topic
