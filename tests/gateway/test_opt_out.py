"""STOP / START / HELP: opt-out per number and channel, one confirmation, texts in messages.yml."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot import twilio_client
from bot.gateway import texts
from bot.store import AuditLog, OptOut, is_opted_out, opted_out_numbers, session_scope
from tests.gateway_stack import inbound_form

NUMBER = "+919876500001"


def bodies(fake, to):
    return [m["body"] for m in fake.sent(to)]


@pytest.mark.parametrize(
    ("keyword", "language"),
    [("STOP", "en"), ("stop", "en"), ("Unsubscribe", "en"), ("band karo", "hi"), ("बंद करो", "hi")],
)
def test_opt_out_keywords_opt_out_with_one_confirmation(
    keyword, language, post_signed, engine, work, fake, stub_rasa
):
    post_signed("/twilio/messages", inbound_form(keyword, sender=NUMBER, channel="sms"))
    work()
    with session_scope(engine) as session:
        assert is_opted_out(session, NUMBER, "sms")
        assert not is_opted_out(session, NUMBER, "whatsapp")
    assert bodies(fake, NUMBER) == [texts.text("opt_out_confirmation", language)]
    assert stub_rasa.requests == []


def test_second_stop_sends_no_second_confirmation(post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("STOP", sender=NUMBER, channel="sms"))
    post_signed("/twilio/messages", inbound_form("STOP", sender=NUMBER, channel="sms"))
    work()
    assert bodies(fake, NUMBER) == [texts.text("opt_out_confirmation", "en")]


def test_start_opts_back_in(post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("STOP", sender=NUMBER))
    post_signed("/twilio/messages", inbound_form("START", sender=NUMBER))
    work()
    with session_scope(engine) as session:
        assert not is_opted_out(session, NUMBER, "whatsapp")
        actions = [
            a.action for a in session.execute(select(AuditLog).order_by(AuditLog.id)).scalars()
        ]
    assert actions == ["opt_out", "opt_in"]
    assert bodies(fake, f"whatsapp:{NUMBER}") == [
        texts.text("opt_out_confirmation", "en"),
        texts.text("opt_in_confirmation", "en"),
    ]


def test_start_when_not_opted_out_says_so(post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("start", sender=NUMBER))
    work()
    assert bodies(fake, NUMBER) == [texts.text("opt_in_already", "en")]


def test_help_gets_one_message_the_bots_menu_with_how_to_stop(
    post_signed, engine, work, fake, stub_rasa
):
    post_signed("/twilio/messages", inbound_form("HELP", sender=NUMBER))
    work()
    assert bodies(fake, NUMBER) == ["echo: HELP\n\n" + texts.text("help_footer", "en")]
    assert stub_rasa.messages() == ["HELP"]


def test_help_in_a_registered_hindi_speakers_language(post_signed, engine, work, fake, stub_rasa):
    from bot.store import Consumer

    with session_scope(engine) as session:
        session.add(
            Consumer(
                discom="KESCO",
                new_account_no="2000000001",
                name="Sita",
                mobile=NUMBER,
                category="domestic",
                meter_type="postpaid",
                language="hi",
            )
        )
    post_signed("/twilio/messages", inbound_form("help", sender=NUMBER, channel="sms"))
    work()
    assert bodies(fake, NUMBER) == ["echo: help\n\n" + texts.text("help_footer", "hi")]


def test_help_without_a_menu_text_falls_back_to_the_gateways_help():
    from bot.gateway.inbound import Reply, _with_help_footer

    assert _with_help_footer([], "en") == [Reply(texts.text("help", "en"))]
    assert _with_help_footer([Reply("a"), Reply("b", "http://x/qr.png")], "en") == [
        Reply("a\n\nb\n\n" + texts.text("help_footer", "en"), "http://x/qr.png")
    ]


def test_stop_inside_a_sentence_is_not_an_opt_out(post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("please stop the power cut", sender=NUMBER))
    work()
    with session_scope(engine) as session:
        assert session.execute(select(OptOut)).first() is None
    assert stub_rasa.messages() == ["please stop the power cut"]


def test_pushed_messages_skip_opted_out_numbers(gw_settings, engine, fake):
    with session_scope(engine) as session:
        session.add(OptOut(mobile=NUMBER, channel="sms"))
    outcome = twilio_client.send(
        gw_settings,
        channel="sms",
        to=NUMBER,
        body="Your bill is due",
        idempotency_key="camp:1:1",
        respect_opt_out=True,
        engine=engine,
    )
    assert outcome.result == "opted_out"
    assert fake.sent() == []
    with session_scope(engine) as session:
        assert opted_out_numbers(session, "sms") == {NUMBER}
        assert opted_out_numbers(session, "whatsapp") == set()


def test_twilio_21610_marks_the_number_opted_out(gw_settings, engine, fake):
    fake.configure(reject={NUMBER: 21610})
    outcome = twilio_client.send(
        gw_settings,
        channel="sms",
        to=NUMBER,
        body="hello",
        idempotency_key="t:21610",
        engine=engine,
    )
    assert (outcome.result, outcome.error_code) == ("rejected", 21610)
    with session_scope(engine) as session:
        assert is_opted_out(session, NUMBER, "sms")


def test_keyword_matching_ignores_case_punctuation_and_spaces():
    assert texts.keyword("  Stop! ") == ("opt_out", "en")
    assert texts.keyword("BAND   KARO.") == ("opt_out", "hi")
    assert texts.keyword("बंद करो।") == ("opt_out", "hi")
    assert texts.keyword("stop bill") is None
    assert texts.keyword("🙏") is None


def test_every_keyword_in_the_file_is_found_as_the_first_entry_that_matches_it():
    from bot import catalogue

    entries = [
        (str(word), (str(kind), str(language)))
        for kind, words in catalogue.load(texts.MESSAGES_FILE)["keywords"].items()
        for word, language in words.items()
    ]
    assert len(entries) >= 10
    for word, _ in entries:
        first = next(
            found
            for other, found in entries
            if texts.normalise_keyword(other) == texts.normalise_keyword(word)
        )
        assert texts.keyword(f" {word.upper()}! ") == first
