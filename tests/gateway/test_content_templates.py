"""WhatsApp pushes: free text inside the 24-hour window, a Content template outside it.

The fake Twilio records both forms and checks them as Twilio does.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
from sqlalchemy import select

from bot import delivery_status, twilio_client
from bot.clock import utcnow
from bot.settings import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from bot.store import InboundMessage, OutboundMessage, session_scope
from tests.gateway_stack import new_sid

TO = "+919876544501"
CONTENT_SID = "HX" + "0123456789abcdef" * 2
TEXT = "Aapka naya khata sankhya 2300000001 hai."


def _push(cfg, engine, key="push:1", **extra):
    args = {
        "channel": "whatsapp",
        "to": TO,
        "idempotency_key": key,
        "body": TEXT,
        "content_sid": CONTENT_SID,
        "content_variables": {"1": "2300000001"},
        "campaign_id": None,
        "engine": engine,
    }
    return twilio_client.send(cfg, **{**args, **extra})


def _wrote_us(engine, hours_ago: float, channel: str = "whatsapp") -> None:
    with session_scope(engine) as session:
        session.add(
            InboundMessage(
                message_sid=new_sid(),
                channel=channel,
                from_number=TO,
                body="hi",
                received_at=utcnow() - dt.timedelta(hours=hours_ago),
                processed_at=utcnow(),
            )
        )


def test_someone_who_never_wrote_gets_the_template(gw_settings, engine, fake):
    assert _push(gw_settings, engine).result == "sent"
    (message,) = fake.sent()
    assert message["content_sid"] == CONTENT_SID
    assert json.loads(message["content_variables"]) == {"1": "2300000001"}
    assert message["body"] == "", "no Body beside a template"
    with session_scope(engine) as session:
        row = session.execute(select(OutboundMessage)).scalar_one()
        assert row.body == TEXT, "the record keeps the text the person reads"


def test_inside_the_window_the_push_goes_as_free_text(gw_settings, engine, fake):
    _wrote_us(engine, hours_ago=3)
    assert _push(gw_settings, engine).result == "sent"
    (message,) = fake.sent()
    assert (message["body"], message["content_sid"]) == (TEXT, None)


@pytest.mark.parametrize(
    ("hours_ago", "channel"),
    [(25, "whatsapp"), (23.95, "whatsapp"), (1, "sms")],
    ids=["window-closed", "closing-within-the-margin", "wrote-by-sms"],
)
def test_outside_the_window_the_push_is_a_template(gw_settings, engine, fake, hours_ago, channel):
    _wrote_us(engine, hours_ago=hours_ago, channel=channel)
    assert _push(gw_settings, engine).result == "sent"
    (message,) = fake.sent()
    assert message["content_sid"] == CONTENT_SID and message["body"] == ""


def test_a_template_alone_goes_as_a_template_even_inside_the_window(gw_settings, engine, fake):
    _wrote_us(engine, hours_ago=1)
    assert _push(gw_settings, engine, body="").result == "sent"
    assert fake.sent()[0]["content_sid"] == CONTENT_SID


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"content_sid": "HX123"}, "HX"),
        ({"content_sid": None}, "21654"),
        ({"content_variables": {"1": ""}}, "empty"),
        ({"content_variables": "[1, 2]"}, "JSON object"),
    ],
)
def test_a_malformed_template_is_refused_before_twilio(gw_settings, engine, fake, extra, match):
    with pytest.raises(ValueError, match=match):
        _push(gw_settings, engine, **extra)
    assert fake.sent() == []
    with session_scope(engine) as session:
        assert session.execute(select(OutboundMessage)).first() is None


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"Body": "", "ContentSid": "HXnothex"}, 21655),
        ({"Body": "hi", "ContentVariables": '{"1": "x"}'}, 21654),
        ({"ContentSid": CONTENT_SID, "ContentVariables": "{not json"}, 21656),
        ({"ContentSid": CONTENT_SID, "ContentVariables": '{"1": null}'}, 21656),
        ({"Body": ""}, 21602),
    ],
)
def test_the_fake_checks_templates_as_twilio_does(fake, form, code):
    answer = requests.post(
        f"{fake.url}/2010-04-01/Accounts/{DEV_ACCOUNT_SID}/Messages.json",
        data={"To": f"whatsapp:{TO}", "From": "whatsapp:+14155238886", **form},
        auth=(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN),
        timeout=5,
    )
    assert (answer.status_code, answer.json()["code"]) == (400, code)
    assert fake.sent() == []


def test_a_template_accepted_then_dropped_is_found_in_twilios_list(gw_settings, engine, fake):
    # No app listens for status callbacks here, and Twilio's list shows the template's own
    # rendering rather than our text: the search still finds it, and nothing is sent twice.
    fake.configure(drop_after_accept=1)
    with pytest.raises(twilio_client.TwilioTransientError):
        _push(gw_settings, engine)
    (accepted,) = fake.sent()
    outcome = _push(gw_settings, engine)
    assert (outcome.result, outcome.twilio_sid) == ("duplicate", accepted["sid"])
    assert len(fake.sent()) == 1


def test_a_template_accepted_then_dropped_is_found_by_its_status_callback(
    live_app, gw_settings, engine, fake, redis_conn
):
    from tests.gateway_stack import wait_for

    fake.configure(drop_after_accept=1)
    with pytest.raises(twilio_client.TwilioTransientError):
        _push(gw_settings, engine)
    (accepted,) = fake.sent()

    def adopted() -> bool:
        delivery_status.flush(redis_conn, engine)  # the worker's job writes parked callbacks
        with session_scope(engine) as session:
            row = session.execute(select(OutboundMessage)).scalar_one()
            return bool(row.twilio_sid == accepted["sid"])

    wait_for(adopted)
    assert _push(gw_settings, engine).result == "duplicate"
    assert len(fake.sent()) == 1
    assert fake.state.lists_seen == 0
