"""Paying by a QR link, checking a payment link, receipts, and payments that do not show.

Links are made and checked through the core (:mod:`bot.paylinks`, :mod:`bot.linkcheck`); the
payments package (pages, webhooks, receipts) never runs in the action server.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import connections, linkcheck, paylinks, store
from bot.accounts import ascii_digits
from bot.actions.formatting import format_bill_month, format_date, format_moment
from bot.actions.resolve import resolve, settle_unresolved
from bot.actions.tickets import PAYMENT_NOT_REFLECTED, RECEIPT_MISSING, ticket_for
from bot.actions.topics import PAY, PAYMENT_MISSING, RECEIPT
from bot.actions.turn import TopicAction, Turn
from bot.clock import to_ist, utcnow
from bot.logfmt import kv
from bot.money import format_rupees
from bot.settings import PaymentsNotConfigured

log = logging.getLogger(__name__)

PAID = "paid"
PENDING = "pending"
SMART_PREPAID = "smart_prepaid"
#: Working days a payment seen by the bank takes to be matched by hand and credited.
RECONCILE_DAYS = 2

_UTR = re.compile(r"(?<!\d)(\d{12})(?!\d)")
_DATE = re.compile(r"(?<!\d)(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})(?!\d)")
_MONTHS = {
    1: ("jan", "january", "janvari", "जनवरी"),
    2: ("feb", "february", "farvari", "फरवरी", "फ़रवरी"),
    3: ("mar", "march", "march", "मार्च"),
    4: ("apr", "april", "aprail", "अप्रैल"),
    5: ("may", "mai", "मई"),
    6: ("jun", "june", "joon", "जून"),
    7: ("jul", "july", "julai", "जुलाई"),
    8: ("aug", "august", "agast", "अगस्त"),
    9: ("sep", "sept", "september", "सितंबर", "सितम्बर"),
    10: ("oct", "october", "aktubar", "अक्टूबर"),
    11: ("nov", "november", "navambar", "नवंबर", "नवम्बर"),
    12: ("dec", "december", "disambar", "दिसंबर", "दिसम्बर"),
}
_MONTH_WORD = {word: number for number, words in _MONTHS.items() for word in words}
_NUMERIC_MONTH = re.compile(r"(?<!\d)(\d{1,2})[/-](\d{4})(?!\d)|(?<!\d)(\d{4})-(\d{2})(?!\d)")


# --------------------------------------------------------------------------- reading messages


def month_in_text(text: str, today: dt.date) -> str | None:
    """``YYYY-MM`` of a month a message names ("november", "नवंबर", "11/2026"), else None.

    A month without a year is its latest occurrence up to today.
    """
    plain = ascii_digits(text)
    numeric = _NUMERIC_MONTH.search(plain)
    if numeric:
        month, year = (
            (numeric.group(1), numeric.group(2))
            if numeric.group(1)
            else (
                numeric.group(4),
                numeric.group(3),
            )
        )
        if 1 <= int(month) <= 12:
            return f"{int(year):04d}-{int(month):02d}"
    for word in re.findall(r"[\w\u0900-\u097f]+", plain.casefold()):
        number = _MONTH_WORD.get(word)
        if number is not None:
            year = today.year if number <= today.month else today.year - 1
            return f"{year:04d}-{number:02d}"
    return None


def utr_in_text(text: str) -> str | None:
    """A 12-digit UPI reference (UTR/RRN) in a message."""
    match = _UTR.search(ascii_digits(text))
    return match.group(1) if match else None


def date_in_text(text: str) -> dt.date | None:
    """A day written as ``20-11-2026``, ``20/11/26`` or ``20.11.2026``."""
    match = _DATE.search(ascii_digits(text))
    if not match:
        return None
    day, month, year = (int(g) for g in match.groups())
    year = year + 2000 if year < 100 else year
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


# --------------------------------------------------------------------------- pay_bill


def handle_pay(turn: Turn) -> None:
    """Answer "I want to pay": a signed pay link for the dues or a named amount, and its QR."""
    cfg = connections.settings()
    named = paylinks.amount_in_text(turn.text)
    with connections.session() as session:
        # "Pay to 98xxxxxx@ybl", a link, an OTP request: whoever asked, check it before paying.
        if linkcheck.check(session, cfg, turn.text).kind != linkcheck.NOTHING_TO_CHECK:
            handle_verify_link(turn)
            turn.settled()
            return
        res = resolve(session, turn)
        if settle_unresolved(turn, PAY, res):
            return
        consumer = res.consumer
        assert consumer is not None
        turn.settled(consumer.new_account_no)
        if named is None and not res.authorized:
            # The dues are private; anyone may pay an amount they name for an account.
            turn.say("utter_registered_mobile_only", new_account_no=consumer.new_account_no)
            return
        if named is not None:
            amount, kind, month = named, paylinks.ADVANCE, None
        elif consumer.meter_type == SMART_PREPAID:
            turn.say("utter_pay_ask_amount")
            return
        else:
            bill = store.latest_bill(session, consumer.new_account_no)
            if bill is None:
                turn.say("utter_no_bill_found", new_account_no=consumer.new_account_no)
                return
            amount = store.outstanding_paise(session, bill)
            if amount <= 0:
                turn.say("utter_pay_nothing_due", account=consumer.new_account_no)
                return
            kind, month = paylinks.DUES, bill.bill_month
        try:
            payee = paylinks.payee(cfg, consumer.discom)
            intent = paylinks.create_intent(
                session,
                cfg,
                consumer,
                amount,
                kind=kind,
                bill_month=month,
                mobile=turn.sender.mobile,
                channel=turn.sender.channel,
            )
            token = paylinks.make_token(cfg, intent)
        except paylinks.AmountOutOfRange:
            turn.say(
                "utter_pay_amount_out_of_range",
                min=format_rupees(paylinks.MIN_PAISE),
                max=format_rupees(paylinks.MAX_PAISE),
            )
            return
        except PaymentsNotConfigured as exc:
            log.error(kv("payments_not_configured", discom=consumer.discom, reason=str(exc)))
            session.rollback()
            turn.say("utter_pay_unavailable")
            return
        values: dict[str, Any] = {
            "payee": payee.name,
            "vpa": payee.vpa,
            "account": intent.new_account_no,
            "period": format_bill_month(month) if month else "",
            "amount": format_rupees(intent.amount_paise),
            "expires": format_moment(intent.expires_at),
            "link": paylinks.pay_url(cfg, token),
        }
    response = "utter_pay_link" if month else "utter_pay_link_advance"
    if turn.sender.channel == "whatsapp":
        # The QR comes along as a picture on WhatsApp; on SMS the link is enough.
        turn.dispatcher.utter_message(
            response=response, image=paylinks.qr_url(cfg, token), **values
        )
    else:
        turn.say(response, **values)


# --------------------------------------------------------------------------- verify_payment_link

_VERDICT_RESPONSES = {
    linkcheck.GENUINE_LINK: "utter_link_genuine",
    linkcheck.GENUINE_VPA: "utter_link_genuine_vpa",
    linkcheck.OFFICIAL_SITE: "utter_link_official_site",
    linkcheck.EXPIRED_LINK: "utter_link_expired",
    linkcheck.TAMPERED_LINK: "utter_link_tampered",
    linkcheck.PERSONAL_VPA: "utter_link_personal_vpa",
    linkcheck.LOOKALIKE_VPA: "utter_link_lookalike_vpa",
    linkcheck.LOOKALIKE_DOMAIN: "utter_link_lookalike_domain",
    linkcheck.UNKNOWN_LINK: "utter_link_unknown",
    linkcheck.DISCONNECTION_CALL: "utter_link_disconnection_call",
    linkcheck.OTP_PIN: "utter_link_otp_pin",
    linkcheck.SCREEN_SHARE: "utter_link_screen_share",
    linkcheck.NOTHING_TO_CHECK: "utter_verify_payment_link",
}


#: Warnings whose words need no values from the message.
_TRICKS = (linkcheck.DISCONNECTION_CALL, linkcheck.OTP_PIN, linkcheck.SCREEN_SHARE)


def handle_verify_link(turn: Turn) -> None:
    """Answer "is this link genuine?": what it pays if ours, else the warning that fits."""
    with connections.session() as session:
        verdict = linkcheck.check(session, connections.settings(), turn.text)
    response = _VERDICT_RESPONSES[verdict.kind]
    if verdict.kind == linkcheck.GENUINE_VPA and "amount" in verdict.values:
        response = "utter_link_genuine_vpa_amount"
    turn.say(response, **verdict.values)
    # A second finding that is itself a warning gets its own words too (e.g. a link and an OTP).
    for extra in dict.fromkeys(verdict.findings):
        if extra in _TRICKS and extra != verdict.kind:
            turn.say(_VERDICT_RESPONSES[extra])
    if not verdict.genuine and verdict.kind != linkcheck.NOTHING_TO_CHECK:
        turn.say("utter_pay_safely")


# --------------------------------------------------------------------------- receipts


def _receipt_values(payment: store.Payment) -> dict[str, str]:
    return {
        "amount": format_rupees(payment.amount_paise),
        "paid_on": format_moment(payment.paid_at or payment.created_at),
        "receipt_no": payment.receipt_no or payment.reference,
        "reference": payment.reference,
        "utr": payment.utr or "—",
    }


def send_receipt(turn: Turn, payment: store.Payment, response: str = "utter_receipt_link") -> None:
    """Say a payment's receipt link; on WhatsApp the PDF comes along as media."""
    cfg = connections.settings()
    values: dict[str, Any] = dict(_receipt_values(payment))
    if payment.receipt_no is None or payment.receipt_code is None:
        # A counter payment from before pay links: its number is all we hold.
        turn.say("utter_receipt_found", **values)
        return
    values["link"] = paylinks.receipt_url(cfg, payment.receipt_no, payment.receipt_code)
    if turn.sender.channel == "whatsapp":
        pdf = paylinks.receipt_url(cfg, payment.receipt_no, payment.receipt_code, pdf=True)
        turn.dispatcher.utter_message(response=response, image=pdf, **values)
    else:
        turn.say(response, **values)


