"""The domain's responses: every one the actions send exists, in three registers, SMS-short."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from bot.actions.language import EN, HI, HINGLISH, detect_register
from bot.settings import ROOT
from tests.actions.helpers import domain

REGISTERS = (HI, HINGLISH, EN)
CHANNELS = ("sms", "whatsapp")
# Values as the actions format them, at their usual lengths.
SAMPLE = {
    "new_account_no": "1234567890",
    "old_account_no": "45678901",
    "account_number": "45678901",
    "masked_name": "R*** K***",
    "name": "Ramesh Kumar",
    "area": "Kidwai Nagar",
    "category": "domestic",
    "meter_type": "smart_prepaid",
    "accounts": "1. 456789 → 1234567890 (R*** K***, Kidwai Nagar)",
    # The user's own words, quoted: any register (a neutral sample, so the template's words show).
    "question": "bill?",
    "amount_due": "₹1,234.50",
    "arrears": "₹500.00",
    "bill_month": "10/2026",
    "due_date": "20-11-2026",
    "as_of": "05-11-2026",
    "balance": "-₹1,234.00",
    "amount": "₹15,234.00",
    "cut_hours": "11:00–16:00",
    "next_cut": "09-11-2026 11:00",
    "until": "12-11-2026 12:00",
    "reference": "BS26110500012",
    "reports": 3,
    "receipt_no": "R-000123",
    "paid_on": "03-11-2026 11:35",
    "details": "₹1,500.00, 20-11-2026, UTR 633412987654",
    "limit": "5",
    "discom": "KESCO",
    "reply_by": "25-11-2026 10:20",
    "payee": "Kanpur Electricity Supply Company Ltd",
    "vpa": "kesco.bill@sbi",
    "account": "1234567890",
    "period": "10/2026",
    "expires": "07-11-2026 14:30",
    "link": "https://bijli.kesco.co.in/pay/WyJCU1BBQkNERUZHSEpLTE1OIiwxNTQzNTAsIjEyMzQ1Njc4OTAiXQ.aT1mXw.p5Yz2kQ1vR8nW3xT7uL0aB9cD4eF6gH",
    "min": "₹1.00",
    "max": "₹1,00,000.00",
    "domain": "uppcl-bill.online",
    "utr": "612345678901",
    "expected": "07-11-2026",
    "month": "10/2026",
    # staff (bot/actions/staff.py)
    "mobile_masked": "+91******3210",
    "visit_account": "1234567890",
    "visit_mobile_masked": "+91******3210",
    "visit_id": "1234",
    "change_id": "56",
    "new_mobile_masked": "+91******1111",
    "visits_today": "12",
    "informed_today": "10",
    "area_informed": "1234",
    "area_total": "5678",
    "area_percent": "21",
    "informed": "1234",
    "total": "5678",
    "percent": "21",
    "confirmed": "987",
    "pending": "12",
    "readers_today": "4",
}
#: Placeholders holding a URL: sent as they are, so only the words around them are measured.
LINKS = ("link",)
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def responses() -> dict[str, list[dict]]:
    return domain()["responses"]


#: The gateway vouches every message's role (staff for an active staff.csv number): greetings
#: and the menu differ by it.
ROLES = ("consumer", "staff")


def pick(name: str, language: str, channel: str, role: str = "consumer") -> list[dict]:
    from rasa.core.nlg.generator import ResponseVariationFilter

    slots = {"language": language, "channel": channel, "role": role}
    return ResponseVariationFilter(responses()).responses_for_utter_action(name, "rest", slots)


def used_in_actions() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "bot" / "actions").glob("*.py"):
        names |= set(re.findall(r"[\"'](utter_[a-z_]+)[\"']", Path(path).read_text()))
    return names


def test_every_response_the_actions_send_is_in_the_domain() -> None:
    missing = used_in_actions() - set(responses())
    assert not missing


@pytest.mark.parametrize("name", sorted(domain()["responses"]))
def test_one_variation_per_register_and_channel_in_its_register(name: str) -> None:
    for language, channel, role in itertools.product(REGISTERS, CHANNELS, ROLES):
        chosen = pick(name, language, channel, role)
        # Rasa picks at random among matching variations: exactly one must match.
        assert len(chosen) == 1, (name, language, channel, role)
        text = chosen[0]["text"].format(**{**SAMPLE, **dict.fromkeys(LINKS, "")})
        # The bot's name is Hinglish in every register.
        unbranded = text.replace("Bijli Sahayak", "")
        assert detect_register(unbranded, None) == language, (name, language, channel, text)


def segments(text: str) -> int:
    """SMS segments a text takes: 160 GSM-7 characters each, or 70 UCS-2 ones."""
    single, multi = (160, 153) if set(text) <= GSM7 else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // multi)


def _has_sms_variation(name: str) -> bool:
    return any(
        any(c.get("name") == "channel" and c.get("value") == "sms" for c in v.get("condition", []))
        for v in responses()[name]
    )


@pytest.mark.parametrize("name", sorted(domain()["responses"]))
def test_sms_replies_are_short(name: str) -> None:
    # A response with an SMS variation fits one segment; one without fits two, or needs one.
    limit = 1 if _has_sms_variation(name) else 2
    for language, role in itertools.product(REGISTERS, ROLES):
        text = pick(name, language, "sms", role)[0]["text"].format(
            **{**SAMPLE, **dict.fromkeys(LINKS, "")}
        )
        assert segments(text) <= limit, (language, role, len(text), text)


@pytest.mark.parametrize(
    "name",
    sorted(n for n, vs in domain()["responses"].items() if any(v.get("buttons") for v in vs)),
)
def test_buttons_fit_whatsapp_quick_replies(name: str) -> None:
    """Options go as WhatsApp buttons (bot/gateway/quick_replies.py) only when they fit: at
    most 3, titles of at most 20 characters, distinct payloads, the same payloads in every
    register (so a typed digit and a tap read the same whatever the language)."""
    from bot.gateway.quick_replies import Button, fits

    payloads = set()
    for language, role in itertools.product(REGISTERS, ROLES):
        chosen = pick(name, language, "whatsapp", role)[0]
        buttons = [Button(str(b["title"]), str(b["payload"])) for b in chosen["buttons"]]
        text = chosen["text"].format(**{**SAMPLE, **dict.fromkeys(LINKS, "")})
        assert fits(text, buttons), (name, language, [b.title for b in buttons])
        payloads.add(tuple(b.payload for b in buttons))
    assert len(payloads) == 1, payloads
