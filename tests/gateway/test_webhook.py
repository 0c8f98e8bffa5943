"""``POST /twilio/messages``: signature, parsing, dedupe, enqueueing, and the job's replies."""

from __future__ import annotations

import time

from rq import Queue
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.gateway import inbound, ordering, webhooks
from bot.queues import INBOUND
from bot.store import InboundMessage, OutboundMessage, Staff, session_scope
from tests.gateway_stack import inbound_form, sign

EMPTY = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'


def test_signed_message_is_accepted_with_empty_twiml_and_queued(post_signed, redis_conn, engine):
    response = post_signed("/twilio/messages", inbound_form("hi"))
    assert response.status_code == 200
    assert response.data == EMPTY
    assert response.mimetype == "text/xml"
    assert Queue(INBOUND, connection=redis_conn).count == 1
    with session_scope(engine) as session:
        row = session.execute(select(InboundMessage)).scalar_one()
        assert (row.channel, row.from_number, row.body) == ("whatsapp", "+919876543210", "hi")


def test_bad_signature_is_403_and_logged_without_the_body(gw_client, redis_conn, caplog):
    form = inbound_form("my secret account 1234567890")
    response = gw_client.post(
        "/twilio/messages", data=form, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
    )
    assert response.status_code == 403
    assert "twilio_signature_invalid" in caplog.text
    assert "1234567890" not in caplog.text
    assert Queue(INBOUND, connection=redis_conn).count == 0


def test_missing_signature_is_403(gw_client):
    assert gw_client.post("/twilio/messages", data=inbound_form()).status_code == 403


def test_signature_over_another_url_is_rejected(gw_client, gw_settings):
    form = inbound_form()
    wrong = gw_settings.with_overrides(public_base_url="https://elsewhere.example")
    response = gw_client.post(
        "/twilio/messages",
        data=form,
        headers={"X-Twilio-Signature": sign(wrong, "/twilio/messages", form)},
    )
    assert response.status_code == 403


def test_tampered_field_breaks_the_signature(gw_client, gw_settings):
    form = inbound_form("pay 100")
    signature = sign(gw_settings, "/twilio/messages", form)
    form["Body"] = "pay 100000"
    response = gw_client.post(
        "/twilio/messages", data=form, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403


def test_a_signature_over_the_url_without_its_port_is_accepted_and_a_forged_one_is_not(
    gw_app, gw_client, gw_settings, redis_conn
):
    # Twilio may sign the URL with or without its port. The exact URL is checked first, and
    # RequestValidator.validate only after it: both must still refuse a wrong signature.
    from urllib.parse import urlparse

    from twilio.request_validator import remove_port

    from bot import delivery_status

    validator = RequestValidator(gw_settings.twilio_auth_token)
    portless = remove_port(urlparse(gw_settings.public_base_url))
    assert portless != gw_settings.public_base_url, "the test settings' URL has a port"
    form = inbound_form("hi")
    good = validator.compute_signature(f"{portless}/twilio/messages", form)
    forged = validator.compute_signature(f"{portless}/twilio/other", form)
    for signature, status in ((forged, 403), (good, 200)):
        response = gw_client.post(
            "/twilio/messages", data=form, headers={"X-Twilio-Signature": signature}
        )
        assert response.status_code == status
    # A progress callback, which is parked before Flask.
    callback = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "sent"}
    good = validator.compute_signature(f"{portless}/twilio/status", callback)
    forged = validator.compute_signature(f"{portless}/twilio/status", {**callback, "To": "x"})
    for signature, status, parked in ((forged, 403, 0), (good, 204, 1)):
        response = gw_client.post(
            "/twilio/status", data=callback, headers={"X-Twilio-Signature": signature}
        )
        assert response.status_code == status
        assert delivery_status.parked_count(redis_conn) == parked


def test_signed_fields_sign_as_the_form_itself():
    # What RequestValidator computes over SignedFields is what it computes over the form.
    from werkzeug.datastructures import ImmutableMultiDict

    validator = RequestValidator("token")
    url = "https://bot.example/twilio/status?key=reply%3A1%3A0%3A0"
    forms = [
        {"MessageSid": "SM1", "MessageStatus": "sent", "To": "whatsapp:+919876543210"},
        ImmutableMultiDict([("Body", "b"), ("To", "x"), ("To", "a"), ("Body", "")]),
        {},
    ]
    for form in forms:
        expected = validator.compute_signature(url, form)
        assert validator.compute_signature(url, webhooks.SignedFields(form)) == expected
    assert webhooks.SignedFields(forms[1]).getall("To") == ["x", "a"]


