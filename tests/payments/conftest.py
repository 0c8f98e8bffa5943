"""Payments fixtures: consumers and bills in the real store, intents, signed gateway webhooks."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from bot import paylinks, store
from bot import settings as settings_mod
from bot.dev import fake_razorpay

ACCOUNT = "1234567890"
OLD_ACCOUNT = "456789"
MOBILE = "+919876543210"


def add_consumer(
    engine: Any,
    new: str = ACCOUNT,
    *,
    old: str | None = OLD_ACCOUNT,
    name: str = "रमेश कुमार",
    mobile: str | None = MOBILE,
    discom: str = "KESCO",
    meter_type: str = "postpaid",
    whatsapp: bool = True,
) -> None:
    with store.session_scope(engine) as session:
        session.add(
            store.Consumer(
                discom=discom,
                new_account_no=new,
                old_account_no=old,
                name=name,
                mobile=mobile,
                category="domestic",
                meter_type=meter_type,
                area="Kidwai Nagar",
                language="hi",
                whatsapp_opt_in=whatsapp,
            )
        )


def add_bill(
    engine: Any,
    new: str = ACCOUNT,
    month: str = "2026-11",
    due: int = 154350,
    imported_at: dt.datetime = dt.datetime(2026, 11, 5, 3, 0),
) -> None:
    with store.session_scope(engine) as session:
        session.add(
            store.Bill(
                new_account_no=new,
                bill_month=month,
                amount_due_paise=due,
                due_date=dt.date(2026, 11, 20),
                arrears_paise=0,
                imported_at=imported_at,
            )
        )


def make_intent(
    engine: Any,
    cfg: settings_mod.Settings,
    amount: int = 154350,
    *,
    account: str = ACCOUNT,
    month: str | None = "2026-11",
    mobile: str | None = MOBILE,
    channel: str | None = "whatsapp",
    now: dt.datetime | None = None,
) -> tuple[str, str]:
    """A stored intent for ``account``: (intent id, token)."""
    with store.session_scope(engine) as session:
        consumer = store.consumer_by_account(session, account)
        assert consumer is not None
        intent = paylinks.create_intent(
            session,
            cfg,
            consumer,
            amount,
            kind=paylinks.DUES if month else paylinks.ADVANCE,
            bill_month=month,
            mobile=mobile,
            channel=channel,
            now=now,
        )
        return intent.id, paylinks.make_token(cfg, intent)


def payment_entity(
    intent_id: str | None,
    amount: int,
    *,
    payment_id: str = "pay_TEST000000001",
    rrn: str | None = "612345678901",
    currency: str = "INR",
) -> dict[str, Any]:
    """A Razorpay payment entity as its webhooks carry it."""
    return {
        "id": payment_id,
        "entity": "payment",
        "amount": amount,
        "currency": currency,
        "status": "captured",
        "method": "upi",
        "vpa": "someone@okicici",
        "notes": {"intent_id": intent_id} if intent_id else [],
        "acquirer_data": {"rrn": rrn} if rrn else {},
        "created_at": 1796105400,  # 2026-12-01 06:10 UTC
    }


@pytest.fixture()
def post_webhook(client: Any, settings: settings_mod.Settings) -> Callable[..., Any]:
    """Post a payment.captured webhook signed as Razorpay signs it (or with ``signature``)."""

    def post(entity: dict[str, Any], signature: str | None = None, body: bytes | None = None):
        raw = body if body is not None else fake_razorpay.event_body(entity)
        sig = (
            fake_razorpay.sign(raw, settings.razorpay_webhook_key)
            if signature is None
            else signature
        )
        headers = {"X-Razorpay-Signature": sig} if sig else {}
        return client.post(
            "/payments/razorpay/webhook",
            data=raw,
            headers=headers,
            content_type="application/json",
        )

    return post


def event_json(entity: dict[str, Any]) -> dict[str, Any]:
    return json.loads(fake_razorpay.event_body(entity))
