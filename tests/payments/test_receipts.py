"""Receipts: the PDF (numbers, words, QR, Hindi conjuncts), its pages, and its delivery."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from bot import store
from bot.payments import jobs, receipts, words
from tests.payments.conftest import (
    ACCOUNT,
    MOBILE,
    add_bill,
    add_consumer,
    make_intent,
    payment_entity,
)
from tests.payments.qr import decode_qr

VIRAMA = "\u094d"


@pytest.fixture()
def credited(post_webhook, settings, engine, redis_conn):
    """A consumer whose bill was paid through a pay link: the payment row."""
    add_consumer(engine)
    add_bill(engine)
    intent_id, _ = make_intent(engine, settings, 154350)
    assert post_webhook(payment_entity(intent_id, 154350)).status_code == 200
    with store.session_scope(engine) as session:
        return session.query(store.Payment).one()


def _pdf(settings, engine, payment) -> bytes:
    with store.session_scope(engine) as session:
        return receipts.render_pdf(receipts.receipt_for(session, settings, payment))


def test_the_pdf_holds_the_right_numbers_and_words(credited, settings, engine):
    text = PdfReader(io.BytesIO(_pdf(settings, engine, credited))).pages[0].extract_text()
    flat = re.sub(r"\s+", " ", text)
    for expected in (
        "Kanpur Electricity Supply Company Ltd",
        credited.receipt_no,
        ACCOUNT,
        "456789",
        "1,543.50",
        "Rupees one thousand five hundred forty-three and fifty paise only",
        "612345678901",
        "01-12-2026 11:40 IST",  # 06:10 UTC
        credited.receipt_code,
    ):
        assert expected in flat, expected
    # The check URL wraps at the page edge.
    url = f"/receipts/{credited.receipt_no}?code={credited.receipt_code}"
    assert url in flat.replace(" ", "")


def test_the_receipt_qr_decodes_to_its_check_url(credited, settings, engine):
    page = PdfReader(io.BytesIO(_pdf(settings, engine, credited))).pages[0]
    [image] = page.images
    png = io.BytesIO()
    image.image.save(png, format="PNG")
    assert decode_qr(png.getvalue()) == [
        f"{settings.public_base_url}/receipts/{credited.receipt_no}?code={credited.receipt_code}"
    ]


def _to_unicode_maps(pdf: bytes) -> list[str]:
    """The targets of every font's ToUnicode CMap: what each glyph in the PDF stands for."""
    reader = PdfReader(io.BytesIO(pdf))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    targets = []
    for ref in fonts.values():
        font = ref.get_object()
        cmap = font.get("/ToUnicode")
        if cmap is None:
            continue
        data = cmap.get_object().get_data().decode("latin-1")
        for hexes in re.findall(r"<[0-9A-Fa-f]+>\s*<([0-9A-Fa-f]+)>", data):
            targets.append(bytes.fromhex(hexes).decode("utf-16-be"))
    return targets


def test_hindi_is_shaped_into_conjuncts(credited, settings, engine):
    # One glyph for a consonant cluster (प्र, प्त, ...) is what shaping does; without it, every
    # glyph stands for one character and the virama shows as a separate mark.
    targets = _to_unicode_maps(_pdf(settings, engine, credited))
    conjuncts = [t for t in targets if len(t) > 1 and VIRAMA in t]
    assert conjuncts, f"no conjunct glyphs among {targets[:40]}"


def test_harfbuzz_forms_conjuncts_with_the_vendored_font():
    import uharfbuzz as hb

    blob = hb.Blob.from_file_path(str(receipts.FONTS / "NotoSansDevanagari-Regular.ttf"))
    font = hb.Font(hb.Face(blob))

    def glyphs(text: str) -> list[int]:
        buf = hb.Buffer()
        buf.add_str(text)
        buf.guess_segment_properties()
        hb.shape(font, buf)
        return [info.codepoint for info in buf.glyph_infos]

    # प्राप्त: 7 code points; shaped, प्र and प्त each become one glyph.
    shaped = glyphs("प्राप्त")
    assert len(shaped) < len("प्राप्त")
    nominal = [font.get_nominal_glyph(ord(ch)) for ch in "प्राप्त"]
    assert shaped != nominal


