"""Pay links: amounts read from messages, the UPI string, signed tokens, and the pay page."""

from __future__ import annotations

import base64
import datetime as dt
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from itsdangerous import URLSafeTimedSerializer

from bot import paylinks, store
from tests.payments.conftest import ACCOUNT, add_bill, add_consumer, make_intent
from tests.payments.qr import decode_qr


@pytest.mark.parametrize(
    ("text", "paise"),
    [
        ("500 ka recharge", 50000),
        ("₹2000 jama karna hai", 200000),
        ("₹ 2,000 jama karna hai", 200000),
        ("Rs. 1,500.50 ka payment", 150050),
        ("1500/- bharna hai", 150000),
        ("750 rupaye jama karne hain", 75000),
        ("५०० का रिचार्ज करना है", 50000),
        ("1,00,000 rs", 10000000),
        ("mujhe pay karna hai 9876501234", None),  # an account number, not money
        ("2 baje tak bill bharna hai", None),
        ("bill jama karna hai", None),
        ("account 456789 ka bill", None),
    ],
)
def test_amount_in_text(text, paise):
    assert paylinks.amount_in_text(text) == paise


def test_upi_string_follows_npci_and_is_encoded(settings):
    payee = paylinks.Payee("KESCO", "kesco.bill@sbi", "Kanpur Electricity Supply Co. & Ltd")
    uri = paylinks.upi_uri(payee, 154350, "BSPABC234", "A/c 1234567890 11/2026")
    assert uri == (
        "upi://pay?pa=kesco.bill@sbi&pn=Kanpur%20Electricity%20Supply%20Co.%20%26%20Ltd"
        "&am=1543.50&tr=BSPABC234&tn=A%2Fc%201234567890%2011%2F2026&cu=INR"
    )
    fields = dict(parse_qsl(urlsplit(uri).query))
    assert list(fields) == ["pa", "pn", "am", "tr", "tn", "cu"]
    assert fields["pn"] == payee.name
    with pytest.raises(ValueError):
        paylinks.upi_uri(payee, 100, "BSP-1&am=1", "x")


def test_intent_ids_are_upi_safe():
    ids = {paylinks.new_intent_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"BSP[A-Z0-9]{13}", i) for i in ids)


def test_token_round_trip_and_payee_from_configuration(settings, engine):
    add_consumer(engine)
    cfg = settings.with_overrides(upi_vpas={**settings.upi_vpas, "KESCO": "kescobills@hdfcbank"})
    intent_id, token = make_intent(engine, cfg)
    with store.session_scope(engine) as session:
        intent = paylinks.intent_for_token(session, cfg, token)
        assert (intent.id, intent.amount_paise, intent.new_account_no) == (
            intent_id,
            154350,
            ACCOUNT,
        )
        uri = paylinks.intent_uri(cfg, intent)
    assert uri.startswith("upi://pay?pa=kescobills@hdfcbank&pn=Kanpur%20Electricity")
    assert f"&am=1543.50&tr={intent_id}&tn=A%2Fc%201234567890%2011%2F2026&cu=INR" in uri


def _resign(cfg, payload):
    return URLSafeTimedSerializer(cfg.payment_link_key, salt=paylinks.TOKEN_SALT).dumps(payload)


def _tamper_payload(token: str, payload: list) -> str:
    """Swap the payload part of an itsdangerous token, keeping its timestamp and signature."""
    _, stamp, sig = token.split(".")
    body = base64.urlsafe_b64encode(
        __import__("json").dumps(payload, separators=(",", ":")).encode()
    )
    return ".".join([body.decode().rstrip("="), stamp, sig])


def test_tampered_tokens_are_refused(settings, engine):
    add_consumer(engine)
    add_consumer(engine, "2234567890", old=None, mobile="+919811111111")
    intent_id, token = make_intent(engine, settings)
    with store.session_scope(engine) as session:
        # The amount or account changed inside the token: the signature no longer matches.
        for changed in ([intent_id, 100, ACCOUNT], [intent_id, 154350, "2234567890"]):
            with pytest.raises(paylinks.InvalidLink):
                paylinks.intent_for_token(session, settings, _tamper_payload(token, changed))
        # A token signed with another key.
        foreign = settings.with_overrides(payment_link_secret="someone-else")
        with pytest.raises(paylinks.InvalidLink):
            paylinks.intent_for_token(
                session, settings, _resign(foreign, [intent_id, 100, ACCOUNT])
            )
        # Even correctly signed, a token whose amount or account disagree with the intent fails.
        for changed in ([intent_id, 100, ACCOUNT], [intent_id, 154350, "2234567890"]):
            with pytest.raises(paylinks.InvalidLink):
                paylinks.intent_for_token(session, settings, _resign(settings, changed))
        # A flipped signature character, and garbage. The middle one: the last base64
        # character also carries padding bits, so changing it can decode to the same signature.
        middle = len(token) - 10
        flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
        for bad in (flipped, "not-a-token", ""):
            with pytest.raises(paylinks.InvalidLink):
                paylinks.intent_for_token(session, settings, bad)
        # Control: the real token loads.
        assert paylinks.intent_for_token(session, settings, token).id == intent_id