def test_twilio_retry_of_the_same_sid_is_processed_once(
    post_signed, redis_conn, engine, work, fake, stub_rasa
):
    form = inbound_form("hello", sid="SM" + "a" * 32)
    for _ in range(3):
        assert post_signed("/twilio/messages", form).data == EMPTY
    assert Queue(INBOUND, connection=redis_conn).count == 1
    work()
    assert stub_rasa.messages() == ["hello"]
    assert [m["body"] for m in fake.sent()] == ["echo: hello"]


def test_the_database_row_is_the_dedupe_even_after_redis_forgot_everything(
    post_signed, redis_conn, engine, work, fake, stub_rasa
):
    form = inbound_form("hello", sid="SM" + "b" * 32)
    post_signed("/twilio/messages", form)
    work()
    redis_conn.flushdb()
    assert post_signed("/twilio/messages", form).data == EMPTY
    assert Queue(INBOUND, connection=redis_conn).count == 0
    work()
    assert len(fake.sent()) == 1


def test_a_message_whose_enqueue_failed_is_accepted_and_enqueued_on_twilios_retry(
    post_signed, redis_conn, engine, work, fake, stub_rasa, monkeypatch
):
    form = inbound_form("are you there", sid="SM" + "c" * 32)
    calls = {"n": 0}
    real = ordering.ensure_enqueued

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            import redis

            raise redis.ConnectionError("redis went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(webhooks, "ensure_enqueued", flaky)
    # Stored before the answer: Twilio gets its 200 and the message is not lost.
    assert post_signed("/twilio/messages", form).status_code == 200
    assert Queue(INBOUND, connection=redis_conn).count == 0
    assert post_signed("/twilio/messages", form).status_code == 200
    work()
    assert [m["body"] for m in fake.sent()] == ["echo: are you there"]


def test_job_posts_a_signed_message_naming_the_sender(post_signed, engine, work, fake, stub_rasa):
    before = int(time.time())
    post_signed("/twilio/messages", inbound_form("mera bill", sender="+919812345678"))
    work()
    assert stub_rasa.refused == []  # the stub checked the signature as the channel does
    (payload,) = stub_rasa.requests
    sent_at, nonce = payload.pop("sent_at"), payload.pop("nonce")
    assert payload == {
        "channel": "whatsapp",
        "mobile": "+919812345678",
        "role": "consumer",
        "text": "mera bill",
        "profile_name": "Ramesh",
    }
    assert before <= sent_at <= time.time() and len(nonce) == 32
    (sent,) = fake.sent()
    assert sent["to"] == "whatsapp:+919812345678"
    assert sent["from"] == "whatsapp:+14155238886"
    with session_scope(engine) as session:
        inbound_id = session.execute(select(InboundMessage.id)).scalar_one()
    assert sent["status_callback"].endswith(f"/twilio/status?key=reply%3A{inbound_id}%3A0%3A0")


def test_staff_number_is_sent_with_role_staff(post_signed, engine, work, fake, stub_rasa):
    with session_scope(engine) as session:
        session.add(
            Staff(mobile="+919811111111", name="Meena", role="meter_reader", area="Kidwai Nagar")
        )
    post_signed(
        "/twilio/messages", inbound_form("verify 1234567890", sender="09811111111", channel="sms")
    )
    work()
    assert stub_rasa.requests[0]["role"] == "staff"
    assert (stub_rasa.requests[0]["channel"], stub_rasa.requests[0]["mobile"]) == (
        "sms",
        "+919811111111",
    )
    assert fake.sent()[0]["to"] == "+919811111111"


def test_image_reply_is_media_on_whatsapp_and_a_link_on_sms(
    post_signed, engine, work, fake, stub_rasa
):
    post_signed("/twilio/messages", inbound_form("image please", sender="+919800000001"))
    post_signed(
        "/twilio/messages", inbound_form("image please", sender="+919800000002", channel="sms")
    )
    work()
    wa = fake.sent("whatsapp:+919800000001")
    assert [m["body"] for m in wa] == ["Scan this QR to pay", ""]
    assert wa[1]["media_urls"] == ["http://127.0.0.1:9/qr/123.png"]
    sms = fake.sent("+919800000002")
    assert [m["body"] for m in sms] == ["Scan this QR to pay", "http://127.0.0.1:9/qr/123.png"]
    assert all(m["media_urls"] == [] for m in sms)


def test_buttons_become_numbered_options_on_sms(post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("buttons please", channel="sms"))
    work()
    assert fake.sent()[0]["body"] == "Choose:\n1. Bill"


def test_buttons_become_a_quick_reply_on_whatsapp(post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("buttons please"))
    work()
    (message,) = fake.sent()
    assert message["body"] == "Choose:" and message["content_sid"]
    assert message["buttons"] == [{"title": "Bill", "id": "/ask_bill_amount"}]


def test_replies_are_recorded_as_outbound_messages(post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("hi there"))
    work()
    with session_scope(engine) as session:
        out = session.execute(select(OutboundMessage)).scalar_one()
        assert out.twilio_sid == fake.sent()[0]["sid"]
        assert out.idempotency_key.startswith("reply:")
        assert out.to_number == "+919876543210"
        inbound = session.execute(select(InboundMessage)).scalar_one()
        assert inbound.processed_at is not None


def test_sms_and_whatsapp_from_the_same_number_are_separate_senders(
    post_signed, engine, work, fake, stub_rasa
):
    post_signed("/twilio/messages", inbound_form("one", channel="sms"))
    post_signed("/twilio/messages", inbound_form("two", channel="whatsapp"))
    work()
    assert sorted((r["channel"], r["mobile"]) for r in stub_rasa.requests) == [
        ("sms", "+919876543210"),
        ("whatsapp", "+919876543210"),
    ]


def test_a_signature_over_the_url_with_the_connection_overrides_is_accepted(
    gw_client, gw_settings, redis_conn, engine
):
    # Twilio's docs do not say whether the fragment is signed; either form must get through.
    url = f"{gw_settings.public_base_url}/twilio/messages"
    validator = RequestValidator(gw_settings.twilio_auth_token)
    with_fragment = f"{url}#{gw_settings.twilio_webhook_overrides}"
    for signed_url in (with_fragment, url):
        form = inbound_form("hi")
        signature = validator.compute_signature(signed_url, form)
        response = gw_client.post(
            "/twilio/messages", data=form, headers={"X-Twilio-Signature": signature}
        )
        assert response.status_code == 200, signed_url
    other = inbound_form("hi")
    signature = validator.compute_signature(f"{url}#rc=1", other)
    response = gw_client.post(
        "/twilio/messages", data=other, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403, "only the configured overrides"


def test_the_readme_gives_the_webhook_url_the_signature_check_knows():
    from bot.settings import DEFAULT_WEBHOOK_OVERRIDES, ROOT

    readme = (ROOT / "README.md").read_text()
    assert f"/twilio/messages#{DEFAULT_WEBHOOK_OVERRIDES}" in readme
    assert "rp=ct,rt,5xx" in DEFAULT_WEBHOOK_OVERRIDES  # a 5xx and a timeout are retried


def test_a_whatsapp_location_pin_reaches_rasa_signed_as_a_power_cut_report(
    post_signed, engine, work, fake, stub_rasa
):
    # What Twilio posts for a shared location: no Body, Latitude and Longitude.
    form = inbound_form("", Latitude="26.4268", Longitude="80.3325", Address="Kidwai Nagar")
    post_signed("/twilio/messages", form)
    with session_scope(engine) as session:
        row = session.execute(select(InboundMessage)).scalar_one()
        assert (row.latitude, row.longitude) == (26.4268, 80.3325)
    work()
    assert stub_rasa.refused == []
    (payload,) = stub_rasa.requests
    assert payload["text"] == inbound.LOCATION_ONLY_TEXT == "/report_power_cut"
    assert (payload["latitude"], payload["longitude"]) == (26.4268, 80.3325)
    assert len(fake.sent()) == 1


def test_a_pin_with_words_keeps_the_words(post_signed, work, stub_rasa):
    post_signed(
        "/twilio/messages",
        inbound_form("yahan taar gira hai", Latitude="26.4268", Longitude="80.3325"),
    )
    work()
    (payload,) = stub_rasa.requests
    assert payload["text"] == "yahan taar gira hai"
    assert (payload["latitude"], payload["longitude"]) == (26.4268, 80.3325)


def test_a_location_that_is_no_place_is_dropped(post_signed, engine, work, stub_rasa):
    post_signed("/twilio/messages", inbound_form("", Latitude="north", Longitude="80.3"))
    post_signed("/twilio/messages", inbound_form("hi", Latitude="126.4", Longitude="80.3"))
    with session_scope(engine) as session:
        rows = session.execute(select(InboundMessage.latitude, InboundMessage.longitude)).all()
    assert [tuple(r) for r in rows] == [(None, None), (None, None)]
    work()
    # The empty message got the gateway's own prompt; only "hi" went to Rasa, without a pin.
    assert stub_rasa.messages() == ["hi"]
    assert "latitude" not in stub_rasa.requests[0]


def test_location_pin_reads_only_a_place() -> None:
    assert webhooks.location_pin("26.4268", "80.3325") == (26.4268, 80.3325)
    for bad in [("", ""), ("26.4", None), ("nan", "80"), ("26.4", "inf"), ("-91", "80")]:
        assert webhooks.location_pin(*bad) is None
