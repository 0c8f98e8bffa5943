"""The send job, run by a real RQ worker against the fake Twilio, with the rules at send time."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from bot import delivery_status, paylinks, store, twilio_client
from bot.clock import utcnow
from bot.phone import twilio_address
from bot.queues import CAMPAIGNS
from notifier import campaigns, jobs, messages
from notifier.campaigns import Filters
from tests.gateway_stack import wait_for
from tests.notifier.conftest import (
    add_consumers,
    add_moratorium,
    add_payment,
    new_number_batch,
    next_weekday_ist,
    release_scheduled,
    run_campaign_jobs,
)

VALID_UNTIL = dt.date(2027, 5, 31)
WARNING = "disconnection-warning"
NEW_NUMBER = "new-account-number"


def _by_to(fake) -> dict[str, list[dict]]:  # type: ignore[no-untyped-def]
    sent: dict[str, list[dict]] = {}
    for m in fake.sent():
        if m["content_sid"]:
            # A Content template goes without Body; Twilio shows the text it renders from it.
            assert m["body"] == "", "no Body beside a ContentSid"
            m = {**m, "body": _rendered(m["content_sid"], m["content_variables"])}
        sent.setdefault(m["to"].removeprefix("whatsapp:"), []).append(m)
    return sent


def _rendered(content_sid: str, variables: str | None) -> str:
    """The text Twilio makes of a Content template and its variables."""
    (tpl,) = [t for t in messages.all_templates().values() if t.content_sid == content_sid]
    values = json.loads(variables or "{}")
    return re.sub(r"\{\{(\d+)\}\}", lambda m: values[m.group(1)], tpl.text)


def _recipients(engine, cid):  # type: ignore[no-untyped-def]
    with store.session_scope(engine) as session:
        return {
            r.new_account_no: r
            for r in session.execute(
                select(store.CampaignRecipient).where(store.CampaignRecipient.campaign_id == cid)
            ).scalars()
        }


def _check_registered(kind: str, message: dict, channel: str, language: str) -> None:
    """The text Twilio got is the registered template with its variables filled."""
    tpl = messages.template(kind, channel, language)
    if channel == "sms":
        match = messages.registered_pattern(tpl).fullmatch(message["body"])
        assert match, f"{tpl.path}: {message['body']!r} is not the registered text"
        assert message["content_sid"] is None
    else:
        assert message["content_sid"] == tpl.content_sid
        variables = json.loads(message["content_variables"])
        filled = re.sub(r"\{\{(\d+)\}\}", lambda m: variables[m.group(1)], tpl.text)
        assert message["body"] == filled


def test_new_account_number_reaches_everyone_once_in_their_channel_and_language(
    campaign_env, engine, redis_conn, fake
):
    accounts = add_consumers(engine, 6)
    cid = campaigns.create(engine, NEW_NUMBER, Filters(), cfg=campaign_env, valid_until=VALID_UNTIL)
    campaigns.start(engine, redis_conn, cid, batch_size=4)
    run_campaign_jobs(redis_conn)
    sent = _by_to(fake)
    assert sorted(sent) == sorted(f"+9197000000{i:02d}" for i in range(6))
    for i, account in enumerate(accounts):
        (message,) = sent[f"+9197000000{i:02d}"]
        channel = "whatsapp" if i % 2 == 0 else "sms"
        language = "hi" if i % 3 == 0 else "en"
        assert message["to"].startswith("whatsapp:") == (channel == "whatsapp")
        _check_registered(NEW_NUMBER, message, channel, language)
        assert account in message["body"] and f"{1000000 + i}" in message["body"]
        assert "31-05-2027" in message["body"]
        assert "Ramesh" not in message["body"] and "रमेश" not in message["body"]  # masked
        assert "key=campaign%3A" in message["status_callback"]
    # Delivered callbacks are parked in Redis until a flush (the worker's job) writes them.
    flush = delivery_status.flush
    st = wait_for(
        lambda: (
            flush(redis_conn, engine) >= 0
            and (s := campaigns.status(engine, cid)).delivered == 6
            and s
        ),
        timeout=15,
    )
    assert (st.state, st.selected, st.sent, st.queued, st.failed) == ("done", 6, 6, 0, 0)
    assert st.finished_at is not None
    # Starting a finished campaign again sends nothing.
    with pytest.raises(campaigns.CampaignFinished):
        campaigns.start(engine, redis_conn, cid)


def test_restart_mid_campaign_sends_nobody_twice(campaign_env, engine, redis_conn, fake):
    add_consumers(engine, 9)
    cid = campaigns.create(engine, NEW_NUMBER, Filters(), cfg=campaign_env, valid_until=VALID_UNTIL)
    campaigns.start(engine, redis_conn, cid, batch_size=3)
    # One batch runs, then the operator starts the campaign again: old jobs are stale.
    queue = Queue(CAMPAIGNS, connection=redis_conn)
    first = queue.dequeue_any([queue], None, connection=redis_conn)
    assert first is not None
    job, _ = first
    job.perform()
    assert len(fake.sent()) == 3
    again = campaigns.start(engine, redis_conn, cid, batch_size=3)
    assert again.queued == 6
    run_campaign_jobs(redis_conn)
    sent = _by_to(fake)
    assert len(sent) == 9 and all(len(v) == 1 for v in sent.values())
    assert campaigns.status(engine, cid).state == "done"


def test_disconnection_warning_carries_amount_cut_time_and_a_working_pay_link(
    campaign_env, engine, redis_conn, fake, monkeypatch
):
    monday_noon = next_weekday_ist(0, 12)
    monkeypatch.setattr(jobs, "utcnow", lambda: monday_noon)
    accounts = add_consumers(engine, 4, meter_type="smart_prepaid", dues_paise=16_250_00)
    cid = campaigns.create(
        engine,
        WARNING,
        Filters(meter_type="smart_prepaid", min_dues_paise=15_000_00),
        cfg=campaign_env,
        notice_hours=24,
    )
    campaigns.start(engine, redis_conn, cid)
    run_campaign_jobs(redis_conn)
    sent = _by_to(fake)
    # KESCO cuts smart prepaid 11:00-16:00: 24 h after Monday noon is Tuesday 12:00.
    tuesday = monday_noon + dt.timedelta(days=1)
    cut = f"{tuesday + dt.timedelta(hours=5, minutes=30):%d-%m-%Y} 12:00"
    for i, account in enumerate(accounts):
        (message,) = sent[f"+9197000000{i:02d}"]
        channel = "whatsapp" if i % 2 == 0 else "sms"
        _check_registered(WARNING, message, channel, "hi" if i % 3 == 0 else "en")
        assert "16,250.00" in message["body"] and cut in message["body"]
        url = re.search(r"https?://\S+/pay/\S+", message["body"]).group(0)
        token = paylinks.token_in_url(campaign_env, url)
        with store.session_scope(engine) as session:
            intent = paylinks.intent_for_token(session, campaign_env, token)
            assert (intent.new_account_no, intent.amount_paise) == (account, 16_250_00)
            # The bot's ask_disconnection now finds the account listed.
            notice = store.listed_disconnection(session, account)
            assert notice is not None and notice.campaign_id == cid


def test_who_paid_after_selection_is_skipped_at_send_time(
    campaign_env, engine, redis_conn, fake, monkeypatch
):
    monkeypatch.setattr(jobs, "utcnow", lambda: next_weekday_ist(1, 12))
    accounts = add_consumers(engine, 3, meter_type="smart_prepaid", dues_paise=20_000_00)
    cid = campaigns.create(
        engine,
        WARNING,
        Filters(min_dues_paise=15_000_00),
        cfg=campaign_env,
    )
    add_payment(engine, accounts[0], 20_000_00)  # paid in full
    add_payment(engine, accounts[1], 2_000_00)  # still owes 18,000: warned for that
    campaigns.start(engine, redis_conn, cid)
    run_campaign_jobs(redis_conn)
    sent = _by_to(fake)
    assert "+919700000000" not in sent
    assert "18,000.00" in sent["+919700000001"][0]["body"]
    assert "20,000.00" in sent["+919700000002"][0]["body"]
    st = campaigns.status(engine, cid)
    assert st.skipped == {"paid": 1} and st.sent == 2 and st.state == "done"


def test_opted_out_after_selection_gets_nothing_and_rejections_count_by_code(
    campaign_env, engine, redis_conn, fake
):
    add_consumers(engine, 4, whatsapp_every=100)  # SMS except consumer 0
    cid = campaigns.create(engine, NEW_NUMBER, Filters(), cfg=campaign_env, valid_until=VALID_UNTIL)
    with store.session_scope(engine) as session:
        store.set_opt_out(session, "+919700000001", "sms", True)
        # Opting out of WhatsApp does not stop an SMS: opt-outs are per channel.
        store.set_opt_out(session, "+919700000002", "whatsapp", True)
    fake.configure(reject={"+919700000003": 21211})
    campaigns.start(engine, redis_conn, cid)
    run_campaign_jobs(redis_conn)
    sent = _by_to(fake)
    assert sorted(sent) == ["+919700000000", "+919700000002"]
    st = campaigns.status(engine, cid)
    assert st.skipped == {"opted_out": 1}
    assert st.failures_by_code == {"21211": 1} and st.failed == 1
    assert st.state == "done"


def test_quiet_hours_make_jobs_wait_for_the_window_not_drop(
    campaign_env, engine, redis_conn, fake, monkeypatch
):
    monkeypatch.setenv("BIJLI_QUIET_HOURS", "21:00-09:00")
    from bot import connections

    connections.reset()
    late = next_weekday_ist(2, 23)  # Wednesday 23:00 IST
    monkeypatch.setattr(jobs, "utcnow", lambda: late)
    add_consumers(engine, 5)
    cid = campaigns.create(engine, NEW_NUMBER, Filters(), cfg=campaign_env, valid_until=VALID_UNTIL)
    campaigns.start(engine, redis_conn, cid)
    run_campaign_jobs(redis_conn)
    assert fake.sent() == []
    registry = ScheduledJobRegistry(queue=Queue(CAMPAIGNS, connection=redis_conn))
    (job_id,) = registry.get_job_ids()
    opens = registry.get_scheduled_time(job_id)
    # Thursday 09:00 IST = 03:30 UTC.
    assert opens.replace(tzinfo=None) == late + dt.timedelta(hours=10)
    st = campaigns.status(engine, cid)
    assert st.queued == 5 and st.state == "running"
    monkeypatch.setattr(jobs, "utcnow", lambda: late + dt.timedelta(hours=10))
    release_scheduled(redis_conn)
    run_campaign_jobs(redis_conn)
    assert len(fake.sent()) == 5
    assert campaigns.status(engine, cid).state == "done"


@pytest.mark.parametrize("day", ["sunday", "holiday"])
def test_disconnection_warnings_wait_out_sundays_and_holidays(
    campaign_env, engine, redis_conn, fake, monkeypatch, day
):
    moment = next_weekday_ist(6, 11) if day == "sunday" else next_weekday_ist(3, 11)
    if day == "holiday":
        with store.session_scope(engine) as session:
            local_day = (moment + dt.timedelta(hours=5, minutes=30)).date()
            session.add(store.Holiday(day=local_day, name="Test holiday"))
    monkeypatch.setattr(jobs, "utcnow", lambda: moment)
    add_consumers(engine, 2, meter_type="smart_prepaid", dues_paise=20_000_00)
    cid = campaigns.create(engine, WARNING, Filters(), cfg=campaign_env)
    campaigns.start(engine, redis_conn, cid)
    run_campaign_jobs(redis_conn)
    assert fake.sent() == []
    registry = ScheduledJobRegistry(queue=Queue(CAMPAIGNS, connection=redis_conn))
    (job_id,) = registry.get_job_ids()
    # The next day at midnight IST (quiet hours are off here): 18:30 UTC the same day.
    next_midnight = moment.replace(hour=18, minute=30)
    assert registry.get_scheduled_time(job_id).replace(tzinfo=None) == next_midnight
    monkeypatch.setattr(jobs, "utcnow", lambda: next_midnight + dt.timedelta(hours=4))
    release_scheduled(redis_conn)
    run_campaign_jobs(redis_conn)
    assert len(fake.sent()) == 2


def test_a_moratorium_holds_disconnection_warnings_until_it_ends(
    campaign_env, engine, redis_conn, fake, monkeypatch
):
    moment = next_weekday_ist(1, 12)
    monkeypatch.setattr(jobs, "utcnow", lambda: moment)
    add_moratorium(
        engine, moment - dt.timedelta(hours=1), moment + dt.timedelta(hours=3), "billing upgrade"
    )
    add_consumers(engine, 3, meter_type="smart_prepaid", dues_paise=20_000_00)
    cid = campaigns.create(engine, WARNING, Filters(), cfg=campaign_env)
    report = campaigns.dry_run(engine, WARNING, Filters(), cfg=campaign_env)
    assert report.waits_for is None  # the dry run reads the real clock, the job the test's
    campaigns.start(engine, redis_conn, cid)
    run_campaign_jobs(redis_conn)
    assert fake.sent() == []
    st = campaigns.status(engine, cid)
    assert st.state == "held" and "billing upgrade" in st.held_reason and st.queued == 3
    registry = ScheduledJobRegistry(queue=Queue(CAMPAIGNS, connection=redis_conn))
    (job_id,) = registry.get_job_ids()
    # Looked at again within 15 minutes (a moratorium may be lifted early).
    recheck = moment + dt.timedelta(minutes=15)
    assert registry.get_scheduled_time(job_id).replace(tzinfo=None) == recheck
    monkeypatch.setattr(jobs, "utcnow", lambda: moment + dt.timedelta(hours=3, minutes=1))
    release_scheduled(redis_conn)
    run_campaign_jobs(redis_conn)
    assert len(fake.sent()) == 3
    st = campaigns.status(engine, cid)
    assert st.state == "done" and st.held_reason is None


def test_dues_beyond_one_upi_payment_are_excluded_with_their_reason(campaign_env, engine):
    add_consumers(engine, 2, meter_type="smart_prepaid", dues_paise=1_50_000_00)
    add_consumers(engine, 1, start=2, meter_type="smart_prepaid", dues_paise=20_000_00)
    report = campaigns.dry_run(engine, WARNING, Filters(), cfg=campaign_env)
    assert report.selected == 1 and report.excluded == {"dues_above_upi_limit": 2}


def test_a_deferred_warning_is_written_afresh_unless_twilio_may_have_it(
    campaign_env, engine, redis_conn, fake, monkeypatch
):
    monkeypatch.setattr(jobs, "utcnow", lambda: next_weekday_ist(1, 12))
    add_consumers(engine, 3, meter_type="smart_prepaid", dues_paise=20_000_00)
    cid = campaigns.create(engine, WARNING, Filters(), cfg=campaign_env)
    campaigns.start(engine, redis_conn, cid)
    with store.session_scope(engine) as session:
        ids = [r.id for r in session.execute(select(store.CampaignRecipient)).scalars()]
        cfg_batch = jobs._Batch(
            campaign_env,
            engine,
            redis_conn,
            cid,
            1,
            WARNING,
            {"notice_hours": 24},
            session.get(store.Campaign, cid).selected_at,
            None,
            jobs.Calendar.load(session, campaign_env, WARNING, jobs.utcnow()),
        )
        rows = list(session.execute(select(store.CampaignRecipient)).scalars())
    texts = cfg_batch.prepare(rows)
    assert len(texts) == 3
    # The first one reached Twilio (its outbound row exists); the window then shut.
    with store.session_scope(engine) as session:
        session.add(
            store.OutboundMessage(
                idempotency_key=jobs.idempotency_key(cid, rows[0].new_account_no),
                channel=rows[0].channel,
                to_number=rows[0].mobile,
                body=texts[rows[0].id][0],
                status="unconfirmed",
            )
        )
    cfg_batch.defer(ids[0], ids[-1], "quiet_hours", jobs.utcnow().replace(tzinfo=dt.timezone.utc))
    bodies = {r.id: r.body for r in _recipients(engine, cid).values()}
    assert bodies[ids[0]] == texts[ids[0]][0]  # kept: a retry must find the same text
    assert bodies[ids[1]] is None and bodies[ids[2]] is None


def test_sms_fallback_sends_the_dlt_text_once_and_the_funnel_counts_it(
    campaign_env, engine, redis_conn, fake
):
    add_consumers(engine, 2, whatsapp_every=1)  # both on WhatsApp
    cid = campaigns.create(engine, NEW_NUMBER, Filters(), cfg=campaign_env, valid_until=VALID_UNTIL)
    fake.configure(undeliverable=["+919700000001"])
    campaigns.start(engine, redis_conn, cid)
    run_campaign_jobs(redis_conn)
    wait_for(lambda: campaigns.status(engine, cid).failed == 1, timeout=15)
    # What the status callback's handler does on 63003/63016 (twice here: it may repeat).
    jobs.enqueue_sms_fallback(redis_conn, cid, "2300000001")
    run_campaign_jobs(redis_conn)
    jobs.enqueue_sms_fallback(redis_conn, cid, "2300000001")
    run_campaign_jobs(redis_conn)
    sent = fake.sent("+919700000001")
    assert [m["to"].startswith("whatsapp:") for m in sent] == [True, False]
    _check_registered(NEW_NUMBER, sent[1], "sms", "en")
    # The fallback goes to an undeliverable number too in the fake; its count is its own.
    st = wait_for(lambda: (s := campaigns.status(engine, cid)).fell_back_to_sms == 1 and s, 15)
    assert st.sent == 2
    # Not for a recipient whose WhatsApp message was fine, nor one never sent.
    assert jobs.send_sms_fallback(cid, "2300000099") == "gone"


def test_a_message_a_dead_worker_left_in_flight_is_found_not_sent_again(
    campaign_env, engine, redis_conn, fake, monkeypatch
):
    """A worker died after Twilio accepted the message but before it heard so."""
    monkeypatch.setattr(jobs, "LEFTOVER_PASSES", (0.0,))
    add_consumers(engine, 2, whatsapp_every=100)  # SMS
    cid = campaigns.create(engine, NEW_NUMBER, Filters(), cfg=campaign_env, valid_until=VALID_UNTIL)
    campaigns.start(engine, redis_conn, cid)
    with store.session_scope(engine) as session:
        rows = list(session.execute(select(store.CampaignRecipient)).scalars())
        batch = new_number_batch(session, campaign_env, engine, redis_conn, cid)
    body = batch.prepare(rows)[rows[0].id][0]
    key = jobs.idempotency_key(cid, rows[0].new_account_no)
    # The dead attempt: its row in flight, and Twilio holding its message (whose status
    # callbacks went nowhere, so only Twilio's list of messages can tell).
    channel = rows[0].channel
    twilio_client.client_for(campaign_env).messages.create(
        to=twilio_address(channel, rows[0].mobile),
        from_=twilio_client.sender_for(campaign_env, channel),
        body=body,
    )
    with store.session_scope(engine) as session:
        session.add(
            store.OutboundMessage(
                idempotency_key=key,
                channel=channel,
                to_number=rows[0].mobile,
                body=body,
                campaign_id=cid,
                status="in_flight",
                attempts=1,
                created_at=utcnow() - dt.timedelta(seconds=5),
                updated_at=utcnow(),
            )
        )
    # While its lease runs the job leaves it for RQ's retry; the other consumer is sent.
    run_campaign_jobs(redis_conn)
    assert len(fake.sent("+919700000001")) == 1
    assert campaigns.status(engine, cid).queued == 1
    with store.session_scope(engine) as session:
        session.execute(
            update(store.OutboundMessage)
            .where(store.OutboundMessage.idempotency_key == key)
            .values(updated_at=utcnow() - dt.timedelta(seconds=twilio_client.SEND_LEASE + 1))
        )
    assert release_scheduled(redis_conn)  # the retry RQ scheduled
    run_campaign_jobs(redis_conn)
    assert len(fake.sent("+919700000000")) == 1  # found in Twilio's list, not sent again
    st = campaigns.status(engine, cid)
    assert (st.sent, st.queued, st.state) == (2, 0, "done")


def test_a_message_sent_while_the_campaign_was_cancelled_still_counts_as_sent(
    campaign_env, engine, redis_conn, fake
):
    add_consumers(engine, 2)
    cid = campaigns.create(engine, NEW_NUMBER, Filters(), cfg=campaign_env, valid_until=VALID_UNTIL)
    campaigns.start(engine, redis_conn, cid)
    with store.session_scope(engine) as session:
        rows = list(session.execute(select(store.CampaignRecipient)).scalars())
        batch = new_number_batch(session, campaign_env, engine, redis_conn, cid)
    texts = batch.prepare(rows)
    campaigns.cancel(engine, redis_conn, cid)  # while the first message is on its way
    assert batch.send_one(rows[0], *texts[rows[0].id])
    st = campaigns.status(engine, cid)
    assert (st.state, st.sent, st.skipped) == ("cancelled", 1, {"cancelled": 1})
    assert len(fake.sent()) == 1


def test_a_warnings_sms_fallback_rechecks_payments_and_moratoriums(
    campaign_env, engine, redis_conn, fake, monkeypatch
):
    """WhatsApp's failure can come hours after the batch: the SMS is checked again."""
    moment = next_weekday_ist(1, 12)
    monkeypatch.setattr(jobs, "utcnow", lambda: moment)
    accounts = add_consumers(
        engine, 2, meter_type="smart_prepaid", dues_paise=20_000_00, whatsapp_every=1
    )
    cid = campaigns.create(engine, WARNING, Filters(min_dues_paise=15_000_00), cfg=campaign_env)
    campaigns.start(engine, redis_conn, cid)
    run_campaign_jobs(redis_conn)
    assert len(fake.sent()) == 2  # both on WhatsApp
    # Since then: the first consumer paid enough, and a moratorium began for KESCO.
    add_payment(engine, accounts[0], 6_000_00)  # owes 14,000: below the 15,000 selected
    add_moratorium(
        engine, moment - dt.timedelta(minutes=5), moment + dt.timedelta(hours=2), "flood relief"
    )
    assert jobs.send_sms_fallback(cid, accounts[0]) == "paid"
    assert jobs.send_sms_fallback(cid, accounts[1]) == "waiting:moratorium"
    registry = ScheduledJobRegistry(queue=Queue(CAMPAIGNS, connection=redis_conn))
    (job_id,) = registry.get_job_ids()
    recheck = moment + dt.timedelta(minutes=15)
    assert registry.get_scheduled_time(job_id).replace(tzinfo=None) == recheck
    assert len(fake.sent()) == 2
    # After the moratorium the waiting fallback goes; the paid consumer still gets nothing.
    monkeypatch.setattr(jobs, "utcnow", lambda: moment + dt.timedelta(hours=2, minutes=1))
    release_scheduled(redis_conn)
    run_campaign_jobs(redis_conn)
    sent = _by_to(fake)
    assert [m["to"] for m in sent["+919700000001"]] == [
        "whatsapp:+919700000001",
        "+919700000001",
    ]
    assert len(sent["+919700000000"]) == 1
