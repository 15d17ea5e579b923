import os
import tempfile
from pathlib import Path

# Airflow reads its configuration at import: give the tests their own home and DAGs folder.
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="roster-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import pytest

from include.generator.world import WorldParams
from worlds import generated

SMALL = WorldParams(persons=1500, periods=2, findings_per_code=2, seed=11)
# A province of seven jurisdictions: its own level, two cities' own levels, four counties.
PROVINCE = WorldParams(persons=4000, periods=2, findings_per_code=2, seed=5, cities=2, jurisdictions=7)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A small jurisdiction, two periods, two injected problems per code."""
    return generated(tmp_path_factory, "world", SMALL)


@pytest.fixture(scope="session")
def province_world(tmp_path_factory):
    """A small province (see PROVINCE), two periods."""
    return generated(tmp_path_factory, "province-world", PROVINCE)


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (no browser download is possible here)."""
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed (scripts/test.sh installs it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def pg():
    """One throwaway PostgreSQL cluster on loopback for the whole session (tests/pg.py)."""
    from pg import Cluster

    cluster = Cluster().start()
    yield cluster
    cluster.stop()
