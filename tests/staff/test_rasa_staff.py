"""Staff and consumers through the real Rasa server and action server (the trained model).

The same words get staff answers only from an active staff number: a table of consumer messages
that mimic staff wording gets consumer answers, and a number deactivated mid-conversation gets
consumer answers from its next message. Staff phrasing works in Hindi, Hinglish and English.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from bot import store, verification
from bot.settings import Settings
from tests.test_rasa_data import _bot_responses, _live_bot

READER = "+919700000601"
OFFICER = "+919700000602"
#: Consumer messages written the way staff write: none may get a staff answer.
MIMICS = [
    "verify 456789",
    "verify account 2345678901",
    "उपभोक्ता 456789 जांचें",
    "456789 ka naya number batao",
    "upbhokta 5678901 ki jaanch karo",
    "record visit 456789",
    "visit darj karo",
    "विज़िट दर्ज करें",
    "aaj kitne hue",
    "today's progress",
    "area report",
    "क्षेत्र की रिपोर्ट",
    "staff menu",
    "I am the meter reader, verify 456789",
]


def _bot_texts(events: list[dict]) -> list[str]:
    return [str(e.get("text") or "") for e in events if e.get("event") == "bot"]


def _staff_answers(events: list[dict]) -> list[str]:
    names = [r or "" for r in _bot_responses(events)]
    return [n for n in names if n.startswith(("utter_staff", "utter_ask_visit"))]


@pytest.mark.rasa
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_staff_in_three_registers_and_consumers_never_get_staff_answers(
    tmp_path: Path, settings: Settings, engine: Engine, redis_conn: object
) -> None:
    with _live_bot(tmp_path, settings, engine) as bot:
        with store.session_scope(engine) as session:
            session.add(
                store.Staff(mobile=READER, name="Suresh", role="meter_reader", area="Kidwai Nagar")
            )
            session.add(
                store.Staff(mobile=OFFICER, name="Verma", role="officer", area="Kidwai Nagar")
            )

        # --- roles stay separate: a stranger and the account's own consumer
        for mobile in ("+919700000611", "+919876543210"):
            sender = f"whatsapp:{mobile}"
            for text in MIMICS:
                before = len(bot.events(sender))
                bot.say(sender, text)
                new = bot.events(sender)[before:]
                assert _staff_answers(new) == [], (mobile, text, _bot_responses(new))
                assert not any("Ramesh Kumar" in t for t in _bot_texts(new)), (mobile, text)

        # --- a consumer's help is the consumer menu, an active reader's the staff menu
        bot.say("whatsapp:+919700000611", "help")
        assert "1 New account number" in _bot_texts(bot.events("whatsapp:+919700000611"))[-1]
        reader = f"whatsapp:{READER}"
        for text, words in (
            ("namaste", "staff seva"),
            ("help", "Staff menu"),
            ("मदद", "स्टाफ मेनू"),
        ):
            bot.say(reader, text, role="staff")
            last = _bot_texts(bot.events(reader))[-1]
            assert words in last and "Bill bharna" not in last, (text, last)

        # --- a meter reader verifies in three registers
        for text, account in (
            ("verify 456789", "1234567890"),
            ("5678901 ka naya number batao", "2345678901"),
            ("उपभोक्ता 456789 जांचें", "1234567890"),
        ):
            before = len(bot.events(reader))
            bot.say(reader, text, role="staff")
            new = bot.events(reader)[before:]
            assert _staff_answers(new)[0] == "utter_staff_account_details", (text, new)
            assert any(account in t for t in _bot_texts(new)), text
        assert any("+91******3210" in t for t in _bot_texts(bot.events(reader)))

        # --- then records a visit: informed, the mobile is wrong, here is the right one
        steps = [
            ("visit darj karo", "utter_ask_visit_informed"),
            ("1", "utter_ask_visit_mobile_ok"),
            ("2", "utter_ask_visit_new_mobile"),
            ("12345", "utter_ask_visit_new_mobile"),  # refused, asked again
            ("98765 11111", "utter_staff_visit_mobile_change"),
            ("aaj kitne hue", "utter_staff_progress"),
        ]
        for text, last in steps:
            bot.say(reader, text, role="staff")
            assert _bot_responses(bot.events(reader))[-1] == last, (
                text,
                _bot_responses(bot.events(reader))[-4:],
            )
        assert "utter_staff_invalid_mobile" in _bot_responses(bot.events(reader))

        officer = f"whatsapp:{OFFICER}"
        bot.say(officer, "area report", role="staff")
        assert _bot_responses(bot.events(officer))[-1] == "utter_staff_area_report"

        with store.session_scope(engine) as session:
            log = store.AuditLog
            lookups = (
                session.execute(
                    select(log).where(log.action == verification.LOOKUP).order_by(log.id)
                )
                .scalars()
                .all()
            )
            assert [r.subject for r in lookups] == ["456789", "5678901", "456789"]
            (visit,) = (
                session.execute(select(log).where(log.action == verification.VISIT)).scalars().all()
            )
            detail = json.loads(visit.detail)
            assert visit.subject == "1234567890" and detail["informed"] is True
            (change,) = verification.pending_changes(session)
            assert change.new_mobile == "+919876511111"

            # --- deactivated: a consumer from the next message on
            session.execute(
                update(store.Staff).where(store.Staff.mobile == READER).values(active=False)
            )
        # A stale "staff" claim changes nothing: the actions read the staff table again.
        before = len(bot.events(reader))
        bot.say(reader, "verify 456789", role="staff")
        new = bot.events(reader)[before:]
        assert _staff_answers(new) == [], _bot_responses(new)
        # And the gateway, reading the table, now says consumer: the consumer menu.
        bot.say(reader, "help")
        assert "1 New account number" in _bot_texts(bot.events(reader))[-1]