def test_amounts_in_words():
    assert words.rupees_en(1_23_45_678_90) == (
        "Rupees one crore twenty-three lakh forty-five thousand six hundred seventy-eight "
        "and ninety paise only"
    )
    assert words.rupees_hi(1_50_000) == "एक हज़ार पाँच सौ रुपये मात्र"
    assert words.number_hi(99) == "निन्यानवे"
    assert words.rupees_en(100) == "Rupees one only"


def test_receipt_pages_open_only_with_their_code(credited, client):
    number, code = credited.receipt_no, credited.receipt_code
    page = client.get(f"/receipts/{number}?code={code}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert number in html and "₹1,543.50" in html and "612345678901" in html
    pdf = client.get(f"/receipts/{number}.pdf?code={code.lower()}")
    assert (pdf.status_code, pdf.mimetype) == (200, "application/pdf")
    assert pdf.data.startswith(b"%PDF")
    wrong = client.get(f"/receipts/{number}?code=AAAAAAAAAA")
    guessed = client.get("/receipts/KESCO-2627-000002?code=AAAAAAAAAA")
    no_code = client.get(f"/receipts/{number}")
    assert wrong.status_code == guessed.status_code == no_code.status_code == 404
    assert wrong.data == guessed.data == no_code.data  # a real number answers like a made-up one
    assert client.get(f"/receipts/{number}.pdf?code=AAAAAAAAAA").status_code == 404


def test_the_receipt_goes_out_on_whatsapp_as_a_pdf(gw_settings, engine, redis_conn, fake):
    add_consumer(engine)
    intent_id, _ = make_intent(engine, gw_settings, 50000, month=None, channel="whatsapp")
    payment_id = _credit(engine, intent_id, 50000)
    assert jobs.deliver_receipt(payment_id) == "sent"
    assert jobs.deliver_receipt(payment_id) == "duplicate"  # a retried job sends nothing again
    [sent] = fake.sent(f"whatsapp:{MOBILE}")
    with store.session_scope(engine) as session:
        payment = session.get(store.Payment, payment_id)
        assert payment.receipt_sent_at is not None
    assert payment.receipt_no in sent["body"] and "₹500.00" in sent["body"]
    assert sent["media_urls"] == [
        f"{gw_settings.public_base_url}/receipts/{payment.receipt_no}.pdf?code={payment.receipt_code}"
    ]


def test_the_receipt_goes_out_on_sms_as_a_short_link(gw_settings, engine, redis_conn, fake):
    add_consumer(engine, whatsapp=False)
    intent_id, _ = make_intent(engine, gw_settings, 50000, month=None, channel="sms")
    payment_id = _credit(engine, intent_id, 50000)
    jobs.deliver_receipt(payment_id)
    [sent] = fake.sent(MOBILE)
    with store.session_scope(engine) as session:
        payment = session.get(store.Payment, payment_id)
    link = (
        f"{gw_settings.public_base_url}/receipts/{payment.receipt_no}?code={payment.receipt_code}"
    )
    assert link in sent["body"] and not sent["media_urls"]


def _credit(engine, intent_id: str, amount: int) -> int:
    from bot.payments import ledger
    from bot.payments.gateways.razorpay import captured_from_entity

    recorded = ledger.record_once(engine, captured_from_entity(payment_entity(intent_id, amount)))
    assert recorded.credited
    assert recorded.payment_id is not None
    return recorded.payment_id


def test_a_twilio_error_fails_the_job_for_rq_to_retry_and_the_retry_sends_once(
    gw_settings, engine, redis_conn, fake
):
    from bot.twilio_client import TwilioTransientError

    add_consumer(engine)
    intent_id, _ = make_intent(engine, gw_settings, 50000, month=None)
    payment_id = _credit(engine, intent_id, 50000)
    fake.configure(fail_next=[500])
    with pytest.raises(TwilioTransientError):
        jobs.deliver_receipt(payment_id)
    with store.session_scope(engine) as session:
        assert session.get(store.Payment, payment_id).receipt_sent_at is None
    assert jobs.deliver_receipt(payment_id) == "sent"
    assert len(fake.sent(f"whatsapp:{MOBILE}")) == 1
