"""The operator's guide stays true to the code: every setting the code reads, every topic
issue 7 asks for. (Its table of codes: tests/test_findings_catalogue.py.)"""

import re
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")


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
