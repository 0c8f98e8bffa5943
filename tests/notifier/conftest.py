"""Notifier fixtures: consumers, bills and payments in the real store, for campaigns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy.engine import Engine

from bot import connections, store
from bot import settings as settings_mod
from bot.clock import IST, utcnow
from bot.queues import CAMPAIGNS


def add_consumers(
    engine: Engine,
    count: int,
    *,
    start: int = 0,
    area: str = "Kidwai Nagar",
    meter_type: str = "postpaid",
    whatsapp_every: int = 2,
    hindi_every: int = 3,
    dues_paise: int | None = None,
    discom: str = "KESCO",
    old_numbers: bool = True,
    mobile_base: int = 919700000000,
) -> list[str]:
    """``count`` consumers (+ a bill each when ``dues_paise``); their new account numbers."""
    accounts = []
    now = utcnow()
    with store.session_scope(engine) as session:
        for i in range(start, start + count):
            account = f"{2300000000 + i}"
            accounts.append(account)
            session.add(
                store.Consumer(
                    discom=discom,
                    new_account_no=account,
                    old_account_no=f"{1000000 + i}" if old_numbers else None,
                    name="रमेश कुमार" if i % hindi_every == 0 else "Ramesh Kumar Verma",
                    mobile=f"+{mobile_base + i}",
                    category="domestic",
                    meter_type=meter_type,
                    area=area,
                    language="hi" if i % hindi_every == 0 else "en",
                    whatsapp_opt_in=i % whatsapp_every == 0,
                )
            )
        session.flush()
        if dues_paise is not None:
            for account in accounts:
                session.add(
                    store.Bill(
                        new_account_no=account,
                        bill_month="2026-11",
                        amount_due_paise=dues_paise,
                        due_date=dt.date(2026, 12, 10),
                        arrears_paise=0,
                        imported_at=now - dt.timedelta(days=2),
                    )
                )
    return accounts


def add_payment(engine: Engine, account: str, paise: int, **kw: Any) -> None:
    """A credited payment to ``account`` now."""
    with store.session_scope(engine) as session:
        session.add(
            store.Payment(
                reference=f"T{account}{paise}",
                new_account_no=account,
                amount_paise=paise,
                channel="online",
                status="paid",
                paid_at=kw.get("paid_at", utcnow()),
            )
        )


def add_moratorium(
    engine: Engine, starts_at: dt.datetime, ends_at: dt.datetime, reason: str
) -> None:
    """A moratorium on KESCO's disconnections."""
    with store.session_scope(engine) as session:
        session.add(
            store.Moratorium(discom="KESCO", starts_at=starts_at, ends_at=ends_at, reason=reason)
        )


@pytest.fixture()
def campaign_env(
    gw_settings: settings_mod.Settings,
    live_app: str,
    fake: Any,
    engine: Engine,
    redis_conn: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[settings_mod.Settings]:
    """Settings for campaign jobs run in this process: fake Twilio, live status callbacks,
    no quiet hours (a test that wants them sets them), and a fresh connections cache."""
    monkeypatch.setenv("BIJLI_QUIET_HOURS", "off")
    connections.reset()
    yield settings_mod.load()
    connections.reset()


def next_weekday_ist(weekday: int, hour: int = 12) -> dt.datetime:
    """The next ``weekday`` (0 = Monday) at ``hour`` IST after today, as naive UTC."""
    today = dt.datetime.now(IST).date()
    days = (weekday - today.weekday()) % 7 or 7
    moment = dt.datetime.combine(today + dt.timedelta(days=days), dt.time(hour), tzinfo=IST)
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def new_number_batch(
    session: Any, cfg: settings_mod.Settings, engine: Engine, redis_conn: Any, cid: int
) -> Any:
    """Batch 1 of new-account-number campaign ``cid``, as its send job opens it (not entered)."""
    from notifier import jobs

    kind = "new-account-number"
    return jobs._Batch(
        cfg,
        engine,
        redis_conn,
        cid,
        1,
        kind,
        {"valid_until": "2027-05-31"},
        utcnow(),
        None,
        jobs.Calendar.load(session, cfg, kind, utcnow()),
    )


def run_campaign_jobs(redis_conn: Any) -> None:
    """An in-process RQ worker until the campaign queue is empty (no scheduler)."""
    queue = Queue(CAMPAIGNS, connection=redis_conn)
    SimpleWorker([queue], connection=redis_conn).work(burst=True, with_scheduler=False)


def release_scheduled(redis_conn: Any) -> list[str]:
    """Move every scheduled campaign job to the queue now (as RQ's scheduler would when due)."""
    queue = Queue(CAMPAIGNS, connection=redis_conn)
    registry = ScheduledJobRegistry(queue=queue)
    ids = registry.get_job_ids()
    for job_id in ids:
        registry.remove(job_id)
        queue.enqueue_job(Job.fetch(job_id, connection=redis_conn))
    return ids
