"""``/console``: signs like Twilio, goes through the real webhook, shows replies; and a browser."""

from __future__ import annotations

import os
import shutil

import pytest
from sqlalchemy import select

from bot import create_app
from bot.gateway import texts
from bot.settings import TwilioAccountSidMissing
from bot.store import InboundMessage, session_scope
from tests.gateway_stack import wait_for

CHROMIUM = "/usr/bin/chromium"


def test_page_offers_the_demo_numbers(gw_client):
    page = gw_client.get("/console")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "+919000000101" in html  # demo_data.DEMO_CONSUMER_MOBILE
    assert "+919000000001" in html  # demo_data.DEMO_METER_READER_MOBILE


def test_console_message_goes_through_the_signed_webhook(gw_client, engine, work, fake, stub_rasa):
    response = gw_client.post(
        "/console/send", json={"mobile": "09000000101", "channel": "whatsapp", "body": "namaste"}
    )
    data = response.get_json()
    assert (response.status_code, data["status"], data["mobile"]) == (200, 200, "+919000000101")
    with session_scope(engine) as session:
        row = session.execute(select(InboundMessage)).scalar_one()
        assert (row.message_sid, row.channel, row.body) == (
            data["message_sid"],
            "whatsapp",
            "namaste",
        )
    work()
    assert stub_rasa.requests[0]["profile_name"] == "Console"
    items = gw_client.get("/console/messages?mobile=%2B919000000101&channel=whatsapp").get_json()[
        "items"
    ]
    assert [(i["direction"], i["body"]) for i in items] == [
        ("in", "namaste"),
        ("out", "echo: namaste"),
    ]
    out_id = items[1]["id"]
    statuses = gw_client.get(f"/console/statuses?ids={out_id}").get_json()["statuses"]
    assert statuses[str(out_id)] in ("queued", "sent", "delivered")
    later = gw_client.get(
        "/console/messages?mobile=%2B919000000101&channel=whatsapp"
        f"&after_out={out_id}&after_in={items[0]['id']}"
    ).get_json()["items"]
    assert later == []


def test_console_foreign_number_shows_the_refusal(gw_client):
    data = gw_client.post(
        "/console/send", json={"mobile": "+1 415 555 0100", "channel": "sms", "body": "hi"}
    ).get_json()
    assert data["status"] == 200
    assert data["immediate"] == [texts.bilingual("not_indian_mobile")]


def test_console_rejects_garbage_numbers(gw_client):
    assert gw_client.post("/console/send", json={"mobile": "<b>", "body": "hi"}).status_code == 400


def test_console_is_off_with_real_credentials(gw_settings, engine):
    real = gw_settings.with_overrides(
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token="f" * 32,
        public_base_url="https://bijli.example.in",
        secret_key="k" * 40,
    )
    app = create_app(real)
    assert app.test_client().get("/console").status_code == 404
    assert app.test_client().post("/console/send", json={}).status_code == 404


def test_a_real_token_alone_does_not_turn_the_console_on(gw_settings, engine):
    """It used to: the development SID made the settings look like development."""
    half = gw_settings.with_overrides(twilio_auth_token="f" * 32)
    assert not half.twilio_is_dev
    with pytest.raises(TwilioAccountSidMissing):
        create_app(half)


def _chromium_missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture()
def browser_page():
    reason = _chromium_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        yield page
        browser.close()


@pytest.mark.browser
def test_chat_in_a_real_browser(browser_page, live_app, engine, work, fake, stub_rasa, tmp_path):
    page = browser_page
    page.goto(f"{live_app}/console")
    assert page.input_value("#mobile") == "+919000000101"

    page.fill("#body", "<b>mera bill</b>")
    page.click("#send")
    page.wait_for_selector("li.msg.in >> text=<b>mera bill</b>")
    wait_for(lambda: _inbound_count(engine) == 1)
    work()
    reply = page.wait_for_selector("li.msg.out >> text=echo: <b>mera bill</b>", timeout=10_000)
    assert reply.inner_html().count("<b>") == 0, "message text must not be rendered as HTML"

    page.fill("#body", "image please")
    page.click("#send")
    wait_for(lambda: _inbound_count(engine) == 2)
    work()
    img = page.wait_for_selector("li.msg.out img", timeout=10_000)
    assert img.get_attribute("src") == "http://127.0.0.1:9/qr/123.png"

    page.check("input[name=channel][value=sms]")
    page.fill("#body", "STOP")
    page.click("#send")
    wait_for(lambda: _inbound_count(engine) == 3)
    work()
    page.wait_for_selector(
        f"li.msg.out >> text={texts.text('opt_out_confirmation', 'en')}", timeout=10_000
    )

    page.fill("#mobile", "+14155550100")
    page.fill("#body", "hello")
    page.click("#send")
    page.wait_for_selector("li.msg.out >> text=Indian mobile numbers", timeout=10_000)
    page.screenshot(path=str(tmp_path / "console.png"), full_page=True)
    if shutil.which("true"):
        assert (tmp_path / "console.png").stat().st_size > 0


