"""The pay page and the receipt page in headless Chromium on a cheap phone's 360-px screen."""

from __future__ import annotations

import os

import pytest

from bot import store
from tests.payments.conftest import add_bill, add_consumer, make_intent, payment_entity
from tests.payments.qr import decode_qr

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.browser


@pytest.fixture()
def phone():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 360, "height": 740}, device_scale_factor=2)
        yield page
        browser.close()


def _fits(page) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways: {width}px wide"


def test_pay_page_on_a_360px_phone(phone, live_app, gw_settings, engine):
    add_consumer(engine)
    add_bill(engine)
    intent_id, token = make_intent(engine, gw_settings)
    phone.goto(f"{live_app}/pay/{token}")
    _fits(phone)
    assert phone.inner_text("#amount") == "₹1,543.50"
    assert phone.inner_text("#account") == "1234567890"
    assert phone.inner_text("#month") == "11/2026"
    qr = phone.locator("#qr")
    box = qr.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert box["width"] >= 200, "the QR is big enough to scan from another phone"
    button = phone.locator("#pay-button")
    assert button.is_visible()
    assert button.get_attribute("href").startswith("upi://pay?pa=kesco.dev@razorpay&")
    assert "Pay with a UPI app" in button.inner_text()
    # The QR as the browser draws it scans to the intent's UPI string.
    [scanned] = decode_qr(qr.screenshot())
    assert f"&tr={intent_id}&" in scanned and "&am=1543.50&" in scanned
    if os.environ.get("BIJLI_SCREENSHOTS"):
        phone.screenshot(path=os.environ["BIJLI_SCREENSHOTS"] + "/pay-360.png", full_page=True)
    font = phone.evaluate("getComputedStyle(document.body).fontSize")
    assert float(font.removesuffix("px")) >= 16


def test_receipt_page_on_a_360px_phone(phone, live_app, gw_settings, engine, gw_client):
    from bot.dev import fake_razorpay

    add_consumer(engine)
    add_bill(engine)
    intent_id, _ = make_intent(engine, gw_settings)
    body = fake_razorpay.event_body(payment_entity(intent_id, 154350))
    signature = fake_razorpay.sign(body, gw_settings.razorpay_webhook_key)
    response = gw_client.post(
        "/payments/razorpay/webhook", data=body, headers={"X-Razorpay-Signature": signature}
    )
    assert response.status_code == 200
    with store.session_scope(engine) as session:
        payment = session.query(store.Payment).one()
    phone.goto(f"{live_app}/receipts/{payment.receipt_no}?code={payment.receipt_code}")
    _fits(phone)
    assert phone.inner_text("#receipt-no") == payment.receipt_no
    assert phone.inner_text("#amount") == "₹1,543.50"
    assert phone.inner_text("#utr") == "612345678901"
    assert phone.locator("#pdf").is_visible()
    if os.environ.get("BIJLI_SCREENSHOTS"):
        phone.screenshot(path=os.environ["BIJLI_SCREENSHOTS"] + "/receipt-360.png", full_page=True)
