"""Render note blocks to DOCX (python-docx), HTML (self-contained), and PDF (LibreOffice)."""

from __future__ import annotations

import base64
import html
import io
import shutil
import subprocess
import tempfile
from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.shared import Cm, Pt

from mcu_nlp.reports.layout import Block, Bullets, Figure, Heading, Paragraph, Table

__all__ = ["PdfConversionError", "docx_to_pdf", "render_docx", "render_html", "soffice_path"]


class PdfConversionError(RuntimeError):
    """LibreOffice is missing or failed to convert the document."""


def render_docx(blocks: list[Block]) -> bytes:
    """The blocks as a DOCX document (A4, Times New Roman 12, tables with a grid)."""
    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Cm(2.0))
    section.top_margin = section.bottom_margin = Cm(1.8)
    style = doc.styles["Normal"]
    style.font.name = "Times New Roman"
    style.font.size = Pt(12)
    for block in blocks:
        if isinstance(block, Heading):
            doc.add_heading(block.text, level=block.level)
        elif isinstance(block, Paragraph):
            run = doc.add_paragraph().add_run(block.text)
            run.italic = block.italic
        elif isinstance(block, Bullets):
            for item in block.items:
                doc.add_paragraph(item, style="List Bullet")
        elif isinstance(block, Table):
            table = doc.add_table(rows=1, cols=len(block.header))
            table.style = "Table Grid"
            for cell, text in zip(table.rows[0].cells, block.header, strict=True):
                cell.text = ""
                run = cell.paragraphs[0].add_run(text)
                run.bold = True
                run.font.size = Pt(10)
            for row in block.rows:
                cells = table.add_row().cells
                for cell, text in zip(cells, row, strict=True):
                    cell.text = ""
                    cell.paragraphs[0].add_run(text).font.size = Pt(10)
            if block.widths:
                # LibreOffice reads the grid (w:gridCol), Word the cells: set both.
                table.autofit = False
                scale = min(1.0, 17.0 / sum(block.widths))
                for column, width in zip(table.columns, block.widths, strict=False):
                    column.width = Cm(width * scale)
                for row in table.rows:
                    for cell, width in zip(row.cells, block.widths, strict=False):
                        cell.width = Cm(width * scale)
            doc.add_paragraph()
        elif isinstance(block, Figure):
            doc.add_picture(io.BytesIO(block.png), width=Cm(16.5))
            caption = doc.add_paragraph().add_run(block.caption)
            caption.italic = True
            caption.font.size = Pt(10)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


_CSS = """
body{font-family:"Times New Roman",serif;max-width:960px;margin:2em auto;color:#111;line-height:1.4}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #999;padding:3px 6px;text-align:left}th{background:#eef2f7}
td:not(:first-child){white-space:nowrap}figure{margin:1em 0}img{max-width:100%}
figcaption{font-style:italic;font-size:.9em}.meta{font-style:italic;color:#444}
"""


def render_html(blocks: list[Block]) -> str:
    """The blocks as one self-contained HTML page (charts inlined as PNG data URIs)."""
    esc = html.escape
    title = next((b.text for b in blocks if isinstance(b, Heading) and b.level == 0), "Справка")
    parts = ["<!DOCTYPE html>", '<html lang="ru"><head><meta charset="utf-8">',
             f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            level = min(block.level + 1, 6)
            parts.append(f"<h{level}>{esc(block.text)}</h{level}>")
        elif isinstance(block, Paragraph):
            cls = ' class="meta"' if block.italic else ""
            parts.append(f"<p{cls}>{esc(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{esc(h)}</th>" for h in block.header)
            body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                           for row in block.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Figure):
            data = base64.b64encode(block.png).decode("ascii")
            parts.append(f'<figure><img alt="{esc(block.caption)}" '
                         f'src="data:image/png;base64,{data}"><figcaption>{esc(block.caption)}'
                         "</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def soffice_path() -> str | None:
    """The LibreOffice binary, if installed (``.ci/setup-system.sh`` installs it)."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def docx_to_pdf(docx: bytes, timeout: float = 180.0) -> bytes:
    """Convert DOCX bytes to PDF bytes with LibreOffice headless.

    Raises:
        PdfConversionError: LibreOffice is not installed, timed out, or produced no PDF.
    """
    binary = soffice_path()
    if binary is None:
        raise PdfConversionError(
            "PDF needs LibreOffice (soffice); install it with .ci/setup-system.sh "
            "or choose --format docx/html")
    with tempfile.TemporaryDirectory(prefix="mcu_pdf_") as tmp:
        src = Path(tmp) / "note.docx"
        src.write_bytes(docx)
        # A private profile dir: parallel conversions must not fight over ~/.config/libreoffice.
        profile = Path(tmp, "profile").as_uri()
        cmd = [binary, f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf",
               "--outdir", tmp, str(src)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise PdfConversionError(f"LibreOffice timed out after {timeout:.0f} s") from exc
        pdf = Path(tmp) / "note.pdf"
        if proc.returncode != 0 or not pdf.exists():
            raise PdfConversionError(
                f"LibreOffice failed (rc={proc.returncode}): {proc.stderr.strip()[-500:]}")
        return pdf.read_bytes()
