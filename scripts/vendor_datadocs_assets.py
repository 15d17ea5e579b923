"""Fetch the scripts, styles and fonts Great Expectations' Data Docs load from CDNs, from the npm
registry, into include/quality/datadocs_assets/ (committed: an air-gapped intranet has no CDN).

    python scripts/vendor_datadocs_assets.py        # only when GX's Data Docs templates change

Each file comes from the package tarball of the exact version the templates name, checked
against the registry's integrity hash; each package's licence file is copied beside it
(popper.js 1.12.9 ships none: its licence, MIT, is in its file's header and MANIFEST.json).
``include/quality/datadocs.py`` maps every CDN address to these files (ASSETS) and rewrites
the site after each build.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.quality.datadocs import ASSETS_DIR, PACKAGES  # noqa: E402

REGISTRY = "https://registry.npmjs.org"


def fetch(package: str, version: str, files: list[str]) -> dict:
    meta = requests.get(f"{REGISTRY}/{package.replace('/', '%2F')}/{version}", timeout=60)
    meta.raise_for_status()
    dist = meta.json()["dist"]
    tarball = requests.get(dist["tarball"], timeout=120)
    tarball.raise_for_status()
    algo, digest = dist["integrity"].split("-", 1)
    if base64.b64encode(hashlib.new(algo, tarball.content).digest()).decode() != digest:
        raise SystemExit(f"{package}@{version}: the tarball does not match the registry's integrity hash")
    out = ASSETS_DIR / package.replace("/", "__")
    written = {}
    with tarfile.open(fileobj=io.BytesIO(tarball.content)) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if m.isfile()}
        licence = next((n for n in members if n.upper().startswith(("LICENSE", "LICENCE")) and "/" not in n), None)
        for name in [*files, *([licence] if licence else [])]:
            data = tar.extractfile(members[name]).read()
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written[name] = hashlib.sha256(data).hexdigest()
    return {"version": version, "license": meta.json().get("license"), "tarball": dist["tarball"],
            "integrity": dist["integrity"], "files": written}


def main() -> int:
    manifest = {}
    for package, (version, files) in PACKAGES.items():
        manifest[package] = fetch(package, version, files)
        print(f"{package}@{version}: {len(manifest[package]['files'])} files")
    (ASSETS_DIR / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
