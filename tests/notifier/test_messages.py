"""Templates are data: every template, filled, is exactly the registered text; segments; masking."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from bot.clock import IST
from notifier import messages, segments
from notifier.messages import Template

ALL = sorted(messages.all_templates().values(), key=lambda t: t.key)


def _values(tpl: Template) -> dict[str, str]:
    """Realistic values at their longest: a long masked name, lakh rupees, a long pay link."""
    return messages.campaign_values(
        name=(
            "रामस्वरूप प्रसाद चतुर्वेदी सिंह यादव कुमार"
            if tpl.language == "hi"
            else "Ramswaroop Prasad Chaturvedi Singh Yadav Kumar"
        ),
        new_account_no="2309876543",
        old_account_no="12345678",
        discom="KESCO",
        valid_until=dt.date(2027, 5, 31),
        amount_paise=1_23_456_78,
        cut_from=dt.datetime(2026, 12, 7, 11, 0, tzinfo=IST),
        pay_url="https://bijli.example.in/pay/" + "A" * 110,
    )


def test_every_kind_channel_and_language_has_a_template():
    keys = {t.key for t in ALL}
    assert keys == {
        (k, c, lang)
        for k in messages.KINDS
        for c in messages.CHANNELS
        for lang in messages.LANGUAGES
    }


@pytest.mark.parametrize("tpl", [t for t in ALL if t.channel == "sms"], ids=lambda t: t.path)
def test_sms_text_is_the_registered_dlt_template_with_its_variables_filled(tpl: Template):
    values = _values(tpl)
    text = tpl.render(values)
    match = messages.registered_pattern(tpl).fullmatch(text)
    assert match, f"{tpl.path} renders text DLT would block: {text!r}"
    # Each placeholder holds exactly its variable, in the registered order.
    assert list(match.groups()) == [values[name] for name in tpl.variables]
    # The constant parts are byte for byte the registered ones.
    constant = messages.DLT_PLACEHOLDER.split(tpl.text)[::2]
    rebuilt = "".join(
        part + (match.group(i + 1) if i < len(match.groups()) else "")
        for i, part in enumerate(constant)
    )
    assert rebuilt == text
    assert tpl.dlt_entity_id and re.fullmatch(r"\d{19}", tpl.dlt_entity_id)
    assert tpl.dlt_template_id and re.fullmatch(r"\d{19}", tpl.dlt_template_id)
    assert tpl.header and re.fullmatch(r"[A-Z]{6}", tpl.header)
    for name in tpl.variables:
        if name != "pay_url":
            assert len(values[name]) <= messages.DLT_VAR_MAX


@pytest.mark.parametrize("tpl", [t for t in ALL if t.channel == "whatsapp"], ids=lambda t: t.path)
def test_whatsapp_free_text_is_the_content_template_with_its_variables(tpl: Template):
    values = _values(tpl)
    body = tpl.render(values)
    variables = json.loads(tpl.content_variables(values) or "{}")
    assert variables == {str(i + 1): values[n] for i, n in enumerate(tpl.variables)}
    assert body == re.sub(r"\{\{(\d+)\}\}", lambda m: variables[m.group(1)], tpl.text)
    assert tpl.content_sid and re.fullmatch(r"HX[0-9a-f]{32}", tpl.content_sid)


def test_a_value_longer_than_dlt_allows_is_refused_not_cut():
    tpl = messages.template("new-account-number", "sms", "en")
    values = _values(tpl) | {"discom": "X" * 31}
    with pytest.raises(messages.ValueDoesNotFit):
        tpl.render(values)
    url_tpl = messages.template("disconnection-warning", "sms", "en")
    with pytest.raises(messages.ValueDoesNotFit):
        url_tpl.render(_values(url_tpl) | {"pay_url": "not a url"})


def test_a_template_file_whose_placeholders_disagree_with_its_variables_is_refused(tmp_path):
    src = Path(messages.TEMPLATE_DIR / "new-account-number.sms.en.yml").read_text()
    (tmp_path / "new-account-number.sms.en.yml").write_text(
        src.replace("variables: [name, ", "variables: [")
    )
    with pytest.raises(messages.TemplateError, match="placeholders"):
        messages._load(tmp_path / "new-account-number.sms.en.yml")


def test_names_are_masked_to_initials_within_dlt_limits():
    assert messages.mask_name("Ramesh Kumar") == "R*** K***"
    assert messages.mask_name("कुमार") == "कु***"
    assert len(messages.mask_name("A B C D E F G H I J K")) <= 30


@pytest.mark.parametrize(
    ("text", "encoding", "count"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("{" * 80, "GSM-7", 1),  # extension characters count twice
        ("{" * 81, "GSM-7", 2),
        ("क" * 70, "UCS-2", 1),
        ("क" * 71, "UCS-2", 2),
        ("क" * 134, "UCS-2", 2),
        ("क" * 135, "UCS-2", 3),
        ("Rs 100 ₹", "UCS-2", 1),  # one rupee sign makes the whole text UCS-2
    ],
)
def test_sms_segments_gsm7_and_ucs2(text: str, encoding: str, count: int):
    found = segments.segments(text)
    assert (found.encoding, found.count) == (encoding, count)


def test_english_sms_templates_stay_in_gsm7_and_hindi_ones_are_ucs2():
    # (An English message to a consumer with a Devanagari name goes as UCS-2, as it must.)
    for tpl in (t for t in ALL if t.channel == "sms"):
        found = segments.segments(tpl.render(_values(tpl)))
        assert found.encoding == ("UCS-2" if tpl.language == "hi" else "GSM-7"), tpl.path
