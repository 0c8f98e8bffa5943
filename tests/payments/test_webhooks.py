"""Razorpay webhooks: signature, replay, duplicate UTR, unknown intent, wrong amount, receipts."""

from __future__ import annotations

import datetime as dt
import threading

from rq import Queue
from sqlalchemy import select
from werkzeug.serving import make_server

from bot import store
from bot.dev import fake_razorpay
from bot.payments import jobs, ledger
from tests.payments.conftest import ACCOUNT, add_bill, add_consumer, make_intent, payment_entity


def _payments(engine) -> list[store.Payment]:
    with store.session_scope(engine) as session:
        return list(session.execute(select(store.Payment).order_by(store.Payment.id)).scalars())


def _notices(engine) -> list[store.PaymentNotice]:
    with store.session_scope(engine) as session:
        return list(
            session.execute(select(store.PaymentNotice).order_by(store.PaymentNotice.id)).scalars()
        )


def _outstanding(engine) -> int:
    with store.session_scope(engine) as session:
        bill = store.latest_bill(session, ACCOUNT)
        return store.outstanding_paise(session, bill)


def _receipt_jobs(redis_conn) -> list[str]:
    return Queue("notifications", connection=redis_conn).get_job_ids()


def test_a_captured_payment_is_credited_receipted_and_reduces_the_dues(
    post_webhook, settings, engine, redis_conn
):
    add_consumer(engine)
    add_bill(engine, due=154350)
    intent_id, _ = make_intent(engine, settings, 154350)
    response = post_webhook(payment_entity(intent_id, 154350))
    assert response.status_code == 200
    assert response.get_json() == {"results": [{"outcome": "credited", "replay": False}]}
    [payment] = _payments(engine)
    assert (payment.status, payment.amount_paise, payment.utr, payment.intent_id) == (
        "paid",
        154350,
        "612345678901",
        intent_id,
    )
    # 2026-12-01 is in financial year 2026-27.
    assert payment.receipt_no == "KESCO-2627-000001"
    assert len(payment.receipt_code) == ledger.CODE_LENGTH
    assert payment.applied_at is not None
    assert _outstanding(engine) == 0
    assert _receipt_jobs(redis_conn) == [jobs.receipt_job_id(payment.id)]


def test_a_replayed_webhook_changes_nothing(post_webhook, settings, engine, redis_conn):
    add_consumer(engine)
    add_bill(engine)
    intent_id, _ = make_intent(engine, settings)
    entity = payment_entity(intent_id, 154350)
    assert post_webhook(entity).status_code == 200
    before = [(p.id, p.receipt_no, p.receipt_code) for p in _payments(engine)]
    with store.session_scope(engine) as session:
        session.get(store.Payment, before[0][0]).receipt_sent_at = store.utcnow()
    redis_conn.delete(*redis_conn.keys("rq:*"))
    again = post_webhook(entity)
    assert again.get_json() == {"results": [{"outcome": "credited", "replay": True}]}
    assert [(p.id, p.receipt_no, p.receipt_code) for p in _payments(engine)] == before
    assert len(_notices(engine)) == 1
    assert _receipt_jobs(redis_conn) == []  # the receipt went out already: not sent again


def test_a_replay_before_the_receipt_went_out_queues_it_again(
    post_webhook, settings, engine, redis_conn
):
    add_consumer(engine)
    intent_id, _ = make_intent(engine, settings)
    entity = payment_entity(intent_id, 154350)
    post_webhook(entity)
    redis_conn.delete(*redis_conn.keys("rq:*"))
    assert post_webhook(entity).get_json()["results"][0]["replay"] is True
    [payment] = _payments(engine)
    assert _receipt_jobs(redis_conn) == [jobs.receipt_job_id(payment.id)]


