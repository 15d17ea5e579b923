"""Render what an office and an engineer see of the demo, as PNG, to look at.

    python scripts/render_demo.py [--period 2026-11] [--out var/demo/render]

Takes the demo's digest mail of the period (var/demo/lake/outbox/digests/<period>/*.eml)
and its monthly report, and writes under ``--out``:

* ``digest_<office>.png``: the mail's HTML part, as a mail client shows it (headless Chromium);
* ``digest_<office>_<attachment>.pdf`` / ``.png``: each attached workbook, each sheet as
  LibreOffice prints it (PDF) and its first page (PNG);
* ``report_<region>.png`` and ``report_<region>.pdf``: the monthly report's HTML, and its workbook;
* ``roster_<period>.pdf`` and ``roster_<period>_<sheet>.png``: finance's workbook as
  LibreOffice prints it, and the first page of each sheet (花名册, 汇总, 本期变动, 数据字典);
  ``roster_changes_<period>.pdf`` / ``.png`` likewise.

Needs ``chromium`` and ``libreoffice`` (Debian packages ``chromium``, ``libreoffice-calc-nogui``).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chromium_png(html: Path, png: Path, width: int = 1400, height: int = 2400) -> None:
    subprocess.run([shutil.which("chromium") or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={width},{height}", f"--screenshot={png}", html.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)


def office_pdf(xlsx: Path, out: Path) -> Path:
    """The workbook as LibreOffice prints it (every sheet), and its first page as PNG."""
    subprocess.run(["libreoffice", "--headless", "--convert-to", "pdf", "--outdir", str(out), str(xlsx)],
                   check=True, capture_output=True, timeout=300)
    pdf = out / (xlsx.stem + ".pdf")
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "3", str(pdf), str(out / xlsx.stem)], check=True)
    return pdf


def sheet_pages(pdf: Path, out: Path, markers: dict[str, str]) -> list[Path]:
    """The first page of each sheet, found by a text only that sheet prints (``name -> marker``)."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    pages = text.split("\f")
    written = []
    for name, marker in markers.items():
        first = next((i + 1 for i, page in enumerate(pages) if marker in page), None)
        if first is None:
            print(f"   {pdf.name}: no page shows {marker!r}", file=sys.stderr)
            continue
        stem = out / f"{pdf.stem}_{name}"
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", "-f", str(first), "-l", str(first), str(pdf), str(stem)],
                       check=True)
        written.append(stem.with_suffix(".png"))
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--period", default="2026-11")
    ap.add_argument("--lake", default=str(ROOT / "var" / "demo" / "lake"))
    ap.add_argument("--out", default=str(ROOT / "var" / "demo" / "render"))
    args = ap.parse_args(argv)
    lake, out = Path(args.lake), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mails = sorted((lake / "outbox" / "digests" / args.period).glob("*.eml"))
    if not mails:
        print(f"no digest of {args.period} under {lake}: run scripts/demo.sh first", file=sys.stderr)
        return 1
    for path in mails:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        office = msg["X-Roster-Sync-Office"]
        html = out / f"digest_{office}.html"
        html.write_text(msg.get_body(("html",)).get_content(), encoding="utf-8")
        chromium_png(html, out / f"digest_{office}.png")
        print(out / f"digest_{office}.png")
        for part in msg.iter_attachments():
            xlsx = out / f"digest_{office}_{part.get_filename()}"
            xlsx.write_bytes(part.get_content())
            print(office_pdf(xlsx, out))
    for html in sorted((lake / "reports" / args.period).glob("*/monthly_report_*.html")):
        region = html.parent.name
        chromium_png(html, out / f"report_{region}.png", height=5200)
        print(out / f"report_{region}.png")
        print(office_pdf(html.with_suffix(".xlsx"), out))
    published = lake / "published" / args.period
    for name, markers in ((f"roster_{args.period}.xlsx", {"roster": "身份证号", "summary": "按人员类别", "changes": "变动类型",
                                                          "dictionary": "列名（程序用）"}),
                          (f"roster_changes_{args.period}.xlsx", {"changes": "变动类型", "dictionary": "列名（程序用）"})):
        if (published / name).exists():
            pdf = office_pdf(published / name, out)
            print(pdf, *sheet_pages(pdf, out, markers), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
