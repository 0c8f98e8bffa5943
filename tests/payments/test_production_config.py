"""Outside development, payments never fall back to a public development secret or payee."""

from __future__ import annotations

import pytest

from bot import create_app
from bot import settings as settings_mod
from bot.dev import fake_razorpay
from bot.settings import PaymentsNotConfigured
from tests.payments.conftest import add_consumer, make_intent, payment_entity

REAL_TWILIO = {
    "twilio_account_sid": "AC" + "1" * 32,
    "twilio_auth_token": "a-real-auth-token",
    "public_base_url": "https://bijli.example.in",
    # The other secrets real credentials require (issues 9 and 10), so that what fails here is
    # only the payments' own configuration.
    "secret_key": "k" * 48,
    "gateway_secret": "g" * 32,
    "actions_token": "a" * 32,
}


def test_development_values_only_on_a_development_stack(settings):
    assert settings.payment_link_key == settings_mod.DEV_PAYMENT_LINK_SECRET
    assert settings.razorpay_webhook_key == settings_mod.DEV_RAZORPAY_WEBHOOK_SECRET
    assert settings.upi_payee("KESCO") == (
        settings_mod.DEV_UPI_VPAS["KESCO"],
        settings_mod.DEV_UPI_PAYEE_NAMES["KESCO"],
    )
    real = settings.with_overrides(**REAL_TWILIO)
    for read in (
        lambda: real.payment_link_key,
        lambda: real.razorpay_webhook_key,
        lambda: real.upi_payee("KESCO"),
    ):
        with pytest.raises(PaymentsNotConfigured):
            read()
    configured = settings_mod.load(
        {
            "TWILIO_ACCOUNT_SID": REAL_TWILIO["twilio_account_sid"],
            "TWILIO_AUTH_TOKEN": REAL_TWILIO["twilio_auth_token"],
            "BIJLI_PAYMENT_LINK_SECRET": "s3cret-links",
            "RAZORPAY_WEBHOOK_SECRET": "s3cret-hooks",
            "UPI_VPA_KESCO": "kescobills@sbi",
            "UPI_PAYEE_NAME_KESCO": "Kanpur Electricity Supply Company Ltd",
        }
    )
    assert configured.payment_link_key == "s3cret-links"
    assert configured.razorpay_webhook_key == "s3cret-hooks"
    assert configured.upi_payee("KESCO") == (
        "kescobills@sbi",
        "Kanpur Electricity Supply Company Ltd",
    )
    with pytest.raises(PaymentsNotConfigured):
        configured.upi_payee("PVVNL")


def test_a_webhook_signed_with_the_public_dev_secret_is_never_credited_in_production(
    settings, engine, redis_conn
):
    add_consumer(engine)
    intent_id, _ = make_intent(engine, settings)
    body = fake_razorpay.event_body(payment_entity(intent_id, 154350))
    forged = fake_razorpay.sign(body, settings_mod.DEV_RAZORPAY_WEBHOOK_SECRET)
    headers = {"X-Razorpay-Signature": forged}
    unset = create_app(settings.with_overrides(**REAL_TWILIO)).test_client()
    assert unset.post("/payments/razorpay/webhook", data=body, headers=headers).status_code == 503
    configured = create_app(
        settings.with_overrides(**REAL_TWILIO, razorpay_webhook_secret="s3cret-hooks")
    ).test_client()
    assert (
        configured.post("/payments/razorpay/webhook", data=body, headers=headers).status_code == 400
    )
    from bot import store

    with store.session_scope(engine) as session:
        assert session.query(store.Payment).count() == 0


def test_no_simulate_button_and_no_unconfigured_payee_in_production(settings, engine, redis_conn):
    add_consumer(engine)
    secrets = {"payment_link_secret": "s3cret-links"}
    cfg = settings.with_overrides(
        **REAL_TWILIO, **secrets, razorpay_api_base_url="http://127.0.0.1:9"
    )
    _, token = make_intent(engine, cfg)
    client = create_app(cfg).test_client()
    # KESCO's payee is not configured: the page refuses rather than show a made-up payee.
    assert client.get(f"/pay/{token}").status_code == 503
    paid = cfg.with_overrides(
        upi_vpas={"KESCO": "kescobills@sbi"},
        upi_payee_names={"KESCO": "Kanpur Electricity Supply Company Ltd"},
    )
    page = create_app(paid).test_client().get(f"/pay/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "kescobills@sbi" in html and "simulate" not in html
    assert create_app(paid).test_client().post(f"/pay/{token}/simulate").status_code == 404
