"""Payment receipts: what one holds, as a PDF (fpdf2, Hindi shaped by HarfBuzz) and for a page.

The fonts are vendored under ``fonts/`` (Noto Sans and Noto Sans Devanagari, OFL), so a fresh
machine renders the same receipt with nothing installed. fpdf2's text shaping runs every line
through uharfbuzz, which forms Devanagari conjuncts and places matras as a reader expects.
"""

from __future__ import annotations

import datetime as dt
import hmac
import io
from dataclasses import dataclass
from pathlib import Path

import qrcode
from fpdf import FPDF
from sqlalchemy.orm import Session

from bot import paylinks, store
from bot.clock import to_ist
from bot.money import format_rupees
from bot.payments import texts, words
from bot.settings import Settings

FONTS = Path(__file__).resolve().parent / "fonts"
LATIN = "NotoSans"
DEVANAGARI = "NotoSansDevanagari"


@dataclass(frozen=True)
class Receipt:
    """Everything a receipt shows, read from the store."""

    receipt_no: str
    code: str
    discom: str
    payee_name: str
    new_account_no: str
    old_account_no: str
    consumer_name: str
    amount_paise: int
    bill_month: str | None
    utr: str
    paid_at: dt.datetime  # naive UTC
    pending_posting: bool
    url: str

    @property
    def amount(self) -> str:
        return format_rupees(self.amount_paise)

    @property
    def paid_at_ist(self) -> str:
        return f"{to_ist(self.paid_at):%d-%m-%Y %H:%M} IST"

    @property
    def month(self) -> str | None:
        return f"{self.bill_month[5:]}/{self.bill_month[:4]}" if self.bill_month else None


def receipt_for(session: Session, cfg: Settings, payment: store.Payment) -> Receipt:
    """The receipt of a credited payment."""
    if payment.receipt_no is None or payment.receipt_code is None:
        raise ValueError(f"payment {payment.id} has no receipt")
    consumer = store.consumer_by_account(session, payment.new_account_no)
    intent = session.get(store.PaymentIntent, payment.intent_id) if payment.intent_id else None
    discom = payment.discom or (consumer.discom if consumer else cfg.default_discom)
    return Receipt(
        receipt_no=payment.receipt_no,
        code=payment.receipt_code,
        discom=discom,
        payee_name=paylinks.payee(cfg, discom).name,
        new_account_no=payment.new_account_no,
        old_account_no=(consumer.old_account_no if consumer else None) or "—",
        consumer_name=consumer.name if consumer else "—",
        amount_paise=payment.amount_paise,
        bill_month=intent.bill_month if intent else None,
        utr=payment.utr or "—",
        paid_at=payment.paid_at or payment.created_at,
        pending_posting=payment.applied_at is None,
        url=paylinks.receipt_url(cfg, payment.receipt_no, payment.receipt_code),
    )


def find_receipt(
    session: Session, cfg: Settings, receipt_no: str, code: str | None
) -> Receipt | None:
    """The receipt numbered ``receipt_no`` when ``code`` is its verification code, else None.

    A wrong code and an unknown number answer alike, so a guessed number reveals nothing.
    """
    payment = store.payment_by_receipt(session, receipt_no)
    expected = payment.receipt_code if payment is not None else None
    if not code or not expected or not hmac.compare_digest(code.upper(), expected):
        return None
    assert payment is not None
    return receipt_for(session, cfg, payment)


