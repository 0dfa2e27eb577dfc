"""The carbon-neutral certificate as a PDF (碳中和证明): Chinese text, a QR code, the signature.

Everything printed comes from the signed canonical document (certificates.py), so the
paper says exactly what was signed. Chinese text uses reportlab's built-in CJK CID font
`STSong-Light` (viewers supply the glyphs; nothing is embedded), English labels stand beside the
Chinese ones. The QR code (segno) is drawn as vector squares and links to the public
verification URL. Long serial lists flow onto further pages."""

from __future__ import annotations

import base64
import io
from xml.sax.saxutils import escape

import segno
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

CJK_FONT = "STSong-Light"
MONO_FONT = "Courier"
GREEN = colors.HexColor("#1f6b3a")

SUBJECT_KINDS = {
    "event": "活动 Event",
    "product": "产品 Product",
    "organisation_year": "组织年度 Organisation (year)",
}

_registered = False


def _fonts() -> None:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        _registered = True


def _style(name: str, size: float, *, font: str = CJK_FONT, leading: float | None = None, align: int = 0,
           color=colors.black) -> ParagraphStyle:
    return ParagraphStyle(name, fontName=font, fontSize=size, leading=leading or size * 1.35, alignment=align,
                          textColor=color, wordWrap="CJK")


class QrCode(Flowable):
    """A QR code of `url` drawn as vector squares, linked to the URL."""

    def __init__(self, url: str, size: float = 38 * mm):
        super().__init__()
        self.url = url
        self.qr = segno.make(url, error="m")
        self.size = size
        self.width = self.height = size

    def draw(self) -> None:
        matrix = self.qr.matrix
        border = 2
        cells = len(matrix) + 2 * border
        cell = self.size / cells
        canvas = self.canv
        canvas.setFillColor(colors.white)
        canvas.rect(0, 0, self.size, self.size, stroke=0, fill=1)
        canvas.setFillColor(colors.black)
        for y, row in enumerate(matrix):
            run_start = None
            for x, dark in enumerate(list(row) + [0]):
                if dark and run_start is None:
                    run_start = x
                elif not dark and run_start is not None:
                    canvas.rect((run_start + border) * cell, self.size - (y + border + 1) * cell,
                                (x - run_start) * cell, cell, stroke=0, fill=1)
                    run_start = None
        canvas.linkURL(self.url, (0, 0, self.size, self.size), relative=1)


def _text(value) -> str:
    return escape(str(value))


def _mixed(value) -> str:
    """Paragraph markup: runs of Latin text in Helvetica (STSong-Light's Latin is spaced for CJK)."""
    text, out, run, latin = str(value), [], "", None
    for ch in text + "\0":
        is_latin = ch.isascii()
        if ch == "\0" or (latin is not None and is_latin != latin):
            out.append(f"<font name='Helvetica'>{escape(run)}</font>" if latin else escape(run))
            run = ""
        run += ch
        latin = is_latin
    return "".join(out)