@pytest.mark.browser
def test_links_in_replies_open_and_nothing_else_becomes_a_link(
    browser_page, live_app, engine, work, fake, stub_rasa
):
    page = browser_page
    page.goto(f"{live_app}/console")
    page.fill("#body", "see http://127.0.0.1:9/pay/abc and javascript:alert(1)")
    page.click("#send")
    wait_for(lambda: _inbound_count(engine) == 1)
    work()
    link = page.wait_for_selector("li.msg.out a[href='http://127.0.0.1:9/pay/abc']", timeout=10_000)
    assert link.inner_text() == "http://127.0.0.1:9/pay/abc"
    assert page.locator("li.msg.out a").count() == 1  # javascript: stays text
    assert page.locator("li.msg.in a").count() == 0  # what a person typed is never a link


def _inbound_count(engine) -> int:
    with session_scope(engine) as session:
        return len(session.execute(select(InboundMessage.id)).all())


def test_console_sends_a_whatsapp_location_pin_as_twilio_does(gw_client, engine, work, stub_rasa):
    response = gw_client.post(
        "/console/send",
        json={
            "mobile": "09000000101",
            "channel": "whatsapp",
            "body": "",
            "location": "26.4268, 80.3325",
        },
    )
    assert response.status_code == 200 and response.get_json()["status"] == 200
    with session_scope(engine) as session:
        row = session.execute(select(InboundMessage)).scalar_one()
        assert (row.latitude, row.longitude) == (26.4268, 80.3325)
    work()
    assert (stub_rasa.requests[0]["latitude"], stub_rasa.requests[0]["longitude"]) == (
        26.4268,
        80.3325,
    )


def test_console_refuses_a_location_that_is_not_a_pin(gw_client):
    for channel, location in (("whatsapp", "Kidwai Nagar"), ("sms", "26.4268,80.3325")):
        response = gw_client.post(
            "/console/send",
            json={"mobile": "09000000101", "channel": channel, "body": "", "location": location},
        )
        assert response.status_code == 400


def test_console_shows_a_reply_s_buttons_and_taps_one(gw_client, engine, work, fake, stub_rasa):
    reader = "+919700001403"
    gw_client.post(
        "/console/send", json={"mobile": reader, "channel": "whatsapp", "body": "visit question"}
    )
    work()
    query = f"/console/messages?mobile=%2B{reader[1:]}&channel=whatsapp"
    (out,) = [i for i in gw_client.get(query).get_json()["items"] if i["direction"] == "out"]
    assert out["buttons"] == [{"title": "Haan", "id": "1"}, {"title": "Nahi", "id": "2"}]
    tapped = gw_client.post(
        "/console/send",
        json={"mobile": reader, "channel": "whatsapp", "button": {"title": "Nahi", "payload": "2"}},
    )
    assert tapped.get_json()["status"] == 200, "signed like Twilio, so the webhook took it"
    with session_scope(engine) as session:
        rows = session.execute(select(InboundMessage).order_by(InboundMessage.id)).scalars().all()
        assert (rows[-1].body, rows[-1].button_payload) == ("Nahi", "2")
    work()
    assert stub_rasa.messages() == ["visit question", "2"]


def test_console_taps_buttons_only_on_whatsapp(gw_client):
    answer = gw_client.post(
        "/console/send",
        json={
            "mobile": "+919700001403",
            "channel": "sms",
            "button": {"title": "Haan", "payload": "1"},
        },
    )
    assert answer.status_code == 400


@pytest.mark.browser
def test_tapping_a_button_in_a_real_browser(browser_page, live_app, engine, work, fake, stub_rasa):
    page = browser_page
    page.goto(f"{live_app}/console")
    page.fill("#mobile", "+919700001404")
    page.dispatch_event("#mobile", "change")
    page.fill("#body", "visit question")
    page.click("#send")
    wait_for(lambda: _inbound_count(engine) == 1)
    work()
    button = page.wait_for_selector("li.msg.out button.quick-reply >> text=Haan", timeout=10_000)
    assert button.get_attribute("data-payload") == "1"
    button.click()
    page.wait_for_selector("li.msg.in >> text=Haan")
    wait_for(lambda: _inbound_count(engine) == 2)
    work()
    assert stub_rasa.messages() == ["visit question", "1"]
    page.wait_for_selector("li.msg.out >> text=Bata diya? (after 1)", timeout=10_000)
