"""``bijli campaign``, ``bijli holiday`` and ``bijli moratorium`` from the command line."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from click.testing import CliRunner
from rq import Queue
from sqlalchemy import select

from bot import connections, store
from bot.cli import main
from bot.queues import CAMPAIGNS
from tests.notifier.conftest import add_consumers


@pytest.fixture()
def bijli(settings, engine, redis_conn, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("BIJLI_OLD_ACCOUNT_VALID_UNTIL", "2027-05-31")
    connections.reset()
    runner = CliRunner()

    def run(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        result = runner.invoke(main, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    yield run
    connections.reset()


def test_campaign_from_dry_run_to_cancel(bijli, engine, redis_conn):
    add_consumers(engine, 8, meter_type="smart_prepaid", dues_paise=16_000_00)
    add_consumers(engine, 3, start=8, meter_type="smart_prepaid", dues_paise=9_000_00)
    dry = bijli(
        "campaign",
        "create",
        "disconnection-warning",
        "--min-dues",
        "15000",
        "--meter-type",
        "smart_prepaid",
        "--dry-run",
    ).output
    assert "selected: 8" in dry
    assert "sms/en: 3" in dry and "whatsapp/hi: 2" in dry
    assert "UCS-2" in dry and "GSM-7" in dry and "estimated cost: ₹" in dry
    assert "DLT template 1107000000000000103" in dry and "header KESCOB" in dry
    with store.session_scope(engine) as session:
        assert store.count_rows(session, store.Campaign) == 0

    created = bijli(
        "campaign",
        "create",
        "disconnection-warning",
        "--min-dues",
        "15000",
        "--meter-type",
        "smart_prepaid",
        "--name",
        "drive",
    ).output
    cid = re.search(r"campaign (\d+) created", created).group(1)
    assert "selected 8" in created
    assert "settled" in created  # the progress bar
    started = bijli("campaign", "start", cid, "--batch-size", "3").output
    assert "8 recipient(s) queued in 3 job(s)" in started and ": running" in started
    assert Queue(CAMPAIGNS, connection=redis_conn).count == 3
    assert ": paused" in bijli("campaign", "pause", cid).output
    assert ": running" in bijli("campaign", "resume", cid).output
    cancelled = bijli("campaign", "cancel", cid).output
    assert "8 recipient(s) skipped" in cancelled and ": cancelled" in cancelled
    listing = bijli("campaign", "status").output
    assert f"{cid}\tdisconnection-warning\tcancelled\tselected 8" in listing
    again = bijli("campaign", "resume", cid, ok=False)
    assert again.exit_code == 1 and f"campaign {cid} is cancelled" in again.output


def test_bad_filters_and_missing_options_get_a_clear_answer(bijli, monkeypatch):
    monkeypatch.delenv("BIJLI_OLD_ACCOUNT_VALID_UNTIL")
    connections.reset()
    result = bijli("campaign", "create", "new-account-number", ok=False)
    assert result.exit_code == 1 and "--old-valid-until" in result.output
    result = bijli("campaign", "create", "new-account-number", "--discom", "XYZ", ok=False)
    assert "unknown discom" in result.output
    assert "no campaign 999999" in bijli("campaign", "status", "999999", ok=False).output


def test_holidays_one_by_one_and_from_a_csv(bijli, engine, tmp_path):
    assert "added" in bijli("holiday", "add", "2026-12-25", "--name", "Christmas").output
    assert "unchanged" in bijli("holiday", "add", "2026-12-25", "--name", "Christmas").output
    bad = tmp_path / "bad.csv"
    bad.write_text("date,name\n2027-01-26,Republic Day\n26/01/2027,Oops\n", encoding="utf-8")
    result = bijli("holiday", "import", str(bad), ok=False)
    assert result.exit_code == 1 and "line 3, column date" in result.output
    with store.session_scope(engine) as session:
        assert store.count_rows(session, store.Holiday) == 1  # nothing from the bad file
    good = tmp_path / "holidays.csv"
    good.write_text("date,name\n2027-01-26,Republic Day\n2027-03-04,होली\n", encoding="utf-8")
    assert "2 added" in bijli("holiday", "import", str(good)).output
    assert "2 unchanged" in bijli("holiday", "import", str(good)).output


def test_moratorium_add_in_ist_for_every_discom_by_default(bijli, engine):
    out = bijli(
        "moratorium",
        "add",
        "--from",
        "2026-12-10 10:00",
        "--to",
        "2026-12-12",
        "--reason",
        "billing upgrade",
    ).output
    assert "5 row(s)" in out
    with store.session_scope(engine) as session:
        rows = session.execute(select(store.Moratorium)).scalars().all()
    assert {r.discom for r in rows} == set(store.DISCOMS)
    assert rows[0].starts_at == dt.datetime(2026, 12, 10, 4, 30)  # 10:00 IST
    assert rows[0].ends_at == dt.datetime(2026, 12, 12, 18, 30)  # the whole of the 12th
    refused = bijli(
        "moratorium", "add", "--from", "2026-12-12", "--to", "2026-12-10", "--reason", "x", ok=False
    )
    assert "must end after it starts" in refused.output
