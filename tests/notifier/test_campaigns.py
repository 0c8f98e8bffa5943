"""Campaigns: selection frozen at create, exclusions with reasons, dry run, lifecycle, status."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from rq import Queue
from sqlalchemy import select

from bot import store
from bot.queues import CAMPAIGNS
from notifier import campaigns, states
from notifier.campaigns import Filters
from tests.notifier.conftest import add_consumers, add_payment

VALID_UNTIL = dt.date(2027, 5, 31)


def test_create_freezes_the_selection_and_status_counts_it(engine, settings):
    add_consumers(engine, 10)
    add_consumers(engine, 2, start=10, old_numbers=False)  # nothing to tell them
    with store.session_scope(engine) as session:
        store.set_opt_out(session, "+919700000001", "sms", True)  # consumer 1: SMS (odd)
        session.add(
            store.Consumer(
                discom="KESCO",
                new_account_no="2399999999",
                old_account_no="999999",
                name="No Mobile",
                mobile=None,
                category="domestic",
                meter_type="postpaid",
                area="Kidwai Nagar",
                language="en",
            )
        )
    cid = campaigns.create(
        engine, "new-account-number", Filters(), cfg=settings, valid_until=VALID_UNTIL
    )
    assert isinstance(cid, int)
    # A consumer added after create is not in it.
    add_consumers(engine, 1, start=50)
    st = campaigns.status(engine, cid)
    assert st.state == "draft"
    assert st.kind == "new-account-number"
    assert st.selected == 9
    assert st.excluded == {"no_mobile": 1, "opted_out": 1}
    assert st.queued == 9 and st.sent == 0
    assert [c.id for c in campaigns.list_campaigns(engine)] == [cid]
    # Named by its IST creation time, as operators read clocks.
    (listed,) = campaigns.list_campaigns(engine)
    ist_now = dt.datetime.now(dt.timezone(dt.timedelta(hours=5, minutes=30)))
    assert re.fullmatch(r"new-account-number \d{4}-\d\d-\d\d \d\d:\d\d IST", listed.name)
    made = dt.datetime.strptime(listed.name[19:35], "%Y-%m-%d %H:%M").replace(tzinfo=ist_now.tzinfo)
    assert abs((ist_now - made).total_seconds()) < 120


def test_disconnection_selection_by_meter_type_and_min_dues(engine, settings):
    add_consumers(engine, 4, meter_type="smart_prepaid", dues_paise=20_000_00)
    add_consumers(engine, 3, start=4, meter_type="smart_prepaid", dues_paise=10_000_00)
    add_consumers(engine, 2, start=7, meter_type="postpaid", dues_paise=50_000_00)
    # Consumer 0 paid enough before the campaign to fall under the threshold.
    add_payment(engine, "2300000000", 6_000_00)
    filters = Filters(meter_type="smart_prepaid", min_dues_paise=15_000_00)
    cid = campaigns.create(engine, "disconnection-warning", filters, cfg=settings)
    with store.session_scope(engine) as session:
        rows = session.execute(
            select(store.CampaignRecipient.new_account_no, store.CampaignRecipient.amount_paise)
            .where(store.CampaignRecipient.campaign_id == cid)
            .order_by(store.CampaignRecipient.new_account_no)
        ).all()
    assert rows == [(f"230000000{i}", 20_000_00) for i in (1, 2, 3)]


def test_dry_run_counts_channels_languages_segments_and_cost(engine, settings):
    add_consumers(engine, 12)
    with store.session_scope(engine) as session:
        store.set_opt_out(session, "+919700000002", "whatsapp", True)
    report = campaigns.create(
        engine, "new-account-number", Filters(), cfg=settings, valid_until=VALID_UNTIL, dry_run=True
    )
    assert isinstance(report, campaigns.DryRun)
    assert report.selected == 11
    assert report.excluded == {"opted_out": 1}
    # i%2==0 → WhatsApp; i%3==0 → Hindi.
    assert report.by_channel_language == {
        "sms/en": 4,
        "sms/hi": 2,
        "whatsapp/en": 3,
        "whatsapp/hi": 2,
    }
    sms_hi = next(t for t in report.templates if (t.channel, t.language) == ("sms", "hi"))
    assert sms_hi.encoding == "UCS-2" and sms_hi.segments_min >= 2
    sms_en = next(t for t in report.templates if (t.channel, t.language) == ("sms", "en"))
    assert sms_en.encoding == "GSM-7" and sms_en.segments_min == 2
    assert report.cost_paise == sum(t.cost_paise for t in report.templates) > 0
    with store.session_scope(engine) as session:
        assert store.count_rows(session, store.Campaign) == 0


def test_new_account_number_needs_to_know_until_when_old_numbers_work(engine, settings):
    with pytest.raises(campaigns.OptionMissing, match="--old-valid-until"):
        campaigns.create(engine, "new-account-number", Filters(), cfg=settings)
    bad = settings.with_overrides(old_account_valid_until="31/05/2027")
    with pytest.raises(campaigns.OptionMissing, match="YYYY-MM-DD"):
        campaigns.create(engine, "new-account-number", Filters(), cfg=bad)
    with pytest.raises(campaigns.CampaignError, match="disconnection warnings only"):
        campaigns.create(
            engine,
            "new-account-number",
            Filters(min_dues_paise=100),
            cfg=settings,
            valid_until=VALID_UNTIL,
        )


def test_start_enqueues_batches_in_one_go_and_restart_is_safe(engine, settings, redis_conn):
    add_consumers(engine, 25)
    cid = campaigns.create(
        engine, "new-account-number", Filters(), cfg=settings, valid_until=VALID_UNTIL
    )
    started = campaigns.start(engine, redis_conn, cid, batch_size=10)
    assert (started.queued, started.jobs, started.state) == (25, 3, "running")
    queue = Queue(CAMPAIGNS, connection=redis_conn)
    assert queue.count == 3
    # Starting again re-queues the waiting recipients under a new generation.
    again = campaigns.start(engine, redis_conn, cid, batch_size=10)
    assert again.queued == 25
    with store.session_scope(engine) as session:
        assert session.get(store.Campaign, cid).generation == 2
    assert campaigns.pause(engine, redis_conn, cid) == states.PAUSED
    assert campaigns.status(engine, cid).state == "paused"
    assert campaigns.cancel(engine, redis_conn, cid) == 25
    st = campaigns.status(engine, cid)
    assert st.state == "cancelled" and st.skipped == {"cancelled": 25} and st.queued == 0
    with pytest.raises(campaigns.CampaignFinished):
        campaigns.resume(engine, redis_conn, cid)


def test_bad_quiet_hours_are_refused_before_anything_is_queued(engine, settings, redis_conn):
    add_consumers(engine, 2)
    bad = settings.with_overrides(quiet_hours="late evening")
    with pytest.raises(campaigns.CampaignError, match="BIJLI_QUIET_HOURS"):
        campaigns.create(engine, "new-account-number", Filters(), cfg=bad, valid_until=VALID_UNTIL)


def test_sweep_requeues_a_campaign_whose_jobs_were_lost(engine, settings, redis_conn, monkeypatch):
    monkeypatch.setenv("BIJLI_QUIET_HOURS", "off")
    from bot import connections

    connections.reset()
    add_consumers(engine, 6)
    cid = campaigns.create(
        engine, "new-account-number", Filters(), cfg=settings, valid_until=VALID_UNTIL
    )
    campaigns.start(engine, redis_conn, cid, batch_size=3)
    assert campaigns.sweep(engine, redis_conn) == []  # recent: not stalled
    redis_conn.flushdb()  # the jobs are lost
    assert campaigns.sweep(engine, redis_conn, stall_seconds=0) == [cid]
    assert Queue(CAMPAIGNS, connection=redis_conn).count == 1  # 6 recipients, one new batch
    with store.session_scope(engine) as session:
        assert session.get(store.Campaign, cid).generation == 2
    connections.reset()


def test_an_interrupted_selection_leaves_nothing_to_start(engine, settings, monkeypatch):
    add_consumers(engine, 3)
    from notifier import campaigns as module

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    monkeypatch.setattr(module, "_insert_recipients", broken)
    with pytest.raises(RuntimeError):
        campaigns.create(
            engine, "new-account-number", Filters(), cfg=settings, valid_until=VALID_UNTIL
        )
    with store.session_scope(engine) as session:
        assert store.count_rows(session, store.Campaign) == 0
        assert store.count_rows(session, store.CampaignRecipient) == 0


def test_a_campaign_still_selecting_cannot_be_started(engine, redis_conn):
    with store.session_scope(engine) as session:
        row = store.Campaign(name="x", kind="new-account-number", status="selecting")
        session.add(row)
        session.flush()
        cid = row.id
    with pytest.raises(campaigns.CampaignError, match="still selecting"):
        campaigns.start(engine, redis_conn, cid)


def test_the_cron_sweep_job_restarts_a_stalled_campaign_on_the_processes_connections(
    engine, settings, redis_conn, monkeypatch
):
    """``bijli cron`` runs :func:`campaigns.sweep_job` with no arguments, as RQ calls it."""
    monkeypatch.setenv("BIJLI_QUIET_HOURS", "off")
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setattr(campaigns, "STALL_SECONDS", 0)
    from bot import connections

    connections.reset()
    add_consumers(engine, 4)
    cid = campaigns.create(
        engine, "new-account-number", Filters(), cfg=settings, valid_until=VALID_UNTIL
    )
    campaigns.start(engine, redis_conn, cid, batch_size=10)
    redis_conn.flushdb()  # the batch job is lost
    assert campaigns.sweep_job() == f"restarted:{cid} sms_fallbacks:0"
    assert Queue(CAMPAIGNS, connection=redis_conn).count == 1
    connections.reset()
