"""`bijli import bank-statement` and `bijli billing`: reconciliation, bad lines, closing."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from bot import store
from bot.cli import main
from bot.payments import ledger, statement
from tests.payments.conftest import ACCOUNT, add_bill, add_consumer, make_intent, payment_entity


def _write(tmp_path, rows: list[str], name: str = "statement.csv"):
    path = tmp_path / name
    path.write_text("utr,amount,credited_at,reference\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _payments(engine) -> list[store.Payment]:
    with store.session_scope(engine) as session:
        return list(session.execute(select(store.Payment).order_by(store.Payment.id)).scalars())


def test_statement_credits_what_matches_and_reports_the_rest(settings, engine, tmp_path):
    add_consumer(engine)
    add_bill(engine, due=300000)
    paid_by_webhook, _ = make_intent(engine, settings, 100000)
    never_called_back, _ = make_intent(engine, settings, 150000)
    wrong_amount, _ = make_intent(engine, settings, 50000)
    from bot.payments.gateways.razorpay import captured_from_entity

    ledger.record_once(
        engine, captured_from_entity(payment_entity(paid_by_webhook, 100000, rrn="612345678901"))
    )
    path = _write(
        tmp_path,
        [
            f"612345678901,1000.00,2026-12-01T11:40:00,{paid_by_webhook}",  # the webhook's
            f"622345678901,1500.00,2026-12-01T12:05:00,{never_called_back}",
            f"632345678901,400.00,2026-12-01T12:30:00,{wrong_amount}",
            "642345678901,250.00,2026-12-01T13:00:00,",  # no reference: a person looks
        ],
    )
    report = statement.import_statement(engine, path)
    assert report.ok and report.errors == []
    assert report.outcomes == {
        "duplicate_utr": 1,
        "credited": 1,
        "amount_mismatch": 1,
        "unknown_intent": 1,
    }
    assert [(line, utr, outcome) for line, utr, _, outcome in report.unmatched] == [
        (4, "632345678901", "amount_mismatch"),
        (5, "642345678901", "unknown_intent"),
    ]
    payments = _payments(engine)
    assert [(p.intent_id, p.source, p.utr) for p in payments] == [
        (paid_by_webhook, "razorpay", "612345678901"),
        (never_called_back, "bank_statement", "622345678901"),
    ]
    assert report.credited == [payments[1].id]
    assert payments[1].receipt_no == "KESCO-2627-000002"
    summary = report.summary()
    assert "1 credited and receipted, 1 already credited, 2 for reconciliation by hand" in summary
    assert "line 4: UTR 632345678901, ₹400.00: amount differs from the pay link" in summary

    again = statement.import_statement(engine, path)
    assert again.ok and again.replays == 4 and sum(again.outcomes.values()) == 0
    assert len(_payments(engine)) == 2


def test_bad_lines_are_reported_and_change_nothing(settings, engine, tmp_path):
    add_consumer(engine)
    intent_id, _ = make_intent(engine, settings, 150000)
    path = _write(
        tmp_path,
        [
            f"622345678901,1500.00,2026-12-01T12:05:00,{intent_id}",
            "12AB,abc,yesterday,BSP-1",
            "622345678901,0,2026-12-01T12:05:00,",
        ],
    )
    report = statement.import_statement(engine, path)
    assert not report.ok
    assert report.errors == [
        (3, "utr", "must be 12 to 22 letters or digits"),
        (3, "amount", "must be rupees, e.g. 1543.50"),
        (3, "credited_at", "must be an ISO date-time, e.g. 2026-11-30T18:05"),
        (3, "reference", "must be the UPI tr: letters and digits only"),
        (4, "utr", "repeats line 2"),
        (4, "amount", "must be more than zero"),
    ]
    assert _payments(engine) == []
    skipped = statement.import_statement(engine, path, skip_bad_rows=True)
    assert skipped.ok and skipped.outcomes == {"credited": 1}


def test_cli_import_bank_statement(settings, engine, tmp_path, monkeypatch):
    add_consumer(engine)
    intent_id, _ = make_intent(engine, settings, 150000)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    from bot import connections

    connections.reset()
    path = _write(tmp_path, [f"622345678901,1500.00,2026-12-01T12:05:00,{intent_id}"])
    result = CliRunner().invoke(main, ["import", "bank-statement", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 credited and receipted" in result.output
    assert "1 receipt(s) queued for delivery" in result.output
    bad = _write(tmp_path, ["x,1,2026-12-01T12:05:00,"], name="bad.csv")
    result = CliRunner().invoke(main, ["import", "bank-statement", str(bad)])
    assert result.exit_code == 1 and "line 2, column utr" in result.output
    connections.reset()


def test_billing_closing_keeps_payments_receipted_and_reconcile_posts_them(
    settings, engine, post_webhook, monkeypatch
):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    from bot import connections

    connections.reset()
    add_consumer(engine)
    add_bill(engine, due=154350)
    runner = CliRunner()
    closed = runner.invoke(main, ["billing", "closing", "on", "--discom", "KESCO"])
    assert closed.exit_code == 0 and "KESCO: billing closed from" in closed.output

    intent_id, _ = make_intent(engine, settings, 154350)
    assert (
        post_webhook(payment_entity(intent_id, 154350)).get_json()["results"][0]["outcome"]
        == "credited"
    )
    [payment] = _payments(engine)
    assert payment.receipt_no and payment.applied_at is None  # receipted, not posted yet

    waiting = runner.invoke(main, ["billing", "reconcile"])
    assert "0 payment(s) posted to billing now" in waiting.output
    assert "1 payment(s) waiting: billing still closed, ₹1,543.50" in waiting.output
    assert _payments(engine)[0].applied_at is None

    assert (
        "KESCO: billing reopened"
        in runner.invoke(main, ["billing", "closing", "off", "--discom", "KESCO"]).output
    )
    dry = runner.invoke(main, ["billing", "reconcile", "--dry-run"])
    assert "1 payment(s) posted to billing now, ₹1,543.50" in dry.output
    assert _payments(engine)[0].applied_at is None
    posted = runner.invoke(main, ["billing", "reconcile"])
    assert f"KESCO {ACCOUNT} ₹1,543.50 receipt {payment.receipt_no}" in posted.output
    assert _payments(engine)[0].applied_at is not None
    assert "0 payment(s) posted" in runner.invoke(main, ["billing", "reconcile"]).output
    assert runner.invoke(main, ["billing", "closing", "on", "--discom", "XYZ"]).exit_code != 0
    connections.reset()
