"""RQ jobs of the payments package: deliver a receipt on the consumer's channel.

Enqueued by dotted name with a job id per payment; the job re-reads the payment, sends through
:func:`bot.twilio_client.send` under an idempotency key per payment, so a retry or a replayed
webhook never sends a receipt twice.
"""

from __future__ import annotations

import logging

from rq import Retry

from bot import connections, queues, store, twilio_client
from bot import settings as settings_mod
from bot.clock import utcnow
from bot.logfmt import kv
from bot.money import format_rupees
from bot.paylinks import receipt_url
from bot.payments import texts
from bot.phone import mask

log = logging.getLogger(__name__)

DELIVER_RECEIPT = "bot.payments.jobs.deliver_receipt"
#: Seconds a delivery may take (one or two Twilio calls).
JOB_TIMEOUT = 60
RETRY_INTERVALS = [5, 30, 120, 600]


def receipt_job_id(payment_id: int) -> str:
    """The RQ job id of a payment's receipt delivery."""
    return f"receipt-{payment_id}"


def enqueue_receipt(cfg: settings_mod.Settings, payment_id: int) -> None:
    """Queue the delivery of a payment's receipt (a repeat is harmless: sends are keyed)."""
    queues.queue(cfg, queues.NOTIFICATIONS).enqueue_call(
        func=DELIVER_RECEIPT,
        args=(payment_id,),
        job_id=receipt_job_id(payment_id),
        timeout=JOB_TIMEOUT,
        retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
        result_ttl=3600,
    )


def deliver_receipt(payment_id: int) -> str:
    """Send a payment's receipt to whoever asked for the link, else to the registered mobile."""
    cfg = settings_mod.load()
    engine = connections.engine(cfg)
    with store.session_scope(engine) as session:
        payment = session.get(store.Payment, payment_id)
        if payment is None or payment.receipt_no is None or payment.receipt_code is None:
            log.warning(kv("receipt_payment_vanished", payment=payment_id))
            return "vanished"
        intent = session.get(store.PaymentIntent, payment.intent_id) if payment.intent_id else None
        consumer = store.consumer_by_account(session, payment.new_account_no)
        mobile = (intent.mobile if intent else None) or (consumer.mobile if consumer else None)
        channel = (intent.channel if intent else None) or (
            "whatsapp" if consumer is not None and consumer.whatsapp_opt_in else "sms"
        )
        language = consumer.language if consumer is not None else "hi"
        values = {
            "amount": format_rupees(payment.amount_paise),
            "account": payment.new_account_no,
            "receipt_no": payment.receipt_no,
            "utr": payment.utr or "—",
        }
        number, code = payment.receipt_no, payment.receipt_code
    if not mobile:
        log.warning(kv("receipt_no_mobile", payment=payment_id))
        return "no_mobile"
    if channel == "whatsapp":
        body = texts.text("receipt_whatsapp", language, **values)
        media = receipt_url(cfg, number, code, pdf=True)
    else:
        body = texts.text("receipt_sms", language, link=receipt_url(cfg, number, code), **values)
        media = None
    outcome = twilio_client.send(
        cfg,
        channel=channel,
        to=mobile,
        body=body,
        media_url=media,
        idempotency_key=f"receipt:{payment_id}",
        engine=engine,
    )
    with store.session_scope(engine) as session:
        row = session.get(store.Payment, payment_id)
        if row is not None and outcome.ok and row.receipt_sent_at is None:
            row.receipt_sent_at = utcnow()
    log.info(
        kv(
            "receipt_delivered",
            payment=payment_id,
            to=mask(mobile),
            channel=channel,
            result=outcome.result,
        )
    )
    return outcome.result


__all__ = ["DELIVER_RECEIPT", "deliver_receipt", "enqueue_receipt", "receipt_job_id"]