def _in_month(payment: store.Payment, session: Session, month: str) -> bool:
    intent = session.get(store.PaymentIntent, payment.intent_id) if payment.intent_id else None
    if intent is not None and intent.bill_month == month:
        return True
    moment = payment.paid_at or payment.created_at
    return f"{to_ist(moment):%Y-%m}" == month


def handle_receipt(turn: Turn) -> None:
    """Answer "I need my receipt": the latest receipt, or one for a month named; else a ticket."""
    with connections.session() as session:
        res = resolve(session, turn)
        if settle_unresolved(turn, RECEIPT, res):
            return
        consumer = res.consumer
        assert consumer is not None
        turn.settled(consumer.new_account_no)
        if not res.authorized:
            turn.say("utter_registered_mobile_only", new_account_no=consumer.new_account_no)
            return
        payments = store.payments_for_account(session, consumer.new_account_no, limit=50)
        paid = [p for p in payments if p.status == PAID]
        month = month_in_text(turn.text, to_ist(utcnow()).date())
        if month is not None:
            in_month = [p for p in paid if _in_month(p, session, month)]
            if in_month:
                send_receipt(turn, in_month[0])
            else:
                turn.say("utter_receipt_month_not_found", month=format_bill_month(month))
        elif paid:
            send_receipt(turn, paid[0])
        elif payments and payments[0].status == PENDING:
            turn.say("utter_payment_pending", **_receipt_values(payments[0]))
        else:
            ticket = ticket_for(session, turn, RECEIPT_MISSING, consumer)
            turn.say("utter_receipt_ticket", reference=ticket.reference)


