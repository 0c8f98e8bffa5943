"""The fake Razorpay: the official client reads it, and its webhooks verify as Razorpay's do."""

from __future__ import annotations

import razorpay
import requests

from bot import create_app
from bot import settings as settings_mod
from bot.dev import fake_razorpay
from bot.payments.gateways import razorpay as gateway
from tests.gateway_stack import ServerThread, wait_for
from tests.payments.conftest import add_bill, add_consumer, make_intent


def test_official_client_fetches_a_fake_payment_and_verifies_its_webhook(settings):
    received: list[tuple[bytes, str]] = []

    def sink(environ, start_response):  # type: ignore[no-untyped-def]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        received.append((environ["wsgi.input"].read(length), environ["HTTP_X_RAZORPAY_SIGNATURE"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    with ServerThread(sink) as hook:
        app = fake_razorpay.create_fake_app(
            settings.razorpay_key_id,
            settings.razorpay_key_secret,
            settings.razorpay_webhook_key,
            hook.url,
            delay=0,
        )
        with ServerThread(app) as fake:
            cfg = settings.with_overrides(razorpay_api_base_url=fake.url)
            made = requests.post(
                f"{fake.url}/_fake/payments",
                json={"amount": 50000, "notes": {"intent_id": "BSPTEST"}},
                auth=(cfg.razorpay_key_id, cfg.razorpay_key_secret),
                timeout=5,
            ).json()
            fetched = gateway.fetch_payment(cfg, made["id"])
            assert (fetched.external_id, fetched.amount_paise, fetched.intent_ref) == (
                made["id"],
                50000,
                "BSPTEST",
            )
            assert fetched.utr == made["acquirer_data"]["rrn"] and len(fetched.utr) == 12
            wrong = settings.with_overrides(razorpay_api_base_url=fake.url, razorpay_key_secret="x")
            try:
                gateway.fetch_payment(wrong, made["id"])
                raise AssertionError("the fake accepted a wrong key")
            except razorpay.errors.BadRequestError:
                pass
            wait_for(lambda: received)
    body, signature = received[0]
    # The official client's own check accepts the fake's signature.
    assert razorpay.Utility().verify_webhook_signature(
        body.decode(), signature, settings.razorpay_webhook_key
    )
    [captured] = gateway.parse_webhook(settings, body, {"X-Razorpay-Signature": signature})
    assert captured.external_id == made["id"]


def test_simulate_payment_from_the_dev_pay_page(
    gw_settings, live_app, engine, redis_conn, monkeypatch
):
    """The pay page's button pays through the fake, whose signed webhook credits the intent."""
    app = fake_razorpay.create_fake_app(
        gw_settings.razorpay_key_id,
        gw_settings.razorpay_key_secret,
        gw_settings.razorpay_webhook_key,
        f"{live_app}/payments/razorpay/webhook",
        delay=0,
    )
    with ServerThread(app) as fake:
        monkeypatch.setenv("RAZORPAY_API_BASE_URL", fake.url)
        cfg = settings_mod.load()
        add_consumer(engine)
        add_bill(engine)
        client = create_app(cfg).test_client()
        _, token = make_intent(engine, cfg)
        page = client.get(f"/pay/{token}").get_data(as_text=True)
        assert 'id="simulate"' in page
        response = client.post(f"/pay/{token}/simulate")
        assert response.status_code == 303
        assert response.headers["Location"].endswith("simulated=1")
        deliveries = wait_for(
            lambda: requests.get(f"{fake.url}/_fake/deliveries", timeout=5).json()["deliveries"]
        )
        assert deliveries[0]["status"] == 200
        paid = client.get(f"/pay/{token}").get_data(as_text=True)
        assert "This has been paid" in paid
        assert 'id="qr"' not in paid  # no second payment by mistake
