"""The printable counter poster: an A4 SVG (210 × 297 mm) with a large QR code.

The code is made with ``segno`` (error correction Q, so a scuffed or partly covered print
still scans) and drawn as one path in millimetres, with its four-module quiet zone, so the
poster prints at the same size everywhere. The short URL is printed under the code so
it can be typed. Agency names and counter labels are people's input: every text is
XML-escaped. SVG only (the issue accepts "A4 PDF or SVG"; a PDF would need a new
dependency).
"""

from __future__ import annotations

import textwrap
from xml.sax.saxutils import escape

import segno

from ..persistence.models import QrPoster
from .qr import poster_url

WIDTH_MM, HEIGHT_MM = 210, 297
CODE_MM = 130                     # the printed code, quiet zone included
ERROR = "q"
BORDER = 4                        # quiet zone in modules (ISO/IEC 18004)
CALL_VI = "Quét mã để đánh giá sự phục vụ"
CALL_EN = "Scan the code to rate our service"
NOTE_VI = "Không ghi danh tính · Chỉ mất vài phút"
NOTE_EN = "Anonymous · Takes only a few minutes"
TYPE_VI = "Hoặc nhập địa chỉ:"
TYPE_EN = "Or type the address:"


def make_code(url: str) -> segno.QRCode:
    return segno.make_qr(url, error=ERROR, boost_error=False)


def _path(code: segno.QRCode, x0: float, y0: float, module: float) -> str:
    """Dark modules as horizontal runs: one ``M x y h w v m h -w z`` per run."""
    parts = []
    for row_index, row in enumerate(code.matrix_iter(border=BORDER)):
        col = 0
        row = list(row)
        while col < len(row):
            if not row[col]:
                col += 1
                continue
            run = col
            while run < len(row) and row[run]:
                run += 1
            x, y, w = x0 + col * module, y0 + row_index * module, (run - col) * module
            parts.append(f"M{x:.3f} {y:.3f}h{w:.3f}v{module:.3f}h{-w:.3f}z")
            col = run
    return "".join(parts)


def _lines(text: str, width: int, limit: int) -> list[str]:
    lines = textwrap.wrap(" ".join(text.split()), width) or [""]
    if len(lines) > limit:
        lines = lines[:limit]
        lines[-1] = lines[-1][: max(0, width - 1)] + "…"
    return lines


def _text(x: float, y: float, size: float, content: str, weight: str = "normal",
          family: str = "Arial, Helvetica, sans-serif", fill: str = "#111") -> str:
    return (f'<text x="{x}" y="{y:.1f}" font-size="{size}" font-weight="{weight}" font-family="{family}" '
            f'fill="{fill}" text-anchor="middle">{escape(content)}</text>')


def poster_svg(poster: QrPoster, agency_name: str) -> str:
    """The A4 poster of ``poster`` as SVG text."""
    url = poster_url(poster)
    code = make_code(url)
    size = code.symbol_size(border=BORDER)[0]
    module = CODE_MM / size
    x0, y0 = (WIDTH_MM - CODE_MM) / 2, 100.0
    centre = WIDTH_MM / 2
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_MM}mm" height="{HEIGHT_MM}mm" '
        f'viewBox="0 0 {WIDTH_MM} {HEIGHT_MM}">',
        f"<title>{escape(CALL_VI)} – {escape(agency_name)}</title>",
        f'<rect width="{WIDTH_MM}" height="{HEIGHT_MM}" fill="#fff"/>',
        f'<rect x="8" y="8" width="{WIDTH_MM - 16}" height="{HEIGHT_MM - 16}" fill="none" stroke="#0b57d0" '
        'stroke-width="1.5" rx="6"/>',
    ]
    y = 28.0
    for line in _lines(agency_name, 34, 3):
        out.append(_text(centre, y, 9, line, "bold"))
        y += 10.5
    for line in _lines(poster.label, 40, 2):
        out.append(_text(centre, y, 7, line))
        y += 8.5
    out.append(_text(centre, max(y + 6, 78), 10, CALL_VI, "bold", fill="#0b57d0"))
    out.append(_text(centre, max(y + 14, 88), 6.5, CALL_EN, fill="#333"))
    out.append(f'<rect x="{x0}" y="{y0}" width="{CODE_MM}" height="{CODE_MM}" fill="#fff"/>')
    out.append(f'<path id="qr" fill="#000" d="{_path(code, x0, y0, module)}"/>')
    short = url.split("://", 1)[-1]
    y = y0 + CODE_MM + 10
    out.append(_text(centre, y, 5.5, f"{TYPE_VI} / {TYPE_EN}", fill="#333"))
    # Monospace glyphs are about 0.6 em wide: shrink a long address to fit the page.
    url_size = round(min(8.0, (WIDTH_MM - 30) / (0.6 * max(len(short), 1))), 2)
    out.append(_text(centre, y + 10, url_size, short, "bold", family="'DejaVu Sans Mono', Consolas, monospace"))
    out.append(_text(centre, y + 24, 5.5, NOTE_VI, fill="#333"))
    out.append(_text(centre, y + 31, 5, NOTE_EN, fill="#555"))
    out.append("</svg>")
    return "\n".join(out) + "\n"