def render_certificate_pdf(document: dict, signature: bytes, key_id: str) -> bytes:
    """The PDF of a certificate from its signed document, signature and key id."""
    _fonts()
    title = _style("title", 28, leading=34, align=1, color=GREEN)
    subtitle = _style("subtitle", 13, font="Helvetica", align=1, color=GREEN)
    label = _style("label", 9.5, leading=12.5, color=colors.HexColor("#444444"))
    value = _style("value", 11, leading=15)
    small = _style("small", 8, leading=10.5)
    mono = _style("mono", 7.5, font=MONO_FONT, leading=9.5)
    heading = _style("heading", 12, leading=16, color=GREEN)

    number = document.get("number", "")
    url = document.get("verification_url", "")
    subject = document.get("subject") or {}
    period = document.get("period") or {}
    footprint = document.get("footprint") or {}

    def row(chinese: str, english: str, content, style=value) -> list:
        cell = content if isinstance(content, Flowable) else Paragraph(_mixed(content), style)
        return [Paragraph(f"{_text(chinese)}<br/><font name='Helvetica' size='8'>{_text(english)}</font>", label),
                cell]

    projects = "<br/>".join(
        _mixed(f"{p.get('code')} {p.get('title')}（年份 vintage {', '.join(str(v) for v in p.get('vintages', []))}）")
        for p in document.get("projects", []))
    fields = [
        row("证书编号", "Certificate No.", number),
        row("受益方", "Beneficiary", document.get("beneficiary", "")),
        row("中和对象", "Subject", f"{SUBJECT_KINDS.get(subject.get('kind'), subject.get('kind', ''))}：{subject.get('description', '')}"),
        row("核算期", "Period", f"{period.get('start', '')} 至 to {period.get('end', '')}"),
        row("温室气体排放量", "Footprint", f"{footprint.get('t', '')} 吨二氧化碳当量 tCO2e（{footprint.get('kg', '')} kg）"),
        row("注销核证减排量", "CERs retired", f"{document.get('tonnes_retired', '')} 吨 tCO2e"),
        row("项目及年份", "Projects and vintages", Paragraph(projects, value)),
        row("签发日期", "Date of issue", document.get("issued_on", "")),
        row("验证码", "Verification code", document.get("verification_code", "")),
        row("签发机构", "Issuer", document.get("issuer", "")),
    ]
    field_table = Table(fields, colWidths=[42 * mm, 128 * mm])
    field_table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#cccccc")),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
    ]))

    verify = Table([[QrCode(url), [
        Paragraph("扫码或访问以下网址验证本证明", value),
        Paragraph("Scan the code or open this address to verify the certificate", _style("en", 9, font="Helvetica")),
        Spacer(1, 3 * mm),
        Paragraph(f"<link href='{_text(url)}'>{_text(url)}</link>", _style("url", 9, font="Helvetica", color=GREEN)),
        Spacer(1, 3 * mm),
        Paragraph(_mixed("本证明由平台以 Ed25519 签名；公钥可在 certificateSigningKeys 查询。"), small),
        Paragraph("Signed with Ed25519 over the certificate's canonical JSON; the public key is published "
                  "(GraphQL certificateSigningKeys).", _style("en2", 8, font="Helvetica")),
    ]]], colWidths=[44 * mm, 126 * mm])
    verify.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))

    serial_rows = [[Paragraph(_mixed("序列号 Serial range"), label), Paragraph(_mixed("吨 t"), label)]] + [
        [Paragraph(_text(s.get("label", "")), _style("serial", 9, font=MONO_FONT)),
         Paragraph(_mixed(s.get("quantity", "")), value)] for s in document.get("serials", [])]
    serial_table = Table(serial_rows, colWidths=[150 * mm, 20 * mm], repeatRows=1)
    serial_table.setStyle(TableStyle([
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, GREEN),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f2f7f3")]),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))

    story = [
        Paragraph("碳中和证明", title),
        Paragraph("Carbon Neutrality Certificate", subtitle),
        Spacer(1, 2 * mm),
        Paragraph("依据《深圳市碳普惠管理办法》第十九条，下列核证减排量已为受益方注销。"
                  "<br/><font name='Helvetica' size='8.5'>Under art. 19 of the Shenzhen Carbon Inclusion Management "
                  "Measures, the certified emission reductions below were retired for the beneficiary.</font>",
                  _style("intro", 10, align=1)),
        Spacer(1, 5 * mm),
        field_table,
        Spacer(1, 5 * mm),
        verify,
        Spacer(1, 5 * mm),
        Paragraph(_mixed("已注销序列号 Retired serial numbers"), heading),
        serial_table,
        Spacer(1, 5 * mm),
        Paragraph(_mixed("数字签名 Digital signature (Ed25519, base64)"), heading),
        Paragraph(_text(base64.b64encode(signature).decode()), mono),
        Paragraph(f"{_mixed('密钥编号 Key id: ')}<font name='{MONO_FONT}'>{_text(key_id)}</font>", small),
    ]

    def footer(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(CJK_FONT, 8)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(20 * mm, 12 * mm, "碳中和证明")
        canvas.setFont("Helvetica", 8)
        canvas.drawString(20 * mm + 44, 12 * mm, number)
        canvas.drawRightString(190 * mm, 12 * mm, f"{doc.page}")
        canvas.restoreState()

    out = io.BytesIO()
    pdf = SimpleDocTemplate(out, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                            bottomMargin=20 * mm, title=f"碳中和证明 {number}", author="Tanpuhui 碳普惠",
                            subject="Carbon Neutrality Certificate", creator="Tanpuhui")
    pdf.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
