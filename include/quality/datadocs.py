"""Great Expectations' Data Docs that work with no network, and show each expectation's severity.

GX's Data Docs templates load jQuery, Bootstrap, bootstrap-table, Font Awesome and a
date picker from public CDNs. On an air-gapped government intranet none of them loads:
the index lists no validation (bootstrap-table builds it in the browser) and the
pass/fail column is blank (Font Awesome draws the icons). :func:`localise` copies the same
files, at the versions the templates name, into the site (``static/vendor/``) and points
every page at them. The files are committed under ``datadocs_assets/``, fetched from the
npm registry by ``scripts/vendor_datadocs_assets.py`` (``MANIFEST.json`` holds each
tarball's integrity hash and each file's sha256, with each package's licence beside it).

Vega (charts of data profiles) is loaded by every page but used by none of ours: its
script tags are dropped where a page draws no chart. GX's logo comes from the site's own
``static/images``.

Each validation page also gets a first section listing every expectation with its
severity (critical stops the run, warning is reported) and its outcome
(:func:`severity_section`).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent / "datadocs_assets"

# npm package -> (version, files of its tarball): what GX 1.x's Data Docs templates load
PACKAGES = {
    "jquery": ("3.7.1", ["dist/jquery.min.js"]),
    "popper.js": ("1.12.9", ["dist/umd/popper.min.js"]),
    "bootstrap": ("4.3.1", ["dist/css/bootstrap.min.css", "dist/js/bootstrap.min.js"]),
    "bootstrap-table": ("1.19.1", ["dist/bootstrap-table.min.css", "dist/bootstrap-table.min.js",
                                   "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
                                   "dist/extensions/filter-control/bootstrap-table-filter-control.min.css"]),
    "bootstrap-datepicker": ("1.9.0", ["dist/css/bootstrap-datepicker.min.css", "dist/js/bootstrap-datepicker.min.js"]),
    "@forevolve/bootstrap-dark": ("1.1.0", ["dist/css/bootstrap-prefers-dark.min.css"]),
    "@fortawesome/fontawesome-free": ("6.6.0", ["css/all.min.css", "webfonts/fa-brands-400.woff2",
                                                "webfonts/fa-regular-400.woff2", "webfonts/fa-solid-900.woff2",
                                                "webfonts/fa-v4compatibility.woff2"]),
}


def _local(package: str, file: str) -> str:
    return f"{package.replace('/', '__')}/{file}"


# CDN address in GX's templates -> the vendored file (under static/vendor/ of the site)
ASSETS = {
    "https://code.jquery.com/jquery-3.7.1.min.js": _local("jquery", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": _local("popper.js", "dist/umd/popper.min.js"),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": _local("bootstrap", "dist/css/bootstrap.min.css"),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": _local("bootstrap", "dist/js/bootstrap.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        _local("bootstrap-table", "dist/bootstrap-table.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        _local("bootstrap-table", "dist/bootstrap-table.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        _local("bootstrap-table", "dist/extensions/filter-control/bootstrap-table-filter-control.min.js"),
    # the templates take this one stylesheet from 1.19.0, minified or not; 1.19.1's is served in its place
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        _local("bootstrap-table", "dist/extensions/filter-control/bootstrap-table-filter-control.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        _local("bootstrap-table", "dist/extensions/filter-control/bootstrap-table-filter-control.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        _local("bootstrap-datepicker", "dist/css/bootstrap-datepicker.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        _local("bootstrap-datepicker", "dist/js/bootstrap-datepicker.min.js"),
    # the same stylesheet minified (the unminified one is 880 KB)
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        _local("@forevolve/bootstrap-dark", "dist/css/bootstrap-prefers-dark.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        _local("@fortawesome/fontawesome-free", "css/all.min.css"),
}
_VEGA = re.compile(r'<script src="https://cdn\.jsdelivr\.net/npm/vega(?:-lite|-embed)?@\d+"></script>\s*')
_LOGO = re.compile(r'https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/[A-Za-z_-]+\.png(?:\?[^"\']*)?')
_CDN = re.compile("|".join(re.escape(url) for url in ASSETS))

# What a severity means here (include/quality/gates.py), as the validation pages say it
SEVERITY_MEANS = {"critical": "stops the run: nothing is published", "warning": "reported; the run goes on"}
_MARK = 'id="roster-sync-severity"'
_DONE = "<!-- roster-sync: served offline -->\n"     # a page rewritten once is not read again
_FIRST_SECTION = '<div id="section-1" class="ge-section'


def _severity(result: dict) -> str:
    """A stored result's expectation severity (``meta.severity``; critical when unset, as the gates read it)."""
    return ((result.get("expectation_config") or {}).get("meta") or {}).get("severity", "critical")