def test_tokens_expire_after_the_link_ttl(settings, engine):
    add_consumer(engine)
    made = dt.datetime(2026, 11, 30, 18, 0)
    _, token = make_intent(engine, settings, now=made)
    with store.session_scope(engine) as session:
        # Signed "now" by itsdangerous, so judge from the real clock: 47 h later is fine...
        signed_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with pytest.raises(paylinks.ExpiredLink):  # ...but the stored intent expired already
            paylinks.intent_for_token(session, settings, token, now=signed_at)
    _, fresh = make_intent(engine, settings)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with store.session_scope(engine) as session:
        assert paylinks.intent_for_token(session, settings, fresh, now=now + dt.timedelta(hours=47))
        with pytest.raises(paylinks.ExpiredLink):
            paylinks.intent_for_token(session, settings, fresh, now=now + dt.timedelta(hours=49))


def _qr_from_page(html: str) -> bytes:
    match = re.search(r'src="data:image/png;base64,([^"]+)"', html)
    assert match, "the page has an inline QR"
    return base64.b64decode(match.group(1))


def test_pay_page_shows_the_intent_and_its_qr_decodes_to_the_upi_string(client, settings, engine):
    add_consumer(engine)
    add_bill(engine)
    intent_id, token = make_intent(engine, settings)
    page = client.get(f"/pay/{token}?am=1&pa=thief@ybl")  # query parameters change nothing
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    expected = (
        f"upi://pay?pa=kesco.dev@razorpay&pn=Kanpur%20Electricity%20Supply%20Company%20Ltd"
        f"&am=1543.50&tr={intent_id}&tn=A%2Fc%201234567890%2011%2F2026&cu=INR"
    )
    assert decode_qr(_qr_from_page(html)) == [expected]
    assert f'href="{expected.replace("&", "&amp;")}"' in html  # the "Pay with a UPI app" button
    for shown in (
        "Kanpur Electricity Supply Company Ltd",
        "र*** कु***",
        ACCOUNT,
        "456789",
        "11/2026",
        "₹1,543.50",
        "Pay with a UPI app",
        "UPI ऐप से भुगतान करें",
    ):
        assert shown in html
    assert "रमेश" not in html  # the name is masked
    assert "thief@ybl" not in html
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    png = client.get(f"/pay/{token}/qr.png")
    assert png.mimetype == "image/png"
    assert decode_qr(png.data) == [expected]


def test_pay_page_refuses_bad_and_expired_tokens(client, settings, engine):
    add_consumer(engine)
    _, token = make_intent(engine, settings)
    bad = client.get(f"/pay/{token[:-2]}xx")
    assert bad.status_code == 404
    assert "Do not pay through it" in bad.get_data(as_text=True)
    assert client.get(f"/pay/{token[:-2]}xx/qr.png").status_code == 404
    with store.session_scope(engine) as session:
        for intent in session.query(store.PaymentIntent):
            intent.expires_at = dt.datetime(2000, 1, 1)
    expired = client.get(f"/pay/{token}")
    assert expired.status_code == 410
    assert "expired" in expired.get_data(as_text=True)


def test_links_work_after_the_30th_and_while_billing_is_closed(client, settings, engine):
    add_consumer(engine)
    add_bill(engine)
    with store.session_scope(engine) as session:
        session.add(store.BillingClosure(discom="KESCO", reason="month-end closing"))
    month_end = dt.datetime(2026, 12, 31, 17, 0)  # 31 Dec, 22:30 IST
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    intent_id, token = make_intent(engine, settings, now=month_end)
    with store.session_scope(engine) as session:
        intent = session.get(store.PaymentIntent, intent_id)
        intent.expires_at = now + dt.timedelta(hours=48)
    page = client.get(f"/pay/{token}")
    assert page.status_code == 200
    assert "₹1,543.50" in page.get_data(as_text=True)


def test_simulate_button_only_while_the_fake_gateway_is_in_use(client, app, settings, engine):
    add_consumer(engine)
    _, token = make_intent(engine, settings)
    assert "simulate" not in client.get(f"/pay/{token}").get_data(as_text=True)
    assert client.post(f"/pay/{token}/simulate").status_code == 404
