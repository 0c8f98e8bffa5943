"""``/pay/<token>`` (the pay page and its QR) and ``/receipts/<no>`` (a receipt, HTML or PDF).

The page shows only what the stored intent and the configuration say: payee, account, month and
amount never come from the request. A token that is not ours (or was altered) gets 404, an expired
one 410; both pages say how to pay safely. A receipt opens only with its verification code, and
an unknown number answers exactly as a wrong code does.
"""

from __future__ import annotations

import base64
import logging

import requests
from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot import connections, paylinks, store
from bot.logfmt import kv
from bot.money import format_rupees
from bot.names import mask_name
from bot.payments import receipts, texts, words
from bot.settings import PaymentsNotConfigured
from bot.web import app_settings

log = logging.getLogger(__name__)

bp = Blueprint("payments_pages", __name__, template_folder="templates")

#: Seconds the web process waits for the fake gateway when simulating a payment.
SIMULATE_TIMEOUT = 10.0


@bp.after_request
def _private(response: Response) -> Response:
    # The URL holds a token or a receipt code: keep it out of caches, referrers and frames.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _intent(token: str) -> tuple[store.PaymentIntent | None, int]:
    """The intent of a valid token and 200, else None and 410 (expired) or 404."""
    cfg = app_settings()
    with connections.session(cfg) as session:
        try:
            return paylinks.intent_for_token(session, cfg, token), 200
        except paylinks.ExpiredLink:
            return None, 410
        except paylinks.InvalidLink:
            return None, 404
        except PaymentsNotConfigured as exc:
            log.error(kv("payments_not_configured", reason=str(exc)))
            abort(503)


def _uri(intent: store.PaymentIntent) -> str:
    """The intent's UPI string; 503 while its discom's payee is not configured."""
    try:
        return paylinks.intent_uri(app_settings(), intent)
    except PaymentsNotConfigured as exc:
        log.error(kv("payments_not_configured", discom=intent.discom, reason=str(exc)))
        abort(503)


def _link_error(status: int) -> ResponseReturnValue:
    return render_template("pay_error.html", expired=status == 410), status


@bp.get("/pay/<token>")
def pay_page(token: str) -> ResponseReturnValue:
    """The pay page: payee, account, month, amount, the UPI QR and a button for UPI apps."""
    cfg = app_settings()
    intent, status = _intent(token)
    if intent is None:
        return _link_error(status)
    with connections.session(cfg) as session:
        consumer = store.consumer_by_account(session, intent.new_account_no)
        paid = [
            p
            for p in store.payments_for_account(session, intent.new_account_no, limit=20)
            if p.intent_id == intent.id and p.status == "paid"
        ]
    uri = _uri(intent)
    qr = base64.b64encode(receipts.qr_png(uri, box_size=6)).decode()
    month = intent.bill_month
    return render_template(
        "pay.html",
        token=token,
        payee=paylinks.payee(cfg, intent.discom),
        consumer_name=mask_name(consumer.name) if consumer else "***",
        new_account_no=intent.new_account_no,
        old_account_no=consumer.old_account_no if consumer else None,
        bill_month=f"{month[5:]}/{month[:4]}" if month else None,
        amount=format_rupees(intent.amount_paise),
        upi_uri=uri,
        qr_data=qr,
        paid_receipt=paid[0].receipt_no if paid else None,
        simulate=_fake_gateway_in_use(),
        simulated=request.args.get("simulated") == "1",
        labels={k: texts.both(k) for k in ("account_new", "account_old", "bill_month", "advance")},
    )


@bp.get("/pay/<token>/qr.png")
def pay_qr(token: str) -> ResponseReturnValue:
    """The pay link's UPI QR as a PNG (what WhatsApp receives as media)."""
    found, _ = _intent(token)
    if found is None:
        abort(404)
    png = receipts.qr_png(_uri(found))
    return Response(png, mimetype="image/png")


def _fake_gateway_in_use() -> bool:
    cfg = app_settings()
    return cfg.twilio_is_dev and cfg.razorpay_is_dev and bool(cfg.razorpay_api_base_url)


@bp.post("/pay/<token>/simulate")
def simulate(token: str) -> ResponseReturnValue:
    """Development only: ask the fake gateway to pay this intent, as a UPI app would."""
    if not _fake_gateway_in_use():
        abort(404)
    found, status = _intent(token)
    if found is None:
        return _link_error(status)
    cfg = app_settings()
    assert cfg.razorpay_api_base_url is not None
    response = requests.post(
        f"{cfg.razorpay_api_base_url.rstrip('/')}/_fake/payments",
        json={
            "amount": found.amount_paise,
            "currency": "INR",
            "method": "upi",
            "vpa": "consumer@okdemo",
            "notes": {"intent_id": found.id},
        },
        auth=(cfg.razorpay_key_id, cfg.razorpay_key_secret),
        timeout=SIMULATE_TIMEOUT,
    )
    log.info(kv("payment_simulated", intent=found.id, status=response.status_code))
    if response.status_code >= 300:
        abort(502)
    return redirect(url_for("payments_pages.pay_page", token=token, simulated="1"), code=303)


@bp.get("/receipts/<receipt_no>")
def receipt_page(receipt_no: str) -> ResponseReturnValue:
    """A receipt as a page, with a link to its PDF."""
    cfg = app_settings()
    code = request.args.get("code", "")
    with connections.session(cfg) as session:
        found = receipts.find_receipt(session, cfg, receipt_no, code)
    if found is None:
        abort(404)
    return render_template(
        "receipt.html",
        receipt=found,
        pdf_url=paylinks.receipt_url(cfg, found.receipt_no, found.code, pdf=True),
        words_en=words.rupees_en(found.amount_paise),
        words_hi=words.rupees_hi(found.amount_paise),
        t={
            k: texts.both(k)
            for k in (
                "receipt_title",
                "receipt_no",
                "account_new",
                "account_old",
                "consumer_name",
                "amount",
                "amount_words",
                "bill_month",
                "advance",
                "utr",
                "paid_at",
                "verification_code",
                "billing_closed_note",
            )
        },
    )


@bp.get("/receipts/<receipt_no>.pdf")
def receipt_pdf(receipt_no: str) -> ResponseReturnValue:
    """A receipt as its PDF."""
    cfg = app_settings()
    code = request.args.get("code", "")
    with connections.session(cfg) as session:
        found = receipts.find_receipt(session, cfg, receipt_no, code)
    if found is None:
        abort(404)
    return Response(
        receipts.render_pdf(found),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{found.receipt_no}.pdf"'},
    )


__all__ = ["bp", "mask_name"]