def severity_section(results: list[dict]) -> str:
    """The validation page's first section: each expectation with its severity and outcome.

    GX 1.x has no working place for it (its ``meta_properties`` columns fail to render in
    1.24: the pydantic model rejects the extra key they add), so it is written here from the
    stored validation result, whose expectations carry ``meta.severity``."""
    rows = []
    for r in results:
        cfg = r.get("expectation_config") or {}
        severity = _severity(r)
        kwargs = cfg.get("kwargs") or {}
        on = kwargs.get("column") or ", ".join(kwargs.get("column_list") or []) or "table"
        ok = bool(r.get("success"))
        badge = "danger" if severity == "critical" else "warning"
        icon = ('<i class="fas fa-check-circle text-success" aria-hidden="true"></i> met' if ok else
                '<i class="fas fa-times text-danger" aria-hidden="true"></i> <b>failed</b>')
        rows.append(f'<tr><td><span class="badge badge-{badge}">{html.escape(severity)}</span></td>'
                    f"<td>{icon}</td><td><code>{html.escape(cfg.get('type', ''))}</code></td><td>{html.escape(str(on))}</td>"
                    f"<td>{html.escape(SEVERITY_MEANS.get(severity, ''))}</td></tr>")
    failed_critical = any(not r.get("success") and _severity(r) == "critical" for r in results)
    verdict = ("a critical expectation failed: this run published nothing" if failed_critical else
               "no critical expectation failed")
    return (f'<div {_MARK} class="ge-section container-fluid mb-1 pb-1 pl-sm-3 px-0"><div class="row">'
            f'<div class="col-12 p-0"><div class="alert alert-secondary"><h5 class="m-0">Severity (roster-sync): '
            f"{html.escape(verdict)}</h5></div>"
            '<table class="table table-sm"><thead><tr><th>Severity</th><th>Status</th><th>Expectation</th>'
            f'<th>Column</th><th>Means</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div></div></div>\n')


def _add_severity(site: Path, page: Path, text: str) -> str:
    if _MARK in text or _FIRST_SECTION not in text:
        return text
    try:
        rel = page.relative_to(site / "validations")
    except ValueError:
        return text
    stored = site.parent.parent / "validations" / rel.with_suffix(".json")
    if not stored.is_file():
        return text
    results = json.loads(stored.read_text(encoding="utf-8")).get("results") or []
    results = sorted(results, key=lambda r: (bool(r.get("success")), _severity(r) != "critical"))   # failures first
    return text.replace(_FIRST_SECTION, severity_section(results) + _FIRST_SECTION, 1)


def localise(site: str | os.PathLike, pages=None) -> int:
    """Serve the site's scripts, styles and fonts from the site itself; returns the pages rewritten.
    Idempotent: a page already rewritten is left as it is. ``pages``: the only pages to look at (those
    a build just wrote; each night adds a few to a site of thousands), or None for every page."""
    site = Path(site)
    if not site.is_dir():
        return 0
    vendor = site / "static" / "vendor"
    manifest = (ASSETS_DIR / "MANIFEST.json").read_bytes()
    if not (vendor / "MANIFEST.json").exists() or (vendor / "MANIFEST.json").read_bytes() != manifest:
        shutil.copytree(ASSETS_DIR, vendor, dirs_exist_ok=True)    # first build, or the vendored files changed
    logo = site / "static" / "images" / "logo-long.png"
    done = _DONE.encode()
    rewritten = 0
    for page in site.rglob("*.html") if pages is None else (Path(p) for p in pages if os.path.isfile(p)):
        with open(page, "rb") as fh:                 # a page rewritten before: only its first line is read
            if fh.read(len(done)) == done:
                continue
        text = page.read_text(encoding="utf-8")
        up = os.path.relpath(site, page.parent).replace(os.sep, "/")
        new = _add_severity(site, page, text)
        new = _CDN.sub(lambda m: f"{up}/static/vendor/{ASSETS[m.group(0)]}", new)
        if "vegaEmbed(" not in new:
            new = _VEGA.sub("", new)
        if logo.exists():
            new = _LOGO.sub(f"{up}/static/images/logo-long.png", new)
        page.write_text(_DONE + new, encoding="utf-8")
        rewritten += 1
    return rewritten
