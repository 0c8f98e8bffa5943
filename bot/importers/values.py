"""Parsing one cell of a discom's CSV: each parser returns the stored value or raises BadValue.

The rules themselves (what a mobile, an account number, a rupee amount is) live in the shared
core; these parsers add the operator's wording of what is wrong.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable

from bot.accounts import is_new_account_number, is_old_account_number
from bot.clock import IST
from bot.phone import EXCEL_NUMBER, NotAnIndianMobile, parse_indian_mobile
from bot.store import CATEGORIES, DISCOMS, LANGUAGES, METER_TYPES, STAFF_ROLES


class BadValue(ValueError):
    """One value in a row is invalid; the message says why, in an operator's words."""


def _shown(raw: str) -> str:
    """A value quoted for a message, shortened so one bad row cannot flood the report."""
    text = raw.strip()
    return f"'{text[:40]}…'" if len(text) > 40 else f"'{text}'"


def normalise_mobile(raw: str) -> str:
    """An Indian mobile in E.164 (``+919876543210``), or :class:`BadValue` (rule: bot.phone)."""
    try:
        return parse_indian_mobile(raw)
    except NotAnIndianMobile as exc:
        raise BadValue(f"{_shown(raw)} {exc}") from None


_PLAIN_RUPEES = re.compile(r"(\d{1,13})\.(\d\d)")
_RUPEES = re.compile(r"(-)?(\d{1,13})(?:\.(\d*))?")
_GROUPED = re.compile(r"-?\d{1,3}(?:(?:,\d\d)*,\d{3}|(?:,\d{3})+)(?:\.\d*)?")
_CURRENCY = re.compile(r"^\s*(?:₹|rs\.?|inr)\s*", re.IGNORECASE)


def parse_rupees(raw: str, *, allow_negative: bool = False) -> int:
    """Rupees with at most 2 decimals (``1234.50``, ``1,234.50``, ``₹ 1234``) to integer paise."""
    plain = _PLAIN_RUPEES.fullmatch(raw)
    if plain:  # the usual form, worth skipping the checks below for lakhs of rows
        return int(plain.group(1)) * 100 + int(plain.group(2))
    text = _CURRENCY.sub("", raw).strip()
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    match = _RUPEES.fullmatch(text)
    if not match:
        raise BadValue(f"{_shown(raw)} is not an amount in rupees like 1234.50")
    minus, whole, decimals = match.groups()
    decimals = decimals or ""
    if len(decimals) > 2:
        raise BadValue(f"{_shown(raw)} has more than 2 decimal places")
    if minus and not allow_negative:
        raise BadValue(f"{_shown(raw)} is negative; it must be 0 or more")
    paise = int(whole) * 100 + int(decimals.ljust(2, "0"))
    return -paise if minus else paise


def parse_as_of(raw: str) -> dt.datetime:
    """An ISO date-time to naive UTC; without an offset it is taken to be IST (+05:30)."""
    text = raw.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadValue(f"{_shown(raw)} is not a date-time like 2024-05-01T10:30:00+05:30") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=IST)
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def parse_date(raw: str) -> dt.date:
    """A date written YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise BadValue(f"{_shown(raw)} is not a date in YYYY-MM-DD form, e.g. 2024-05-15") from None


_MONTH = re.compile(r"(\d{4})-(\d{2})")


def parse_month(raw: str) -> str:
    """A bill month written YYYY-MM."""
    text = raw.strip()
    match = _MONTH.fullmatch(text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise BadValue(f"{_shown(raw)} is not a month in YYYY-MM form, e.g. 2024-05")
    return text


def parse_account(raw: str, *, old: bool = False) -> str:
    """A 10-digit new account number, or (``old=True``) a 6–8 digit old one."""
    text = raw.strip()
    if text.isascii() and text.isdigit():
        if is_old_account_number(text) if old else is_new_account_number(text):
            return text
        rule = "an old account number has 6 to 8" if old else "a new account number has exactly 10"
        raise BadValue(f"{_shown(raw)} has {len(text)} digits; {rule} digits")
    if EXCEL_NUMBER.fullmatch(text):
        raise BadValue(
            f"{_shown(raw)} was turned into a number by Excel; format the column as Text"
        )
    if not text:
        raise BadValue("is empty")
    raise BadValue(f"{_shown(raw)} is not an account number: use digits only")


def _choice(canonical: Iterable[str], aliases: dict[str, str], what: str) -> Callable[[str], str]:
    """A parser accepting one of ``canonical`` in any case, with spaces or hyphens, or an alias."""
    table = {value: value for value in canonical}
    table.update(aliases)
    listed = ", ".join(canonical)

    def parse(raw: str) -> str:
        found = table.get(raw)
        if found is not None:
            return found
        found = table.get(WORD_GAPS.sub("_", raw.strip().lower()))
        if found is None:
            if not raw.strip():
                raise BadValue(f"is empty; use one of {listed}")
            raise BadValue(f"{_shown(raw)} is not a {what}; use one of {listed}")
        return found

    return parse


WORD_GAPS = re.compile(r"[\s\-_]+")

parse_discom = _choice(DISCOMS, {d.lower(): d for d in DISCOMS}, "discom")
parse_category = _choice(
    CATEGORIES,
    {
        "public_institutions": "public_institution",
        "institution": "public_institution",
        "industry": "industrial",
        "industries": "industrial",
        "small_and_medium_industry": "industrial",
        "non_domestic": "commercial",
    },
    "category",
)
parse_meter_type = _choice(
    METER_TYPES,
    {
        "post_paid": "postpaid",
        "smart_post_paid": "smart_postpaid",
        "smart_pre_paid": "smart_prepaid",
    },
    "meter type",
)
parse_language = _choice(
    LANGUAGES, {"hindi": "hi", "english": "en", "हिंदी": "hi", "हिन्दी": "hi"}, "language"
)
parse_role = _choice(
    STAFF_ROLES,
    {
        "reader": "meter_reader",
        **{title: "officer" for title in ("je", "ae", "sdo", "xen", "exen")},
    },
    "staff role",
)
_YES_NO = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False,
           "false": False, "0": False, "": False}  # fmt: skip


def parse_yes_no(raw: str) -> bool:
    """``yes``/``no`` (also y/n, true/false, 1/0); empty means no, as consent is never assumed."""
    found = _YES_NO.get(raw.strip().lower())
    if found is None:
        raise BadValue(f"{_shown(raw)} is not yes or no")
    return found


def parse_text(raw: str, limit: int, *, required: bool) -> str:
    """Free text, trimmed; raise if empty when required or longer than the column holds."""
    text = " ".join(raw.split())
    if required and not text:
        raise BadValue("is empty")
    if len(text) > limit:
        raise BadValue(f"is {len(text)} characters long; at most {limit} fit")
    return text
