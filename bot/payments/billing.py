"""Billing closed or down: ``bijli billing closing on|off`` and ``bijli billing reconcile``.

While a discom's billing is closed (month-end "data closing", or an outage), pay links still
work and payments are credited and receipted here; they are kept as not yet posted
(``applied_at`` empty). ``reconcile`` lists what waits, and once billing has reopened marks it
posted, so the billing office can apply exactly those amounts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot import store
from bot.clock import to_ist, utcnow
from bot.money import format_rupees


def set_closing(engine: Engine, on: bool, discoms: tuple[str, ...], reason: str = "") -> list[str]:
    """Open or end a closure for each discom; return one line per discom saying what changed."""
    now = utcnow()
    lines = []
    with store.session_scope(engine) as session:
        for discom in discoms:
            current = store.open_billing_closure(session, discom)
            if on and current is None:
                session.add(store.BillingClosure(discom=discom, reason=reason, started_at=now))
                lines.append(f"{discom}: billing closed from {to_ist(now):%d-%m-%Y %H:%M} IST")
            elif on and current is not None:
                since = to_ist(current.started_at)
                lines.append(f"{discom}: already closed since {since:%d-%m-%Y %H:%M} IST")
            elif current is not None:
                current.ended_at = now
                lines.append(f"{discom}: billing reopened; run `bijli billing reconcile`")
            else:
                lines.append(f"{discom}: billing was open")
            store.audit(
                session,
                "cli",
                "billing_closing_on" if on else "billing_closing_off",
                discom,
                reason=reason,
            )
    return lines


@dataclass
class Reconciliation:
    """Payments credited while billing was closed: posted now, or still waiting."""

    posted: list[store.Payment] = field(default_factory=list)
    waiting: list[store.Payment] = field(default_factory=list)

    def summary(self) -> str:
        lines = []
        for title, rows in (
            ("posted to billing now", self.posted),
            ("waiting: billing still closed", self.waiting),
        ):
            total = sum(p.amount_paise for p in rows)
            lines.append(f"{len(rows)} payment(s) {title}, {format_rupees(total)}")
            for p in rows:
                paid = to_ist(p.paid_at or p.created_at)
                lines.append(
                    f"  {p.discom} {p.new_account_no} {format_rupees(p.amount_paise)} "
                    f"receipt {p.receipt_no} UTR {p.utr or '-'} paid {paid:%d-%m-%Y %H:%M}"
                )
        return "\n".join(lines)


def reconcile(
    engine: Engine, *, dry_run: bool = False, now: dt.datetime | None = None
) -> Reconciliation:
    """Post the payments credited during closures of discoms whose billing has reopened."""
    moment = now or utcnow()
    result = Reconciliation()
    with store.session_scope(engine) as session:
        rows = session.execute(
            select(store.Payment)
            .where(store.Payment.status == "paid", store.Payment.applied_at.is_(None))
            .order_by(store.Payment.discom, store.Payment.receipt_no)
            .with_for_update()
        ).scalars()
        closed: dict[str, bool] = {}
        for payment in rows:
            discom = payment.discom or ""
            if discom not in closed:
                closed[discom] = store.open_billing_closure(session, discom) is not None
            if closed[discom]:
                result.waiting.append(payment)
                continue
            if not dry_run:
                payment.applied_at = moment
            result.posted.append(payment)
        if not dry_run and result.posted:
            store.audit(
                session,
                "cli",
                "billing_reconciled",
                None,
                payments=len(result.posted),
                paise=sum(p.amount_paise for p in result.posted),
            )
    return result


__all__ = ["Reconciliation", "reconcile", "set_closing"]