def test_a_second_payment_id_with_the_same_utr_is_not_credited_twice(
    post_webhook, settings, engine
):
    add_consumer(engine)
    add_bill(engine, due=300000)
    first, _ = make_intent(engine, settings, 150000)
    second, _ = make_intent(engine, settings, 150000)
    post_webhook(payment_entity(first, 150000, payment_id="pay_A0000000000001"))
    response = post_webhook(payment_entity(second, 150000, payment_id="pay_B0000000000002"))
    assert response.get_json()["results"] == [{"outcome": "duplicate_utr", "replay": False}]
    assert len(_payments(engine)) == 1
    assert _outstanding(engine) == 150000
    assert [n.outcome for n in _notices(engine)] == ["credited", "duplicate_utr"]


def test_an_unknown_intent_is_recorded_for_reconciliation(post_webhook, settings, engine):
    add_consumer(engine)
    for intent_ref in ("BSPNOSUCHINTENT", None):
        entity = payment_entity(
            intent_ref, 50000, payment_id=f"pay_U{intent_ref or 'none'}", rrn=None
        )
        response = post_webhook(entity)
        assert response.status_code == 200
        assert response.get_json()["results"][0]["outcome"] == "unknown_intent"
    assert _payments(engine) == []
    notices = _notices(engine)
    assert [(n.outcome, n.intent_ref, n.amount_paise) for n in notices] == [
        ("unknown_intent", "BSPNOSUCHINTENT", 50000),
        ("unknown_intent", None, 50000),
    ]
    with store.session_scope(engine) as session:
        actions = [a.action for a in session.query(store.AuditLog)]
    assert actions == ["payment_unknown_intent", "payment_unknown_intent"]


def test_a_different_amount_is_recorded_and_flagged_not_credited(post_webhook, settings, engine):
    add_consumer(engine)
    add_bill(engine, due=154350)
    intent_id, _ = make_intent(engine, settings, 154350)
    for payment_id, amount, currency in (
        ("pay_LESS00000000001", 100, "INR"),
        ("pay_MORE00000000001", 154351, "INR"),
        ("pay_USD000000000001", 154350, "USD"),
    ):
        entity = payment_entity(
            intent_id, amount, payment_id=payment_id, rrn=None, currency=currency
        )
        assert post_webhook(entity).get_json()["results"][0]["outcome"] == "amount_mismatch"
    assert _payments(engine) == []
    assert _outstanding(engine) == 154350
    assert {n.outcome for n in _notices(engine)} == {"amount_mismatch"}


def test_bad_signatures_are_refused_and_nothing_is_recorded(post_webhook, settings, engine):
    add_consumer(engine)
    intent_id, _ = make_intent(engine, settings)
    entity = payment_entity(intent_id, 154350)
    body = fake_razorpay.event_body(entity)
    good = fake_razorpay.sign(body, settings.razorpay_webhook_key)
    altered = body.replace(b'"amount":154350', b'"amount":100')
    for kwargs in (
        {"signature": ""},  # no header
        {"signature": "0" * 64},
        {"signature": fake_razorpay.sign(body, "not-the-secret")},
        {"signature": good, "body": altered},  # signed, then changed on the way
        {"signature": good.upper()},
    ):
        response = post_webhook(entity, **kwargs)
        assert response.status_code == 400, kwargs
    assert _notices(engine) == [] and _payments(engine) == []
    assert post_webhook(entity, signature=good, body=body).status_code == 200  # control


def test_other_events_and_malformed_bodies(post_webhook, settings, client):
    failed = fake_razorpay.event_body(payment_entity("BSPX", 100)).replace(
        b"payment.captured", b"payment.failed"
    )
    assert post_webhook({}, body=failed).get_json() == {"results": []}
    for raw in (
        b"not json",
        b"[]",
        b'{"event":"payment.captured","payload":{}}',
        b'{"event":"payment.captured","payload":{"payment":{"entity":{"id":"pay_1","amount":"100"}}}}',
        b"\xff\xfe",
    ):
        assert post_webhook({}, body=raw).status_code == 400, raw
    assert client.post("/payments/razorpay/webhook", data=b"x" * 70_000).status_code == 413
    assert client.post("/payments/nosuchgateway/webhook", data=b"{}").status_code == 404


