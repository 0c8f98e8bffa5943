"""verify_payment_link's checks on a table of real-looking genuine and fraudulent messages."""

from __future__ import annotations

import datetime as dt

import pytest

from bot import linkcheck, store
from bot.linkcheck import (
    DISCONNECTION_CALL,
    EXPIRED_LINK,
    GENUINE_LINK,
    GENUINE_VPA,
    LOOKALIKE_DOMAIN,
    LOOKALIKE_VPA,
    NOTHING_TO_CHECK,
    OFFICIAL_SITE,
    OTP_PIN,
    PERSONAL_VPA,
    SCREEN_SHARE,
    TAMPERED_LINK,
    UNKNOWN_LINK,
)
from tests.payments.conftest import ACCOUNT, add_consumer, make_intent

BASE = "https://pay.bijlisahayak.in"

# {link}, {expired} and {tampered} are filled with real tokens; {tr} with the intent id.
TABLE = [
    ("{link}", GENUINE_LINK),
    ("KESCO bill payment link: {link} valid for 48 hours", GENUINE_LINK),
    ("Pay here {link}. Is this real?", GENUINE_LINK),
    ("kesco.bill@sbi", GENUINE_VPA),
    ("KESCO.BILL@SBI is the upi id they gave", GENUINE_VPA),
    ("upi://pay?pa=kesco.bill@sbi&pn=KESCO&am=1543.50&tr={tr}&cu=INR", GENUINE_VPA),
    ("https://www.uppcl.org/", OFFICIAL_SITE),
    ("{expired}", EXPIRED_LINK),
    ("{tampered}", TAMPERED_LINK),
    ("9876543210@ybl", PERSONAL_VPA),
    ("rameshkumar@okaxis pe bhej do bill ka paisa", PERSONAL_VPA),
    ("Pay to sunil.verma@paytm for electricity bill", PERSONAL_VPA),
    ("upi://pay?pa=9812345678@ybl&pn=KESCO%20Kanpur&am=2500&cu=INR", PERSONAL_VPA),
    ("kesco.bill@okaxis", LOOKALIKE_VPA),
    ("UPI ID: uppclpayment@ybl", LOOKALIKE_VPA),
    ("bijli-office@paytm par 3000 bhejo", LOOKALIKE_VPA),
    ("https://uppcl-bill.online/pay", LOOKALIKE_DOMAIN),
    ("http://uppc1.org/pay/now", LOOKALIKE_DOMAIN),
    ("kesco-payment.xyz/bill", LOOKALIKE_DOMAIN),
    ("https://pay.bijlisahayak.in.verify-kyc.com/pay/abc", LOOKALIKE_DOMAIN),
    ("https://pay.bijli-sahayak.in/pay/abc", LOOKALIKE_DOMAIN),
    ("www.uppcl.org.in/quickpay", LOOKALIKE_DOMAIN),
    ("https://uppcl.org@bill-pay.in/x", LOOKALIKE_DOMAIN),
    ("https://bit.ly/3xYzAbc", UNKNOWN_LINK),
    ("https://www.billdesk.com/pgidsk/pay", UNKNOWN_LINK),
    ("http://192.168.1.5/pay", UNKNOWN_LINK),
    (
        "Dear customer your electricity will be disconnected tonight at 9.30 pm. "
        "Call officer 9876500000 immediately. is this real?",
        DISCONNECTION_CALL,
    ),
    (
        "aapka bijli connection aaj raat kaat diya jayega, turant 7001234567 par call karein",
        DISCONNECTION_CALL,
    ),
    (
        "प्रिय उपभोक्ता आपका बिजली कनेक्शन आज रात 9:30 बजे काट दिया जाएगा। तुरंत 9123456780 पर संपर्क करें",
        DISCONNECTION_CALL,
    ),
    (
        "Your power will be cut tonight. Download https://bit.ly/kyc-apk and call 9876512345",
        DISCONNECTION_CALL,
    ),
    ("KESCO office se call aaya, OTP maang rahe hain bill update ke liye", OTP_PIN),
    ("Share the 6 digit OTP to update your electricity KYC", OTP_PIN),
    ("unhone UPI PIN daalne ko bola refund ke liye", OTP_PIN),
    ("{link} aur OTP bhi bata do", OTP_PIN),
    ("bill update ke liye AnyDesk app download karne ko bola", SCREEN_SHARE),
    ("Install TeamViewer QuickSupport to pay your pending electricity bill", SCREEN_SHARE),
    ("is this genuine?", NOTHING_TO_CHECK),
]


@pytest.fixture()
def filled(settings, engine):
    cfg = settings.with_overrides(
        public_base_url=BASE, upi_vpas={**settings.upi_vpas, "KESCO": "kesco.bill@sbi"}
    )
    add_consumer(engine)
    intent_id, token = make_intent(engine, cfg, 154350)
    old_id, old_token = make_intent(engine, cfg, 99900)
    with store.session_scope(engine) as session:
        session.get(store.PaymentIntent, old_id).expires_at = dt.datetime(2001, 1, 1)
    values = {
        "link": f"{BASE}/pay/{token}",
        "expired": f"{BASE}/pay/{old_token}",
        "tampered": f"{BASE}/pay/{token[:-3]}abc",
        "tr": intent_id,
    }
    return cfg, values


def test_the_table_has_at_least_30_rows():
    assert len(TABLE) >= 30


@pytest.mark.parametrize(("template", "expected"), TABLE)
def test_verdict(filled, engine, template, expected):
    cfg, values = filled
    with store.session_scope(engine) as session:
        verdict = linkcheck.check(session, cfg, template.format(**values))
    assert verdict.kind == expected
    assert verdict.genuine == (expected in linkcheck.GENUINE)


def test_a_genuine_link_says_what_it_pays(filled, engine):
    cfg, values = filled
    with store.session_scope(engine) as session:
        verdict = linkcheck.check(session, cfg, values["link"])
    assert verdict.values == {
        "account": ACCOUNT,
        "amount": "₹1,543.50",
        "period": "11/2026",
        "payee": "Kanpur Electricity Supply Company Ltd",
    }


def test_a_genuine_link_with_an_otp_request_is_not_genuine(filled, engine):
    cfg, values = filled
    with store.session_scope(engine) as session:
        verdict = linkcheck.check(session, cfg, values["link"] + " OTP bhejo")
    assert (verdict.kind, verdict.findings, verdict.genuine) == (OTP_PIN, [GENUINE_LINK], False)
