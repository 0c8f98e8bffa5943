"""End to end with real Rasa, workers and the fake gateway: ask to pay, pay, get the receipt."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
import requests

from bot import store
from tests.e2e.conftest import wait_for
from tests.payments.qr import decode_qr

pytestmark = [pytest.mark.rasa, pytest.mark.slow, pytest.mark.timeout(900)]

# Its own mobile: the e2e stack is shared, and other tests keep +919700000101 (a victim with dues).
SENDER = "+919700000201"
ACCOUNT = "4412345678"


def _add_consumer_with_a_bill(stack) -> None:
    with store.session_scope(stack.engine) as session:
        session.add(
            store.Consumer(
                discom="KESCO",
                new_account_no=ACCOUNT,
                old_account_no="4412345",
                name="Sunita Devi",
                mobile=SENDER,
                category="domestic",
                meter_type="postpaid",
                area="Kidwai Nagar",
                language="en",
                whatsapp_opt_in=True,
            )
        )
        session.flush()
        session.add(
            store.Bill(
                new_account_no=ACCOUNT,
                bill_month="2026-11",
                amount_due_paise=154350,
                due_date=dt.date(2026, 12, 20),
                arrears_paise=0,
                imported_at=dt.datetime(2026, 12, 1, 3, 0),
            )
        )


def _replies_after(stack, count: int, timeout: float = 180) -> list[dict]:
    wait_for(lambda: len(stack.sent(f"whatsapp:{SENDER}")) > count, timeout=timeout)
    # The bot may send text and a picture as two messages; give the second a moment.
    previous = -1
    while previous != len(stack.sent(f"whatsapp:{SENDER}")):
        previous = len(stack.sent(f"whatsapp:{SENDER}"))
        time.sleep(1.5)
    return stack.sent(f"whatsapp:{SENDER}")[count:]


def test_pay_by_link_and_qr_then_receipt_then_the_dues_are_reduced(stack):
    _add_consumer_with_a_bill(stack)

    # The bill, before paying.
    stack.post_message("how much is my electricity bill", SENDER)
    before = _replies_after(stack, 0)
    assert any("₹1,543.50" in m["body"] for m in before), before
    seen = len(stack.sent(f"whatsapp:{SENDER}"))

    # 1-2. Ask to pay: a link, and the QR as media.
    stack.post_message("I want to pay my bill", SENDER)
    replies = _replies_after(stack, seen)
    bodies = " ".join(m["body"] for m in replies)
    link = re.search(r"(http://127\.0\.0\.1:\d+/pay/[A-Za-z0-9_.-]+)", bodies)
    assert link, replies
    media = [u for m in replies for u in m["media_urls"]]
    assert media == [f"{link.group(1)}/qr.png"], replies
    assert "₹1,543.50" in bodies

    page = requests.get(link.group(1), timeout=10)
    assert page.status_code == 200 and "₹1,543.50" in page.text
    qr = requests.get(media[0], timeout=10)
    [uri] = decode_qr(qr.content)
    assert uri.startswith("upi://pay?pa=kesco.dev@razorpay&pn=Kanpur%20Electricity")
    assert "&am=1543.50&tr=BSP" in uri and uri.endswith("&cu=INR")
    assert 'id="simulate"' in page.text  # the fake gateway is in use

    # 3. Simulate the payment, as the dev pay page's button does.
    seen = len(stack.sent(f"whatsapp:{SENDER}"))
    simulated = requests.post(f"{link.group(1)}/simulate", timeout=30, allow_redirects=False)
    assert simulated.status_code == 303

    # 4. The receipt comes on WhatsApp as a PDF.
    receipt_messages = _replies_after(stack, seen, timeout=120)
    [receipt] = [m for m in receipt_messages if m["media_urls"]]
    assert "KESCO-" in receipt["body"] and "₹1,543.50" in receipt["body"]
    pdf = requests.get(receipt["media_urls"][0], timeout=10)
    assert (pdf.status_code, pdf.headers["Content-Type"]) == (200, "application/pdf")
    with store.session_scope(stack.engine) as session:
        payment = session.query(store.Payment).filter_by(new_account_no=ACCOUNT).one()
        assert (payment.status, payment.amount_paise, payment.source) == (
            "paid",
            154350,
            "razorpay",
        )
        assert payment.receipt_sent_at is not None

    # 5. The bill again: the dues are reduced by the payment.
    seen = len(stack.sent(f"whatsapp:{SENDER}"))
    stack.post_message("how much is my electricity bill", SENDER)
    after = _replies_after(stack, seen)
    assert any("₹0.00" in m["body"] for m in after), after
    assert not any("₹1,543.50" in m["body"] for m in after)