def qr_png(data: str, box_size: int = 8) -> bytes:
    """A QR code of ``data`` as PNG bytes (quiet zone included, as scanners need)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size)
    qr.add_data(data)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image().save(out, format="PNG")
    return out.getvalue()


def _pdf() -> FPDF:
    pdf = FPDF(unit="mm", format=(148, 210))  # A5
    pdf.set_auto_page_break(auto=True, margin=10)
    for family, stem in ((LATIN, "NotoSans"), (DEVANAGARI, "NotoSansDevanagari")):
        pdf.add_font(family, "", str(FONTS / f"{stem}-Regular.ttf"))
        pdf.add_font(family, "B", str(FONTS / f"{stem}-Bold.ttf"))
    # Latin first (digits, ₹, names in English); Devanagari text falls back to its own font.
    pdf.set_fallback_fonts([DEVANAGARI])
    pdf.set_text_shaping(use_shaping_engine=True)
    return pdf


def _shape_for(pdf: FPDF, text: str) -> str:
    """Shape only text holding Devanagari: fpdf2 misplaces kerned Latin pairs when shaping."""
    pdf.set_text_shaping(use_shaping_engine=any("\u0900" <= ch <= "\u097f" for ch in text))
    return text


def render_pdf(receipt: Receipt) -> bytes:
    """The receipt as a one-page A5 PDF: Hindi and English, amount in words, and a check QR."""
    pdf = _pdf()
    pdf.set_title(f"{texts.text('receipt_title', 'en')} {receipt.receipt_no}")
    pdf.add_page()
    width = pdf.epw

    pdf.set_font(LATIN, "B", 13)
    pdf.multi_cell(
        width, 7, _shape_for(pdf, receipt.payee_name), align="C", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font(LATIN, "B", 12)
    title = f"{texts.text('receipt_title', 'hi')} / {texts.text('receipt_title', 'en')}"
    pdf.cell(width, 8, _shape_for(pdf, title), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    rows = [
        ("receipt_no", receipt.receipt_no),
        ("account_new", receipt.new_account_no),
        ("account_old", receipt.old_account_no),
        ("consumer_name", receipt.consumer_name),
        ("amount", receipt.amount),
        ("bill_month", receipt.month or texts.text("advance", "en")),
        ("utr", receipt.utr),
        ("paid_at", receipt.paid_at_ist),
        ("verification_code", receipt.code),
    ]
    label_w = width * 0.45
    for key, value in rows:
        pdf.set_font(LATIN, "", 8)
        label = f"{texts.text(key, 'hi')} / {texts.text(key, 'en')}"
        pdf.cell(label_w, 6.5, _shape_for(pdf, label), border="B")
        pdf.set_font(LATIN, "B", 10)
        pdf.cell(
            width - label_w, 6.5, _shape_for(pdf, value), border="B", new_x="LMARGIN", new_y="NEXT"
        )
    pdf.ln(2)
    pdf.set_font(LATIN, "", 9)
    pdf.multi_cell(
        width,
        5,
        _shape_for(
            pdf, f"{texts.text('amount_words', 'en')}: {words.rupees_en(receipt.amount_paise)}"
        ),
        new_x="LMARGIN",
        new_y="NEXT",
        align="L",
    )
    pdf.multi_cell(
        width,
        5,
        _shape_for(
            pdf, f"{texts.text('amount_words', 'hi')}: {words.rupees_hi(receipt.amount_paise)}"
        ),
        new_x="LMARGIN",
        new_y="NEXT",
        align="L",
    )
    if receipt.pending_posting:
        pdf.ln(1)
        pdf.set_font(LATIN, "", 8)
        for lang in ("hi", "en"):
            pdf.multi_cell(
                width,
                4.5,
                _shape_for(pdf, texts.text("billing_closed_note", lang)),
                new_x="LMARGIN",
                new_y="NEXT",
                align="L",
            )
    pdf.ln(3)
    size = 34
    y = pdf.get_y()
    pdf.image(io.BytesIO(qr_png(receipt.url, box_size=6)), x=pdf.l_margin, y=y, w=size, h=size)
    pdf.set_xy(pdf.l_margin + size + 4, y + 4)
    pdf.set_font(LATIN, "", 8)
    for lang in ("hi", "en"):
        pdf.set_x(pdf.l_margin + size + 4)
        pdf.multi_cell(
            width - size - 4,
            4.5,
            _shape_for(pdf, texts.text("verify_hint", lang)),
            new_x="LMARGIN",
            new_y="NEXT",
            align="L",
        )
    pdf.set_x(pdf.l_margin + size + 4)
    pdf.multi_cell(
        width - size - 4,
        4.5,
        _shape_for(pdf, receipt.url),
        new_x="LMARGIN",
        new_y="NEXT",
        align="L",
    )
    return bytes(pdf.output())


__all__ = ["Receipt", "find_receipt", "qr_png", "receipt_for", "render_pdf"]
