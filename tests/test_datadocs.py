"""Data Docs with no network (issue 18): the site serves its own scripts, styles and fonts.

A suite of three expectations (two critical, one warning that fails) is validated with
Great Expectations and its Data Docs built, as the pipeline does. The site is then opened
in Chromium with every request that is not a local file refused, as on an air-gapped
intranet: the index must list the validation, the status icons must be drawn, and the
validation page must show each expectation's severity. The same site as GX left it, before
:func:`localise`, lists nothing under the same conditions (the test can fail).

Screenshots: var/screenshots/datadocs/.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from include.quality.datadocs import ASSETS, ASSETS_DIR, PACKAGES
from include.quality.gates import validate

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "var" / "screenshots" / "datadocs"
SHOTS.mkdir(parents=True, exist_ok=True)
SUITE = {"name": "offline_demo", "meta": {"about": "Data Docs offline"}, "expectations": [
    {"type": "expect_column_to_exist", "kwargs": {"column": "unit_code"}, "meta": {"severity": "critical"}},
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}, "meta": {"severity": "critical"}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "status", "value_set": ["active"]},
     "meta": {"severity": "warning"}},
]}


@pytest.fixture(scope="module")
def sites(tmp_path_factory, monkeypatch_module):
    tmp = tmp_path_factory.mktemp("datadocs")
    (tmp / "suites").mkdir()
    (tmp / "suites" / "offline_demo.json").write_text(json.dumps(SUITE))
    # GX's site exactly as GX writes it: the pipeline's rewrite held back for this first build
    import include.quality.gates as gates

    monkeypatch_module.setattr(gates, "localise", lambda site, pages=None: 0)
    frame = pd.DataFrame({"unit_code": ["A1", "A2", "A3"], "status": ["active", "revoked", "active"]})
    gate = validate(frame, "offline_demo", str(tmp / "gx"), expectations_dir=tmp / "suites", run_name="2026-10-31_2026-10")
    site = Path(gate.docs[len("file://"):]).parent
    raw = tmp / "as_gx_wrote_it"
    shutil.copytree(site, raw)
    monkeypatch_module.undo()
    gate = validate(frame, "offline_demo", str(tmp / "gx"), expectations_dir=tmp / "suites", run_name="2026-10-31_2026-10b")
    assert not gate.success or gate.failures, "the warning fails"
    return {"site": site, "raw": raw, "gate": gate}


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_the_vendored_files_are_those_of_the_manifest():
    import hashlib

    manifest = json.loads((ASSETS_DIR / "MANIFEST.json").read_text())
    assert set(manifest) == set(PACKAGES)
    for package, entry in manifest.items():
        assert entry["version"] == PACKAGES[package][0]
        for name, sha in entry["files"].items():
            path = ASSETS_DIR / package.replace("/", "__") / name
            assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, path
    for local in ASSETS.values():
        assert (ASSETS_DIR / local).is_file(), local


def loads_from_network(html: str) -> list[str]:
    """What a page would fetch from outside: scripts, images and stylesheets with an http(s) address."""
    return (re.findall(r"""<(?:script|img)\b[^>]*\bsrc=["'](https?://[^"']+)""", html)
            + re.findall(r"""<link\b[^>]*\bhref=["'](https?://[^"']+)""", html))


def test_no_page_of_the_site_loads_anything_from_the_network(sites):
    pages = list(sites["site"].rglob("*.html"))
    assert len(pages) >= 3
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not loads_from_network(html), f"{page}: {loads_from_network(html)}"
        for ref in re.findall(r"""(?:src|href)=["']((?:\.\./|\./)*static/vendor/[^"']+)""", html):
            assert (page.parent / ref).resolve().is_file(), f"{page}: {ref}"
    raw = (sites["raw"] / "index.html").read_text(encoding="utf-8")
    assert "https://code.jquery.com/jquery-3.7.1.min.js" in loads_from_network(raw), "as GX wrote it, it did"


def test_every_file_gx_templates_load_from_a_cdn_is_vendored():
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    wanted = set()
    for t in templates.rglob("*.j2"):
        wanted |= {u for u in loads_from_network(t.read_text(encoding="utf-8")) if "{{" not in u}
    assert wanted, "no CDN address found: the templates moved"
    missing = {u for u in wanted if u not in ASSETS and "/npm/vega" not in u}
    assert not missing, f"GX's templates load {sorted(missing)}: add them to PACKAGES/ASSETS and run scripts/vendor_datadocs_assets.py"


def _open(browser, url: str, shot: str | None):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    refused: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_timeout(1500)
    if shot:
        page.screenshot(path=str(SHOTS / shot), full_page=True)
    return page, refused


def _icon_font_loaded(page) -> bool:
    return page.evaluate("""async () => { await document.fonts.ready;
        return [...document.fonts].some(f => f.family.includes('Font Awesome') && f.status === 'loaded'); }""")


def test_the_index_lists_the_validations_with_the_network_blocked(sites, browser):
    page, refused = _open(browser, (sites["site"] / "index.html").as_uri(), "1_index_offline.png")
    rows = page.locator("table tbody tr")
    assert rows.count() >= 2, "one row per validation run"
    assert "offline_demo" in page.inner_text("table tbody")
    assert _icon_font_loaded(page), "the status icons' font loaded"
    assert page.evaluate("() => typeof jQuery === 'function' && typeof jQuery.fn.bootstrapTable === 'function'")
    assert not [u for u in refused if re.search(r"\.(js|css|woff2?)(\?|$)|/npm/", u)], refused
    page.context.close()


def test_as_gx_wrote_it_the_index_lists_nothing_offline(sites, browser):
    page, refused = _open(browser, (sites["raw"] / "index.html").as_uri(), None)
    assert any("jquery" in u for u in refused)
    assert page.evaluate("() => typeof jQuery") == "undefined"
    page.context.close()


def test_the_validation_page_shows_each_expectations_severity(sites, browser):
    pages = sorted((sites["site"] / "validations").rglob("*.html"), key=lambda p: p.stat().st_mtime)
    page, refused = _open(browser, pages[-1].as_uri(), "2_validation_offline.png")
    text = page.inner_text("body")
    assert "Severity" in text
    assert text.count("critical") >= 2 and "warning" in text
    assert _icon_font_loaded(page)
    assert not [u for u in refused if re.search(r"\.(js|css|woff2?)(\?|$)|/npm/", u)], refused
    page.context.close()