# --------------------------------------------------------------------------- payment not reflected


def _matches(
    moment: dt.datetime | None, amount: int, day: dt.date | None, paise: int | None
) -> bool:
    if paise is not None and amount != paise:
        return False
    if day is not None and (moment is None or to_ist(moment).date() != day):
        return False
    return True


def _uncredited_notice(
    session: Session, utr: str | None, day: dt.date | None, paise: int | None
) -> store.PaymentNotice | None:
    """A payment the bank or gateway reported that is not credited (yet)."""
    if utr is not None:
        notices = store.notices_by_utr(session, utr)
    elif day is not None and paise is not None:
        notices = list(
            session.execute(
                select(store.PaymentNotice)
                .where(store.PaymentNotice.amount_paise == paise)
                .order_by(store.PaymentNotice.id.desc())
                .limit(50)
            ).scalars()
        )
        notices = [n for n in notices if _matches(n.paid_at, n.amount_paise, day, paise)]
    else:
        return None
    return next((n for n in notices if n.payment_id is None), None)


def handle_payment_missing(turn: Turn) -> None:
    """Answer "I paid but it does not show": by UTR, or by date and amount; else a ticket."""
    # Answering the account form ("1", "456789"), the facts are in the message that asked.
    text = turn.question_text() if turn.number_from_form() else turn.text
    utr = utr_in_text(text)
    day = date_in_text(text)
    paise = paylinks.amount_in_text(text)
    with connections.session() as session:
        res = resolve(session, turn)
        if settle_unresolved(turn, PAYMENT_MISSING, res):
            return
        consumer = res.consumer
        assert consumer is not None
        turn.settled(consumer.new_account_no)
        payments = store.payments_for_account(session, consumer.new_account_no, limit=50)
        if res.authorized:
            found: store.Payment | None = None
            if utr is not None:
                found = next((p for p in payments if p.utr == utr and p.status == PAID), None)
            elif day is not None or paise is not None:
                found = next(
                    (
                        p
                        for p in payments
                        if p.status == PAID and _matches(p.paid_at, p.amount_paise, day, paise)
                    ),
                    None,
                )
            if found is not None:
                send_receipt(turn, found, "utter_payment_credited")
                return
            notice = _uncredited_notice(session, utr, day, paise)
            if notice is not None:
                expected = to_ist(utcnow()).date() + dt.timedelta(days=RECONCILE_DAYS)
                turn.say(
                    "utter_payment_in_statement",
                    amount=format_rupees(notice.amount_paise),
                    utr=notice.utr or "—",
                    expected=format_date(expected),
                )
                return
            latest = payments[0] if payments and utr is None and day is None else None
            if latest is not None and latest.status == PAID and paise is None:
                turn.say("utter_payment_found", **_receipt_values(latest))
                return
            if latest is not None and latest.status == PENDING:
                turn.say("utter_payment_pending", **_receipt_values(latest))
                return
        # Anyone may report a missing payment; only the reference goes back to them.
        ticket = ticket_for(session, turn, PAYMENT_NOT_REFLECTED, consumer)
        if utr is not None:
            turn.say("utter_payment_not_found_ticket", reference=ticket.reference, utr=utr)
        else:
            turn.say("utter_payment_ticket", reference=ticket.reference)


# --------------------------------------------------------------------------- actions


class ActionPayBill(TopicAction):
    """pay_bill."""

    action_name = "action_pay_bill"
    handle = staticmethod(handle_pay)


class ActionVerifyPaymentLink(Action):
    """verify_payment_link: answers without leaving a half-filled account form (it is no account
    question), so the form asks for its number again afterwards."""

    def name(self) -> str:
        return "action_verify_payment_link"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        turn = Turn(dispatcher, tracker)
        handle_verify_link(turn)
        return turn.events


class ActionReceipt(TopicAction):
    """ask_receipt."""

    action_name = "action_receipt"
    handle = staticmethod(handle_receipt)


class ActionPaymentNotReflected(TopicAction):
    """payment_not_reflected."""

    action_name = "action_payment_not_reflected"
    handle = staticmethod(handle_payment_missing)


__all__ = [
    "ActionPayBill",
    "ActionPaymentNotReflected",
    "ActionReceipt",
    "ActionVerifyPaymentLink",
    "date_in_text",
    "handle_pay",
    "handle_payment_missing",
    "handle_receipt",
    "handle_verify_link",
    "month_in_text",
    "utr_in_text",
]
