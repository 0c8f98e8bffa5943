"""WhatsApp buttons: a reply with options goes as a quick-reply Content template, created once.

The fake Twilio creates, checks and renders the templates (bot/dev/fake_twilio.py); the
template's sid is cached in the database. SMS, and every case where the template cannot be
had, gets numbered lines: the reply is never lost. A tap comes back as ``ButtonPayload``.
"""

from __future__ import annotations

import json
import threading

import pytest
import requests
from sqlalchemy import select

from bot import twilio_client
from bot.gateway import quick_replies
from bot.gateway.quick_replies import Button
from bot.settings import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from bot.store import InboundMessage, OutboundMessage, QuickReplyTemplate, session_scope
from tests.gateway_stack import inbound_form, sign

READER = "+919700001402"
QUESTION = "Kya upbhokta ko naya number bata diya?"
BUTTONS = [{"title": "Haan", "id": "1"}, {"title": "Nahi", "id": "2"}]


def _ask(post_signed, work, channel="whatsapp", text="visit question"):
    assert post_signed("/twilio/messages", inbound_form(text, sender=READER, channel=channel))
    work()


def _created(fake) -> int:
    return int(fake.configure()["content_created"])


def _outbound(engine) -> list[OutboundMessage]:
    with session_scope(engine) as session:
        rows = session.execute(select(OutboundMessage).order_by(OutboundMessage.id)).scalars()
        return [row for row in rows]


def test_whatsapp_question_goes_as_a_quick_reply_template(
    post_signed, engine, work, fake, stub_rasa
):
    _ask(post_signed, work)
    (message,) = fake.sent()
    sid = message["content_sid"]
    assert sid and sid.startswith("HX" + "fa4e")
    assert json.loads(message["content_variables"]) == {"1": QUESTION}
    assert message["body"] == QUESTION, "the fake renders the template's {{1}}"
    assert message["buttons"] == BUTTONS, "the payloads are the ids: a tap reads as a typed 1/2"
    (row,) = _outbound(engine)
    assert (row.body, row.content_sid, row.twilio_sid) == (QUESTION, sid, message["sid"])
    fetched = requests.get(
        f"{fake.url}/v1/Content/{sid}", auth=(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN), timeout=5
    ).json()
    assert fetched["types"]["twilio/quick-reply"] == {"body": "{{1}}", "actions": BUTTONS}


def test_the_template_is_created_once_for_repeated_replies(
    post_signed, engine, work, fake, stub_rasa
):
    for text in ("visit question", "1", "2"):
        _ask(post_signed, work, text=text)
    sent = fake.sent()
    assert len(sent) == 3 and len({m["content_sid"] for m in sent}) == 1
    assert [json.loads(m["content_variables"])["1"] for m in sent[1:]] == [
        "Bata diya? (after 1)",
        "Bata diya? (after 2)",
    ]
    assert _created(fake) == 1


def test_concurrent_workers_create_one_template(gw_settings, engine, fake, monkeypatch):
    """Eight workers miss the cache at once: one creates, the others reuse its sid."""
    real = twilio_client.create_content
    calls: list[int] = []

    def slow_create(cfg, definition):
        calls.append(1)
        threading.Event().wait(0.5)  # the creation takes a while: the others are waiting
        return real(cfg, definition)

    monkeypatch.setattr(twilio_client, "create_content", slow_create)
    buttons = (Button("Haan", "1"), Button("Nahi", "2"))
    start = threading.Barrier(8)
    found: list[str | None] = []

    def worker() -> None:
        start.wait()
        found.append(quick_replies.content_sid_for(gw_settings, engine, buttons))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(found) == 8 and found[0] and len(set(found)) == 1
    assert len(calls) == 1 and _created(fake) == 1
    with session_scope(engine) as session:
        assert (
            session.execute(select(QuickReplyTemplate)).scalars().all()[0].content_sid == found[0]
        )


def test_sms_keeps_numbered_options(post_signed, engine, work, fake, stub_rasa):
    _ask(post_signed, work, channel="sms")
    (message,) = fake.sent()
    assert message["body"] == f"{QUESTION}\n1. Haan\n2. Nahi"
    assert message["content_sid"] is None and _created(fake) == 0


def test_titles_whatsapp_would_refuse_go_numbered(post_signed, engine, work, fake, stub_rasa):
    _ask(post_signed, work, text="long buttons please")
    (message,) = fake.sent()
    assert message["body"] == "Choose:\n1. A title far longer than twenty"
    assert message["content_sid"] is None and _created(fake) == 0


