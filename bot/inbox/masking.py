"""What an operator's role may see of a consumer: agents see details masked, officers in full.

Agents answer many strangers a day from a shared office: they see a mobile as ``+91******3210``,
account numbers, UTRs and phone numbers inside messages with only their last four digits, and
names by their initials. Officers and admins, who act on complaints, see everything.
"""

from __future__ import annotations

import re

from bot.names import mask_name
from bot.phone import mask as mask_mobile

#: Roles that see consumers' details unmasked.
FULL_DETAIL_ROLES = frozenset({"officer", "admin"})
#: A run of six or more digits (Devanagari too), single spaces allowed between them ("98765 43210").
_LONG_NUMBER = re.compile(r"(?<!\d)\d(?: ?\d){5,}(?!\d)")


def sees_full_details(role: str | None) -> bool:
    """True when ``role`` may see mobiles, account numbers and names unmasked."""
    return role in FULL_DETAIL_ROLES


def mask_digits(text: str) -> str:
    """``text`` with every long number shown by its last four digits: ``******7890``."""

    def hide(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return "*" * (len(digits) - 4) + digits[-4:]

    return _LONG_NUMBER.sub(hide, text)


class Masker:
    """Masks for one operator's role (a no-op for officers and admins)."""

    def __init__(self, role: str | None) -> None:
        self.full = sees_full_details(role)

    def mobile(self, value: str | None) -> str:
        return (value or "-") if self.full else mask_mobile(value)

    def text(self, value: str | None) -> str:
        return (value or "") if self.full else mask_digits(value or "")

    def name(self, value: str | None) -> str:
        return (value or "") if self.full else mask_name(value or "")

    def account(self, value: str | None) -> str:
        return (value or "-") if self.full else mask_digits(value or "-")


__all__ = ["FULL_DETAIL_ROLES", "Masker", "mask_digits", "mask_name", "sees_full_details"]
