"""The staff features' RQ jobs, on the ``notifications`` queue: notices of an approved mobile
change, and the officers' alert when a reader reaches the day's lookup cap.

Each takes ids and re-reads its rows, so a replay or a vanished row is harmless; every send goes
through :func:`bot.twilio_client.send` with an idempotency key, so a retry never sends twice.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from rq import Queue, Retry
from rq.job import Job
from sqlalchemy import select

from bot import connections, store, twilio_client
from bot import settings as settings_mod
from bot.logfmt import kv
from bot.phone import mask
from bot.queues import NOTIFICATIONS
from bot.staff import texts

log = logging.getLogger(__name__)

#: Seconds a send job may run.
JOB_TIMEOUT = 60
#: Back-off between attempts after a Twilio failure, in seconds.
RETRY_INTERVALS = [5, 15, 60, 180, 600]
#: Notices go by SMS: the registered mobile may have no WhatsApp.
CHANNEL = "sms"
#: Idempotency keys of the sends.
NOTICE_KEY = "mobile-change:{id}:{which}"
ALERT_KEY = "staff-cap:{staff}:{day}:{officer}"


def _options(job_id: str, description: str) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "job_timeout": JOB_TIMEOUT,
        "retry": Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
        "result_ttl": 24 * 3600,
        "failure_ttl": 30 * 24 * 3600,
        "description": description,
    }


def enqueue_mobile_change_notice(conn: redis.Redis, change_id: int, which: str) -> Job:
    """Have a worker tell the consumer of approved change ``change_id`` on the old/new number."""
    queue = Queue(NOTIFICATIONS, connection=conn)
    return queue.enqueue(
        "bot.staff.jobs.send_mobile_change_notice",
        change_id,
        which,
        **_options(f"mobile-change-{change_id}-{which}", f"mobile change {change_id}: {which}"),
    )


def send_mobile_change_notice(change_id: int, which: str) -> str:
    """Tell the consumer, on the ``old`` or ``new`` number, that their registered mobile moved."""
    cfg = settings_mod.load()
    engine = connections.engine(cfg)
    with store.session_scope(engine) as session:
        change = session.get(store.MobileChange, change_id)
        if change is None or change.status != "approved":
            log.warning(kv("mobile_change_notice_skipped", change=change_id, which=which))
            return "not_approved"
        consumer = store.consumer_by_account(session, change.new_account_no)
        to = change.old_mobile if which == "old" else change.new_mobile
        if consumer is None or not to:
            return "nobody_to_tell"
        body = texts.text(
            f"mobile_changed_{which}",
            consumer.language,
            discom=consumer.discom,
            account=consumer.new_account_no,
            name=consumer.name,
            new_mobile=mask(change.new_mobile),
        )
    outcome = twilio_client.send(
        cfg,
        channel=CHANNEL,
        to=to,
        body=twilio_client.truncate(body, twilio_client.MAX_BODY),
        idempotency_key=NOTICE_KEY.format(id=change_id, which=which),
        engine=engine,
        redis_conn=connections.redis(cfg),
    )
    log.info(kv("mobile_change_notice", change=change_id, which=which, to=mask(to)))
    return outcome.result


def alert_lookup_cap(staff_id: int, day: str) -> str:
    """Tell the reader's area officers (active ones) that the reader reached the lookup cap."""
    cfg = settings_mod.load()
    engine = connections.engine(cfg)
    with store.session_scope(engine) as session:
        reader = session.get(store.Staff, staff_id)
        if reader is None:
            return "vanished"
        officers = list(
            session.execute(
                select(store.Staff).where(
                    store.Staff.role == "officer",
                    store.Staff.active.is_(True),
                    store.Staff.area == reader.area,
                )
            ).scalars()
        )
        body = texts.text(
            "lookup_cap_alert",
            "hinglish",
            name=reader.name,
            mobile=mask(reader.mobile),
            area=reader.area or "-",
            day=day,
            limit=cfg.staff_lookup_limit_per_day,
        )
        recipients = [(o.id, o.mobile) for o in officers]
        store.audit(
            session,
            "worker",
            "staff_lookup_cap_alert",
            subject=f"staff:{staff_id}",
            day=day,
            officers=len(recipients),
        )
    if not recipients:
        # The officer page lists the cap event all the same (bot/staff/pages.py).
        log.warning(kv("staff_cap_no_officer", staff=staff_id, day=day))
        return "no_officer"
    for officer_id, mobile in recipients:
        twilio_client.send(
            cfg,
            channel=CHANNEL,
            to=mobile,
            body=twilio_client.truncate(body, twilio_client.MAX_BODY),
            idempotency_key=ALERT_KEY.format(staff=staff_id, day=day, officer=officer_id),
            engine=engine,
            redis_conn=connections.redis(cfg),
        )
    log.info(kv("staff_cap_alert_sent", staff=staff_id, day=day, officers=len(recipients)))
    return f"alerted:{len(recipients)}"


__all__ = [
    "alert_lookup_cap",
    "enqueue_mobile_change_notice",
    "send_mobile_change_notice",
]
