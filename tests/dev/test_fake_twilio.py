"""The fake Twilio speaks the Messages API well enough for the real ``twilio`` client."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.wrappers import Request, Response

from bot import settings as settings_mod
from bot import twilio_client
from tests.gateway_stack import ServerThread, wait_for


@pytest.fixture()
def client(fake):
    c = Client(settings_mod.DEV_ACCOUNT_SID, settings_mod.DEV_AUTH_TOKEN)
    c.api.base_url = fake.url
    return c


def test_real_client_creates_a_message(client, fake):
    message = client.messages.create(
        to="whatsapp:+919876543210",
        from_="whatsapp:+14155238886",
        body="namaste",
        media_url=["http://x/qr.png"],
    )
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.status == "queued"
    assert message.to == "whatsapp:+919876543210" and message.from_ == "whatsapp:+14155238886"
    assert message.body == "namaste" and message.num_media == "1"
    assert message.account_sid == settings_mod.DEV_ACCOUNT_SID
    assert message.uri.endswith(f"/Messages/{message.sid}.json")
    assert message.date_created is not None
    (sent,) = fake.sent()
    assert sent["media_urls"] == ["http://x/qr.png"]
    fetched = client.messages(message.sid).fetch()
    assert fetched.sid == message.sid


def test_content_template_fields_are_recorded(client, fake):
    client.messages.create(
        to="whatsapp:+919876543210",
        from_="whatsapp:+14155238886",
        content_sid="HX" + "0" * 32,
        content_variables='{"1": "Ram"}',
    )
    (sent,) = fake.sent()
    assert sent["content_sid"] == "HX" + "0" * 32 and sent["content_variables"] == '{"1": "Ram"}'


def test_wrong_credentials_are_401(fake):
    bad = Client(settings_mod.DEV_ACCOUNT_SID, "wrong-token")
    bad.api.base_url = fake.url
    with pytest.raises(TwilioRestException) as info:
        bad.messages.create(to="+919876543210", from_="+15005550006", body="x")
    assert (info.value.status, info.value.code) == (401, 20003)


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500)])
def test_injected_errors_reach_the_client_as_twilio_exceptions(status, code, client, fake):
    fake.configure(fail_next=[status])
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+919876543210", from_="+15005550006", body="x")
    assert (info.value.status, info.value.code) == (status, code)
    assert twilio_client.is_transient(info.value)
    client.messages.create(to="+919876543210", from_="+15005550006", body="x")
    assert len(fake.sent()) == 1


def test_error_rates_apply_to_roughly_that_share(client, fake):
    fake.configure(error_rate_429=0.3, error_rate_500=0.2)
    failures = 0
    for _ in range(200):
        try:
            client.messages.create(to="+919876543210", from_="+15005550006", body="x")
        except TwilioRestException:
            failures += 1
    assert 60 < failures < 140


def test_bad_requests_get_twilio_error_codes(client, fake):
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+919876543210", from_="+15005550006", body="x" * 1601)
    assert info.value.code == 21617
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+919876543210", from_="+15005550006")
    assert info.value.code == 21602
    fake.configure(reject={"+919876543210": 21211})
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="whatsapp:+919876543210", from_="+15005550006", body="x")
    assert (info.value.status, info.value.code) == (400, 21211)
    assert not twilio_client.is_transient(info.value)


def test_sent_list_filters_and_clears(client, fake):
    client.messages.create(to="+919800000001", from_="+15005550006", body="a")
    client.messages.create(to="whatsapp:+919800000002", from_="whatsapp:+14155238886", body="b")
    assert [m["body"] for m in fake.sent("+919800000002")] == ["b"]
    assert len(fake.sent()) == 2
    requests.delete(f"{fake.url}/sent", timeout=5)
    assert fake.sent() == []


def test_status_callbacks_are_signed_like_twilios(client, fake):
    received: list[tuple[str, dict[str, str], str]] = []
    done = threading.Event()

    def app(environ, start_response):
        request = Request(environ)
        received.append(
            (request.url, request.form.to_dict(), request.headers.get("X-Twilio-Signature", ""))
        )
        if len(received) == 3:
            done.set()
        return Response("", status=204)(environ, start_response)

    with ServerThread(app) as receiver:
        url = f"{receiver.url}/twilio/status"
        message = client.messages.create(
            to="+919876543210", from_="+15005550006", body="x", status_callback=url
        )
        wait_for(done.is_set, timeout=5)
    validator = RequestValidator(settings_mod.DEV_AUTH_TOKEN)
    assert [form["MessageStatus"] for _, form, _ in received] == ["queued", "sent", "delivered"]
    for _url, form, signature in received:
        assert form["MessageSid"] == message.sid
        assert validator.validate(url, form, signature)
        assert not RequestValidator("other-token").validate(url, form, signature)


def test_twilio_client_module_points_the_client_at_the_fake(gw_settings, fake):
    client = twilio_client.make_client(gw_settings)
    assert client.api.base_url == fake.url
    real = twilio_client.make_client(gw_settings.with_overrides(twilio_api_base_url=None))
    assert real.api.base_url == "https://api.twilio.com"


def test_message_list_filters_newest_first_and_pages_like_twilios(client, fake):
    for n in range(5):
        client.messages.create(to="+919800000001", from_="+15005550006", body=f"to one {n}")
    client.messages.create(to="+919800000002", from_="+15005550006", body="to two")
    listed = client.messages.list(to="+919800000001", page_size=2)
    assert [m.body for m in listed] == [f"to one {n}" for n in (4, 3, 2, 1, 0)]
    assert all(m.to == "+919800000001" and m.date_created is not None for m in listed)
    assert [m.body for m in client.messages.list(from_="+15005550006", limit=2)] == [
        "to two",
        "to one 4",
    ]
    assert client.messages.list(to="+919800000009") == []


def test_message_list_date_sent_filter_counts_only_sent_messages(client, fake):
    fake.configure(callback_delay=0.2)
    message = client.messages.create(to="+919800000001", from_="+15005550006", body="x")
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    # Queued, not sent yet: no date_sent, so a DateSent filter leaves it out.
    assert client.messages.list(date_sent_after=today) == []
    assert [m.sid for m in client.messages.list()] == [message.sid]
    wait_for(lambda: client.messages(message.sid).fetch().status == "delivered", timeout=5)
    (sent,) = client.messages.list(date_sent_after=today)
    assert sent.sid == message.sid and sent.date_sent is not None
    assert client.messages.list(date_sent_before=today) == []


def test_accept_then_drop_leaves_the_client_without_an_answer(client, fake):
    fake.configure(drop_after_accept=1)
    with pytest.raises(requests.ConnectionError):
        client.messages.create(to="+919800000001", from_="+15005550006", body="did it go?")
    assert [m["body"] for m in fake.sent()] == ["did it go?"], "accepted all the same"
    fake.configure(drop_before_accept=1)
    with pytest.raises(requests.ConnectionError):
        client.messages.create(to="+919800000001", from_="+15005550006", body="this did not")
    assert len(fake.sent()) == 1
    client.messages.create(to="+919800000001", from_="+15005550006", body="normal again")
    assert len(fake.sent()) == 2


def test_rotated_token_is_401_and_suspended_account_403_everywhere(client, fake):
    fake.configure(auth_token="rotated")
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+919876543210", from_="+15005550006", body="x")
    assert (info.value.status, info.value.code) == (401, 20003)
    with pytest.raises(TwilioException, match="Unable to fetch page"):
        client.messages.list(limit=1)
    fake.configure(auth_token=settings_mod.DEV_AUTH_TOKEN, account_status="suspended")
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+919876543210", from_="+15005550006", body="x")
    assert (info.value.status, info.value.code) == (403, 20005)
    fake.configure(account_status="active")
    client.messages.create(to="+919876543210", from_="+15005550006", body="x")
    assert len(fake.sent()) == 1


def test_lean_mode_keeps_only_arrival_times_and_posts_no_callbacks(client, fake):
    fake.configure(keep_sent=False, post_callbacks=False)
    for n in range(3):
        client.messages.create(to=f"+9198765431{n:02d}", from_="+15005550006", body="x")
    assert fake.sent() == []
    received = requests.get(f"{fake.url}/_fake/received", timeout=5).json()
    assert received["count"] == 3 and received["senders"] == ["+15005550006"] * 3
    assert received["times"] == sorted(received["times"])


def test_whatsapp_failures_end_whatsapp_messages_failed_with_the_code(client, fake):
    fake.configure(whatsapp_failures={"+919876543299": 63003}, callback_delay=0.01)
    wa = client.messages.create(
        to="whatsapp:+919876543299", from_="whatsapp:+14155238886", body="x"
    )
    sms = client.messages.create(to="+919876543299", from_="+15005550006", body="x")
    wait_for(lambda: client.messages(wa.sid).fetch().status == "failed")
    wait_for(lambda: client.messages(sms.sid).fetch().status == "delivered")
