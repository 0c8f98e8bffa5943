"""The fake Twilio's Content API: created, checked and rendered as Twilio does.

Templates are created with plain JSON posts (as bot.twilio_client.create_content does) and read
back with the real ``twilio`` client's Content resources; sending goes through the real client.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot import settings as settings_mod
from bot.dev import fake_twilio

AUTH = (settings_mod.DEV_ACCOUNT_SID, settings_mod.DEV_AUTH_TOKEN)
TO, FROM = "whatsapp:+919700001401", "whatsapp:+14155238886"


@pytest.fixture()
def client(fake):
    c = Client(*AUTH)
    c.api.base_url = fake.url
    c.content.base_url = fake.url
    return c


def quick_reply(actions: Any = None, body: Any = "{{1}}", **extra: Any) -> dict[str, Any]:
    if actions is None:
        actions = [{"title": "Haan", "id": "1"}, {"title": "Nahi", "id": "2"}]
    return {
        "friendly_name": "visit_question",
        "language": "hi",
        "variables": {"1": "Question"},
        "types": {"twilio/quick-reply": {"body": body, "actions": actions}},
        **extra,
    }


def create(fake, definition: Any, auth: tuple[str, str] = AUTH) -> requests.Response:
    return requests.post(f"{fake.url}/v1/Content", json=definition, auth=auth, timeout=5)


def test_a_quick_reply_is_created_and_read_back_by_the_real_client(client, fake):
    answer = create(fake, quick_reply())
    assert answer.status_code == 201
    sid = answer.json()["sid"]
    assert sid.startswith("HX" + fake_twilio.CREATED_PREFIX) and len(sid) == 34
    fetched = client.content.v1.contents(sid).fetch()
    assert fetched.sid == sid and fetched.language == "hi"
    assert fetched.types["twilio/quick-reply"]["actions"][1] == {"title": "Nahi", "id": "2"}
    assert sid in [c.sid for c in client.content.v1.contents.list()]
    assert fake.configure()["content_created"] == 1


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        (quick_reply(actions=[]), "1 to 3 actions"),
        (quick_reply(actions=[{"title": f"T{n}", "id": str(n)} for n in range(4)]), "1 to 3"),
        (quick_reply(actions=[{"title": "x" * 21, "id": "1"}]), "title exceeds 20"),
        (quick_reply(actions=[{"title": " ", "id": "1"}]), "title is required"),
        (quick_reply(actions=[{"title": "Haan"}]), "id is required"),
        (quick_reply(actions=[{"title": "A", "id": "1"}, {"title": "B", "id": "1"}]), "unique"),
        (quick_reply(body=""), "body is required"),
        (quick_reply(body="x" * 1025), "exceeds 1024"),
        (quick_reply(body="{{2}}"), "variable 2 has no sample"),
        ({**quick_reply(), "language": ""}, "Language is required"),
        ({**quick_reply(), "types": {}}, "content type is required"),
        ({**quick_reply(), "types": {"twilio/carousel": {"body": "x"}}}, "Unsupported"),
        ("not an object", "JSON object"),
    ],
    ids=[
        "no-actions", "four-actions", "long-title", "blank-title", "no-id", "same-ids",
        "no-body", "long-body", "variable-without-sample", "no-language", "no-types",
        "unknown-type", "not-an-object",
    ],
)  # fmt: skip
def test_a_definition_twilio_would_refuse_is_a_400(fake, definition, problem):
    answer = create(fake, definition)
    assert answer.status_code == 400
    assert answer.json()["code"] == 20001 and problem in answer.json()["message"]
    assert fake.configure()["content_created"] == 0


def test_wrong_credentials_are_refused(fake):
    assert create(fake, quick_reply(), auth=(AUTH[0], "wrong")).status_code == 401


def test_sending_a_created_quick_reply_records_its_rendered_body_and_buttons(client, fake):
    sid = create(fake, quick_reply()).json()["sid"]
    message = client.messages.create(
        to=TO, from_=FROM, content_sid=sid, content_variables=json.dumps({"1": "Bata diya?"})
    )
    assert message.body == "Bata diya?", "Twilio shows the rendered body"
    (sent,) = fake.sent()
    assert sent["body"] == "Bata diya?" and sent["content_sid"] == sid
    assert sent["buttons"] == [{"title": "Haan", "id": "1"}, {"title": "Nahi", "id": "2"}]


def test_without_variables_the_sample_fills_the_body(client, fake):
    sid = create(fake, quick_reply()).json()["sid"]
    client.messages.create(to=TO, from_=FROM, content_sid=sid)
    assert fake.sent()[0]["body"] == "Question"


def test_a_deleted_template_is_an_invalid_content_sid(client, fake):
    sid = create(fake, quick_reply()).json()["sid"]
    client.content.v1.contents(sid).delete()
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to=TO, from_=FROM, content_sid=sid, content_variables='{"1": "x"}')
    assert (info.value.status, info.value.code) == (400, 21655)
    with pytest.raises(TwilioRestException) as fetched:
        client.content.v1.contents(sid).fetch()
    assert fetched.value.status == 404
    assert fake.sent() == []


def test_a_sid_registered_in_twilio_s_console_still_sends_unrendered(client, fake):
    # The campaign templates (notifier/templates) were approved outside the fake.
    console_sid = "HX00000000000000000000000000000102"
    client.messages.create(
        to=TO, from_=FROM, content_sid=console_sid, content_variables='{"1": "Ram"}'
    )
    (sent,) = fake.sent()
    assert (sent["content_sid"], sent["body"], sent["buttons"]) == (console_sid, "", None)


def test_injected_content_failures(fake):
    fake.configure(content_fail_next=[500, 429])
    assert create(fake, quick_reply()).status_code == 500
    assert create(fake, quick_reply()).status_code == 429
    assert create(fake, quick_reply()).status_code == 201
