"""The questions the bot answers about an account, which intent asks each, and the help menu."""

from __future__ import annotations

import re

from bot.accounts import ascii_digits

NEW_NUMBER = "new_number"
BILL = "bill"
PAY = "pay"
RECEIPT = "receipt"
PAYMENT_MISSING = "payment_missing"
POWER_CUT = "power_cut"
WRONG_BILL = "wrong_bill"
DISCONNECTION = "disconnection"
BALANCE = "balance"
HANDOFF = "handoff"

#: Topics answered about one account (the account form asks for it when unknown).
ACCOUNT_TOPICS = (
    NEW_NUMBER,
    BILL,
    PAY,
    RECEIPT,
    PAYMENT_MISSING,
    POWER_CUT,
    WRONG_BILL,
    DISCONNECTION,
    BALANCE,
)

TOPIC_BY_INTENT = {
    "ask_new_account_number": NEW_NUMBER,
    "ask_bill_amount": BILL,
    "pay_bill": PAY,
    "ask_receipt": RECEIPT,
    "payment_not_reflected": PAYMENT_MISSING,
    "report_power_cut": POWER_CUT,
    "complain_wrong_bill": WRONG_BILL,
    "ask_disconnection": DISCONNECTION,
    "ask_prepaid_balance": BALANCE,
    "human_handoff": HANDOFF,
    # A number sent with these is an account number; a consumer who writes "verify 1234567"
    # is answered as if they had asked its new number (bot/actions/staff.py).
    "staff_verify_account": NEW_NUMBER,
    "staff_record_visit": NEW_NUMBER,
}

#: The help menu's numbered entries, in order; the domain's utter_help lists the same.
MENU = (NEW_NUMBER, BILL, PAY, RECEIPT, POWER_CUT, WRONG_BILL, DISCONNECTION, BALANCE, HANDOFF)
_MENU_REPLY = re.compile(r"^\s*(?:option|no\.?|number|नंबर|विकल्प)?\s*([1-9])\s*[.)।]?\s*$", re.I)


def menu_choice(text: str | None) -> str | None:
    """The menu entry a reply such as "2", "२" or "2." picks, or None."""
    if not text:
        return None
    match = _MENU_REPLY.match(ascii_digits(text))
    if not match:
        return None
    return MENU[int(match.group(1)) - 1]


__all__ = ["ACCOUNT_TOPICS", "MENU", "TOPIC_BY_INTENT", "menu_choice"]
