"""Render the analytical note on the SPb data and check the result like a reader would.

    .venv/bin/python bench/render_report.py [--period week --end 2021-03-21] [--out-dir var/bench]

Reads the appeals with ``load_appeals_frame`` (the store if it holds appeals, else the SPb file),
builds the note, writes DOCX and HTML, converts the DOCX to PDF with LibreOffice and the PDF to
PNG pages with pdftoppm, then checks: page count, section headings in the PDF text, at least 3
chart images, and no raw personal data (the phone and e-mail planted in a sample alert, and any
phone/e-mail pattern at all). Copies page 1 to ``docs/img/report_page1.png`` with ``--save-page``.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mcu_nlp.services import reporting

PHONE, EMAIL = "+7 921 555-12-34", "ivanov.petr@mail.ru"
SAMPLE_ALERTS = [{"title": "Рост сообщений: Благоустройство",
                  "explanation": f"Мусор во дворах; заявитель Иванов Пётр просит звонить {PHONE}, "
                                 f"{EMAIL}"}]
HEADINGS = ("1. Основные показатели", "2. Поступление по каналам", "3. Тематики",
            "4. Территории", "5. Рост количества сообщений", "6. Первопричины",
            "7. Сроки и качество ответов", "8. Рейтинг ответственных получателей", "9. Методика")
PHONE_RE = re.compile(r"(?:\+7|8)[\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", default="week", choices=["week", "quarter"])
    parser.add_argument("--end", default="2021-03-21")
    parser.add_argument("--data", default=None)
    parser.add_argument("--out-dir", default="var/bench/report")
    parser.add_argument("--save-page", action="store_true",
                        help="copy page 1 to docs/img/report_page1.png")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    masking = importlib.util.find_spec("mcu_nlp.text.masking") is not None

    t0 = time.perf_counter()
    frame = reporting.load_appeals_frame(args.data)
    t1 = time.perf_counter()
    note = reporting.build_report(frame, period=args.period, end=args.end,
                                  alerts=SAMPLE_ALERTS if masking else None)
    t2 = time.perf_counter()
    docx = reporting.write_report(note, "docx", out / "note.docx")
    reporting.write_report(note, "html", out / "note.html")
    t3 = time.perf_counter()
    pdf = out / "note.pdf"
    pdf.write_bytes(reporting.render_report(note, "pdf"))
    t4 = time.perf_counter()
    for old in out.glob("page-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "80", "-png", str(pdf), str(out / "page")], check=True)
    pages = sorted(out.glob("page-*.png"))
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    images = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True,
                            check=True).stdout.strip().splitlines()[2:]
    images = [line for line in images if line.split()[2] == "image"]  # not alpha masks

    problems = [f"heading missing: {h}" for h in HEADINGS if h not in text]
    if len(images) < 3:
        problems.append(f"only {len(images)} chart images")
    leaks = PHONE_RE.findall(text) + EMAIL_RE.findall(text)
    if leaks or PHONE in text or EMAIL in text:
        problems.append(f"personal data in the PDF: {leaks}")
    print(f"{note.title}")
    print(f"appeals read: {len(frame)} in {t1 - t0:.1f} s; note {t2 - t1:.1f} s; "
          f"docx+html {t3 - t2:.1f} s; pdf {t4 - t3:.1f} s")
    print(f"received {note.totals.current} (prev {note.totals.previous}, "
          f"{note.totals.change_pct} %); quality {note.quality}")
    print(f"pages {len(pages)}, chart images {len(images)}, masking module: {masking}, "
          f"docx {docx.stat().st_size} bytes")
    if args.save_page and pages:
        target = Path(__file__).resolve().parents[1] / "docs" / "img" / "report_page1.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pages[0], target)
        print(f"page 1 -> {target}")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
