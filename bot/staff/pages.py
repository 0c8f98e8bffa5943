"""``/admin/verification``: coverage by area, visits per reader per day, and the mobile changes
officers approve or reject.

Behind the admin shell's guard (sign-in, and the CSRF token of every form posted under /admin).
Anyone signed in sees the figures; only officers and admins decide changes, and only they see
the numbers in full (agents see them masked, as in the inbox).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from dataclasses import dataclass

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from bot import connections, store, verification
from bot.clock import to_ist, utcnow
from bot.logfmt import kv
from bot.phone import mask
from bot.settings import Settings
from bot.staff import approvals
from bot.staff import report as staff_report
from bot.web import app_settings

log = logging.getLogger(__name__)

bp = Blueprint(
    "verification",
    __name__,
    url_prefix="/admin/verification",
    template_folder="templates",
    static_folder="static",
)

#: Roles that may approve or reject a mobile change, and see mobiles in full.
DECIDING_ROLES = frozenset({"officer", "admin"})
#: Days of visits per reader shown for an area (the CSV and the CLI have them all).
DAYS_SHOWN = 14
#: The coverage chart's geometry, in SVG user units.
BAR_HEIGHT = 22
BAR_GAP = 8
LABEL_WIDTH = 180
BAR_WIDTH = 400


def init_app(app: Flask, cfg: Settings) -> None:
    """Register the verification pages."""
    app.register_blueprint(bp)


def _decides() -> bool:
    return current_user.role in DECIDING_ROLES


def _shown(mobile: str | None) -> str:
    if not mobile:
        return "—"
    return mobile if _decides() else mask(mobile)


@dataclass(frozen=True)
class Bar:
    """One area's bar in the coverage chart."""

    area: str
    percent: int
    y: int
    width: int
    label: str


def _bars(figures: list[verification.AreaFigures]) -> list[Bar]:
    return [
        Bar(
            area=f.area,
            percent=f.percent,
            y=i * (BAR_HEIGHT + BAR_GAP),
            width=max(round(BAR_WIDTH * f.informed / f.total), 0) if f.total else 0,
            label=f"{f.informed}/{f.total} ({f.percent}%)",
        )
        for i, f in enumerate(figures)
    ]


@dataclass(frozen=True)
class ChangeRow:
    id: int
    account: str
    name: str
    area: str
    old: str
    new: str
    reader: str
    asked: str


def _change_rows(session: store.Session, area: str | None) -> list[ChangeRow]:
    rows = []
    for change in verification.pending_changes(session, area):
        consumer = store.consumer_by_account(session, change.new_account_no)
        reader = session.get(store.Staff, change.requested_by)
        rows.append(
            ChangeRow(
                id=change.id,
                account=change.new_account_no,
                name=consumer.name if consumer else "",
                area=consumer.area if consumer else "",
                old=_shown(change.old_mobile),
                new=_shown(change.new_mobile),
                reader=reader.name if reader else f"#{change.requested_by}",
                asked=f"{to_ist(change.created_at):%d-%m-%Y %H:%M}",
            )
        )
    return rows


@bp.get("/")
def index() -> ResponseReturnValue:
    """Coverage by area (chart and table); an area's readers per day; pending mobile changes."""
    area = request.args.get("area") or None
    with connections.session(app_settings()) as session:
        areas = verification.areas(session)
        if area is not None and area not in areas:
            abort(404)
        figures = [verification.area_figures(session, a) for a in areas]
        days: list[verification.ReaderDayRow] = []
        if area is not None:
            (detail,) = staff_report.build(session, [area])
            cutoff = to_ist(utcnow()).date() - dt.timedelta(days=DAYS_SHOWN)
            days = [d for d in detail.days if d.day > cutoff]
        changes = _change_rows(session, area)
        caps = [
            (f"{to_ist(e.at):%d-%m-%Y %H:%M}", e.actor, e.detail)
            for e in verification.cap_events(session)
        ]
    bars = _bars(figures)
    return render_template(
        "staff/verification.html",
        area=area,
        figures=figures,
        bars=bars,
        chart_height=max(len(bars) * (BAR_HEIGHT + BAR_GAP), BAR_HEIGHT),
        bar_height=BAR_HEIGHT,
        label_width=LABEL_WIDTH,
        bar_width=BAR_WIDTH,
        days=days,
        days_shown=DAYS_SHOWN,
        changes=changes,
        caps=caps,
        decides=_decides(),
    )


@bp.get("/report.csv")
def report_csv() -> ResponseReturnValue:
    """The report as CSV (every day), for one area or all."""
    area = request.args.get("area") or None
    with connections.session(app_settings()) as session:
        areas = verification.areas(session)
        if area is not None and area not in areas:
            abort(404)
        reports = staff_report.build(session, [area] if area else areas)
    out = io.StringIO()
    staff_report.write_csv(out, reports)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=verification.csv"},
    )


def _decide(change_id: int, approve: bool) -> ResponseReturnValue:
    if not _decides():
        abort(403)
    by = f"operator:{current_user.username}"
    try:
        with connections.session(app_settings()) as session:
            decision = approvals.decide(session, change_id, approve=approve, decided_by=by)
    except approvals.ChangeNotFound:
        abort(404)
    except approvals.AlreadyDecided as exc:
        flash(str(exc))
        return redirect(url_for("verification.index"))
    queued = approvals.notify(connections.redis(app_settings()), decision)
    log.info(kv("mobile_change_page", change=change_id, status=decision.status, by=by))
    if decision.status == approvals.APPROVED:
        flash(
            f"Change {change_id} approved: account {decision.new_account_no} now has "
            f"{_shown(decision.new_mobile)}; {len(queued)} SMS notices queued "
            "(old and new number)."
        )
    else:
        flash(f"Change {change_id} rejected: the registered mobile stays.")
    return redirect(url_for("verification.index", area=request.form.get("area") or None))


@bp.post("/changes/<int:change_id>/approve")
def approve(change_id: int) -> ResponseReturnValue:
    """Approve a pending change (officers and admins)."""
    return _decide(change_id, True)


@bp.post("/changes/<int:change_id>/reject")
def reject(change_id: int) -> ResponseReturnValue:
    """Reject a pending change (officers and admins)."""
    return _decide(change_id, False)


__all__ = ["bp", "init_app"]
