"""The domain's responses: every one the actions send exists, in three registers, SMS-short."""

from __future__ import annotations

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
    "accounts": "456789 → 1234567890 (R*** K***)",
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
}
#: Placeholders holding a URL: sent as they are, so only the words around them are measured.
LINKS = ("link",)
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def responses() -> dict[str, list[dict]]:
    return domain()["responses"]


def pick(name: str, language: str, channel: str) -> list[dict]:
    from rasa.core.nlg.generator import ResponseVariationFilter

    slots = {"language": language, "channel": channel}
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
    for language in REGISTERS:
        for channel in CHANNELS:
            chosen = pick(name, language, channel)
            # Rasa picks at random among matching variations: exactly one must match.
            assert len(chosen) == 1, (name, language, channel)
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
    for language in REGISTERS:
        text = pick(name, language, "sms")[0]["text"].format(
            **{**SAMPLE, **dict.fromkeys(LINKS, "")}
        )
        assert segments(text) <= limit, (language, len(text), text)