def test_when_content_creation_fails_the_reply_goes_numbered(
    post_signed, engine, work, fake, stub_rasa, monkeypatch
):
    fake.configure(content_fail_next=[500])
    _ask(post_signed, work)
    (message,) = fake.sent()
    assert message["body"] == f"{QUESTION}\n1. Haan\n2. Nahi" and message["content_sid"] is None
    with session_scope(engine) as session:
        row = session.execute(select(QuickReplyTemplate)).scalar_one()
        assert row.content_sid is None and row.failed_at is not None and row.error_code == 20500
    # Within the retry pause the Content API is not asked again.
    fake.configure(content_fail_next=[500])
    _ask(post_signed, work, text="1")
    assert fake.sent()[-1]["content_sid"] is None
    assert fake.configure()["content_fail_next"] == [500], "no creation was attempted"
    # After it, the template is created and used.
    fake.configure(content_fail_next=[])
    monkeypatch.setattr(quick_replies, "RETRY_FAILED_AFTER", 0)
    _ask(post_signed, work, text="2")
    assert fake.sent()[-1]["content_sid"] and fake.sent()[-1]["buttons"] == BUTTONS
    assert _created(fake) == 1


def test_when_twilio_cannot_be_reached_for_content_the_reply_goes_numbered(
    post_signed, engine, work, fake, stub_rasa, monkeypatch
):
    def unreachable(cfg, definition):
        raise requests.ConnectionError("content.twilio.com unreachable")

    monkeypatch.setattr(twilio_client, "create_content", unreachable)
    _ask(post_signed, work)
    (message,) = fake.sent()
    assert message["body"] == f"{QUESTION}\n1. Haan\n2. Nahi"


def test_a_template_twilio_no_longer_knows_is_replaced(post_signed, engine, work, fake, stub_rasa):
    _ask(post_signed, work)
    old_sid = fake.sent()[0]["content_sid"]
    deleted = requests.delete(
        f"{fake.url}/v1/Content/{old_sid}", auth=(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN), timeout=5
    )
    assert deleted.status_code == 204
    _ask(post_signed, work, text="1")
    # Twilio refused the cached sid (21655): the same reply went as numbered text.
    assert fake.sent()[-1]["body"] == "Bata diya? (after 1)\n1. Haan\n2. Nahi"
    keys = [row.idempotency_key for row in _outbound(engine)]
    assert keys[-1].endswith(":numbered")
    # The stale sid is forgotten: the next reply creates a new template.
    _ask(post_signed, work, text="2")
    new_sid = fake.sent()[-1]["content_sid"]
    assert new_sid and new_sid != old_sid and _created(fake) == 2


def test_a_retried_job_does_not_send_the_reply_twice(
    post_signed, engine, work, fake, stub_rasa, redis_conn
):
    from bot.gateway.inbound import handle_inbound

    _ask(post_signed, work)
    with session_scope(engine) as session:
        row = session.execute(select(InboundMessage)).scalar_one()
        row.processed_at = None  # as if the job died after sending
        inbound_id = row.id
    handle_inbound(inbound_id)
    assert len(fake.sent()) == 1


def test_a_tapped_button_reaches_rasa_as_its_payload(post_signed, engine, work, fake, stub_rasa):
    form = inbound_form("Haan", sender=READER, ButtonText="Haan", ButtonPayload="1")
    assert post_signed("/twilio/messages", form).status_code == 200
    work()
    assert stub_rasa.messages() == ["1"]
    with session_scope(engine) as session:
        row = session.execute(select(InboundMessage)).scalar_one()
        assert (row.body, row.button_payload) == ("Haan", "1"), "the inbox keeps the title"


def test_the_signature_covers_the_button_payload(gw_client, gw_settings, stub_rasa, work):
    form = inbound_form("Haan", sender=READER, ButtonText="Haan", ButtonPayload="1")
    signature = sign(gw_settings, "/twilio/messages", form)
    forged = {**form, "ButtonPayload": "2"}
    answer = gw_client.post(
        "/twilio/messages", data=forged, headers={"X-Twilio-Signature": signature}
    )
    assert answer.status_code == 403
    work()
    assert stub_rasa.messages() == []


@pytest.mark.parametrize(
    ("text", "buttons", "fits"),
    [
        ("Q?", [("Haan", "1"), ("Nahi", "2")], True),
        ("Q?", [("x" * 20, "2")], True),
        ("Q?", [("x" * 21, "1")], False),
        ("Q?", [(str(n), str(n)) for n in range(4)], False),
        ("", [("Haan", "1")], False),
        ("x" * 1025, [("Haan", "1")], False),
        ("Q?", [("A", "1"), ("B", "1")], False),
        ("Q?", [], False),
    ],
    ids=["two", "twenty-chars", "long-title", "four", "no-text", "long-text", "same-ids", "none"],
)
def test_what_fits_a_quick_reply(text, buttons, fits):
    assert quick_replies.fits(text, [Button(t, p) for t, p in buttons]) is fits


def test_the_key_tells_button_sets_and_languages_apart():
    haan = [Button("Haan", "1"), Button("Nahi", "2")]
    assert quick_replies.template_key("en", haan) == quick_replies.template_key("en", list(haan))
    assert quick_replies.template_key("en", haan) != quick_replies.template_key("hi", haan)
    assert quick_replies.template_key("en", haan) != quick_replies.template_key("en", haan[::-1])
    assert quick_replies.language_of([Button("हाँ", "1")]) == "hi"
    assert quick_replies.language_of(haan) == "en"
