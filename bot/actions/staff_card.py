"""What a meter reader sees of an account: the verification card, counted and audited.

Kept apart from bot/actions/staff.py so that the consumer-facing account actions can hand a
verified staff sender's lookup here without importing the staff actions (which dispatch back to
the consumer handlers for a sender who is not staff).
"""

from __future__ import annotations

import logging

from rq import Queue, Retry
from sqlalchemy.orm import Session

from bot import connections, store, verification
from bot.actions.formatting import format_bill_month, format_date, format_moment
from bot.actions.turn import Sender, Turn
from bot.logfmt import kv
from bot.money import format_rupees
from bot.phone import mask
from bot.queues import NOTIFICATIONS

log = logging.getLogger(__name__)

#: The account a reader verified last: "record visit" is about it.
VISIT_ACCOUNT = "visit_account"


def show_card(turn: Turn, number: str | None) -> bool:
    """Answer an active staff sender's lookup of ``number``; False when the sender is not staff.

    The staff table is read now, for the sender the gateway vouched for: a deactivated number
    is a consumer on its next message.
    """
    cfg = connections.settings()
    alert: tuple[int, str] | None = None
    with connections.session() as session:
        staff = verification.active_staff(session, turn.sender.mobile)
        if staff is None:
            return False
        if number is None:
            turn.say("utter_staff_ask_account")
            turn.say("utter_help")  # the staff menu: the role slot says staff
            turn.settled()
            return True
        outcome = verification.check_lookup(
            session,
            staff,
            subject=number,
            limit=cfg.staff_lookup_limit_per_day,
            channel=turn.sender.channel,
            via=turn.intent or "",
        )
        if outcome is not verification.Lookup.ALLOWED:
            log.info(kv("staff_lookup_refused", staff=staff.id, outcome=outcome.value))
            turn.say("utter_staff_lookup_cap", limit=cfg.staff_lookup_limit_per_day)
            turn.settled()
            if outcome is verification.Lookup.CAP_REACHED:
                alert = (staff.id, f"{verification.day_bounds()[2]:%Y-%m-%d}")
        else:
            _card(turn, session, number, cfg.default_discom)
    if alert is not None:
        # After the commit, so the job finds the audit row it reports.
        _enqueue_cap_alert(*alert)
    return True


def staff_lookup_allowed(session: Session, sender: Sender, number: str) -> bool:
    """Count and audit a verified staff sender's lookup through a consumer question (a bill)."""
    staff = verification.active_staff(session, sender.mobile)
    if staff is None:
        return False
    cfg = connections.settings()
    outcome = verification.check_lookup(
        session,
        staff,
        subject=number,
        limit=cfg.staff_lookup_limit_per_day,
        channel=sender.channel,
        via="consumer_question",
    )
    if outcome is verification.Lookup.CAP_REACHED:
        _enqueue_cap_alert(staff.id, f"{verification.day_bounds()[2]:%Y-%m-%d}")
    return outcome is verification.Lookup.ALLOWED


def _card(turn: Turn, session: Session, number: str, discom: str) -> None:
    consumer = store.consumer_by_account(session, number, discom=discom)
    if consumer is None:
        turn.say("utter_staff_account_not_found", account_number=number)
        turn.set(VISIT_ACCOUNT, None)
        turn.settled()
        return
    account = consumer.new_account_no
    turn.say(
        "utter_staff_account_details",
        new_account_no=account,
        old_account_no=consumer.old_account_no or "—",
        name=consumer.name,
        area=consumer.area or "—",
        meter_type=consumer.meter_type,
        mobile_masked=mask(consumer.mobile) if consumer.mobile else "—",
    )
    balance = store.prepaid_balance(session, account)
    bill = store.latest_bill(session, account)
    if consumer.meter_type == "smart_prepaid" and balance is not None:
        turn.say(
            "utter_staff_account_balance",
            balance=format_rupees(int(balance.balance_paise)),
            as_of=format_moment(balance.as_of),
        )
    elif bill is not None:
        turn.say(
            "utter_staff_account_dues",
            amount=format_rupees(max(store.outstanding_paise(session, bill), 0)),
            bill_month=format_bill_month(bill.bill_month),
            due_date=format_date(bill.due_date),
        )
    else:
        turn.say("utter_staff_account_no_figures")
    turn.set(VISIT_ACCOUNT, account)
    turn.settled(account)


def _enqueue_cap_alert(staff_id: int, day: str) -> None:
    """Have a worker tell the reader's officers (one job id per reader per day)."""
    queue = Queue(NOTIFICATIONS, connection=connections.redis())
    queue.enqueue(
        verification.CAP_ALERT_JOB,
        staff_id,
        day,
        job_id=f"staff-cap-{staff_id}-{day}",
        job_timeout=60,
        retry=Retry(max=5, interval=[5, 15, 60, 180, 600]),
        result_ttl=24 * 3600,
        failure_ttl=30 * 24 * 3600,
        description=f"alert the officers: staff {staff_id} reached the lookup cap on {day}",
    )
    log.info(kv("staff_lookup_cap_alert_queued", staff=staff_id, day=day))


__all__ = ["VISIT_ACCOUNT", "show_card", "staff_lookup_allowed"]