def test_receipt_numbers_run_per_discom_and_financial_year(settings, engine):
    add_consumer(engine)
    add_consumer(engine, "2234567890", old=None, discom="PVVNL", mobile=None)
    moments = [
        ("KESCO", dt.datetime(2026, 3, 31, 18, 29)),  # 23:59 IST on 31 March: 2025-26
        ("KESCO", dt.datetime(2026, 3, 31, 18, 31)),  # 00:01 IST on 1 April: 2026-27
        ("KESCO", dt.datetime(2026, 11, 1, 6, 0)),
        ("PVVNL", dt.datetime(2026, 11, 1, 6, 0)),
    ]
    with store.session_scope(engine) as session:
        got = [ledger.next_receipt_number(session, d, m) for d, m in moments]
    assert got == [
        "KESCO-2526-000001",
        "KESCO-2627-000001",
        "KESCO-2627-000002",
        "PVVNL-2627-000001",
    ]


def test_receipt_numbers_are_gap_free_under_20_concurrent_callbacks(app, settings, engine):
    """20 payments and 20 replays at once, over real HTTP: receipts 1..20, each once."""
    add_consumer(engine)
    intents = [make_intent(engine, settings, 10000 + n)[0] for n in range(20)]
    bodies = []
    for n, intent_id in enumerate(intents):
        body = fake_razorpay.event_body(
            payment_entity(intent_id, 10000 + n, payment_id=f"pay_C{n:015d}", rrn=f"7{n:011d}")
        )
        bodies += [body, body]  # every callback also arrives twice at once
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/payments/razorpay/webhook"
    statuses: list[int] = []
    start = threading.Barrier(len(bodies))

    def post(body: bytes) -> None:
        import requests

        start.wait()
        sig = fake_razorpay.sign(body, settings.razorpay_webhook_key)
        statuses.append(
            requests.post(
                url, data=body, headers={"X-Razorpay-Signature": sig}, timeout=60
            ).status_code
        )

    threads = [threading.Thread(target=post, args=(b,)) for b in bodies]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    finally:
        server.shutdown()
        server.server_close()
    assert statuses == [200] * 40
    payments = _payments(engine)
    numbers = sorted(int(p.receipt_no.rsplit("-", 1)[1]) for p in payments)
    assert numbers == list(range(1, 21))
    assert len({p.intent_id for p in payments}) == 20
    assert len(_notices(engine)) == 20
    with store.session_scope(engine) as session:
        counter = session.get(store.ReceiptCounter, ("KESCO", "2026-27"))
        assert counter.last_no == 20


def test_redis_down_answers_503_then_the_gateways_retry_queues_the_receipt(
    settings, engine, redis_conn
):
    """The payment is stored before the receipt job is queued; a retry after 503 queues it."""
    from bot import create_app
    from bot.dev.embedded_redis import free_port

    add_consumer(engine)
    intent_id, _ = make_intent(engine, settings)
    body = fake_razorpay.event_body(payment_entity(intent_id, 154350))
    headers = {"X-Razorpay-Signature": fake_razorpay.sign(body, settings.razorpay_webhook_key)}
    # Nothing listens on this port: a real refused connection, as when Redis is down.
    down = create_app(settings.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    response = down.test_client().post("/payments/razorpay/webhook", data=body, headers=headers)
    assert response.status_code == 503
    [payment] = _payments(engine)
    assert payment.receipt_no == "KESCO-2627-000001"  # credited once, whatever happens next
    assert _receipt_jobs(redis_conn) == []
    up = create_app(settings)
    retry = up.test_client().post("/payments/razorpay/webhook", data=body, headers=headers)
    assert retry.get_json() == {"results": [{"outcome": "credited", "replay": True}]}
    assert _receipt_jobs(redis_conn) == [jobs.receipt_job_id(payment.id)]
    assert [p.receipt_no for p in _payments(engine)] == ["KESCO-2627-000001"]
