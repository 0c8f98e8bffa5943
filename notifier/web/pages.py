"""``/admin/campaigns``: list, dry-run, create, start, pause, resume, cancel and watch campaigns.

Behind the admin shell's guard (signed-in operators; a CSRF token on every form posted under
/admin). Everything goes through :mod:`notifier.campaigns`, as ``bijli campaign …`` does, so the
page and the CLI obey the same rules. A dry run, a creation, a start and a resume take minutes
on 5.3 lakh consumers, so the page hands them to a worker (:mod:`notifier.tasks`) and watches
the job; pause and cancel are immediate. Agents may watch; officers and admins
(:data:`ACT_ROLES`) run campaigns. Pages refresh themselves with the shell's poll header, so a
page left open does not keep a session alive.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis
import yaml
from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy.engine import Engine
from wtforms import DateField, DecimalField, HiddenField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from bot import connections
from bot.clock import to_ist
from bot.logfmt import kv
from bot.settings import Settings
from bot.store import DISCOMS, METER_TYPES, Campaign, audit, session_scope
from bot.web import app_settings
from notifier import campaigns, messages, tasks
from notifier.selection import Filters
from notifier.web import chart

log = logging.getLogger(__name__)

bp = Blueprint(
    "campaigns",
    __name__,
    url_prefix="/admin/campaigns",
    template_folder="templates",
    static_folder="static",
)

#: Roles that may dry-run, create, start, pause, resume and cancel (agents only watch).
ACT_ROLES = frozenset({"officer", "admin"})
#: States whose page refreshes its figures by itself.
LIVE_STATES = frozenset({"selecting", "draft", "running", "held", "paused"})
#: Twilio's page for an error code.
TWILIO_ERROR_URL = "https://www.twilio.com/docs/api/errors/{code}"
#: What the common error codes mean, for people (the rest link to Twilio's page).
ERROR_MEANINGS: dict[str, str] = {
    str(code): str(text)
    for code, text in yaml.safe_load(
        (Path(__file__).with_name("twilio_errors.yml")).read_text(encoding="utf-8")
    ).items()
}
#: What a task's job id looks like (RQ's uuid4, or ours for a creation).
_JOB_ID = re.compile(
    r"^(?:[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}|campaign-create-[A-Za-z0-9_-]{16,40})$"
)


def init_app(app: Flask, cfg: Settings) -> None:
    """Register the campaign pages."""
    app.register_blueprint(bp)


def _engine() -> Engine:
    return connections.engine(app_settings())


def _redis() -> redis.Redis:
    return connections.redis(app_settings())


def _actor() -> str:
    return f"operator:{current_user.username}"


def _may_act() -> bool:
    return current_user.role in ACT_ROLES


def _require_act() -> None:
    if not _may_act():
        abort(403)


@bp.app_template_filter("ist_time")
def ist_time(moment: dt.datetime | None) -> str:
    """A moment (naive UTC, or aware) as IST for people: ``05-11-2026 14:30``."""
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return f"{to_ist(moment):%d-%m-%Y %H:%M}"


@bp.app_template_filter("rupees")
def rupees(paise: int | None) -> str:
    """Paise as rupees for people: ``₹1,234.50``."""
    return f"₹{(paise or 0) / 100:,.2f}"


class CampaignForm(FlaskForm):
    """A campaign's kind, the filters that select its consumers, and its options."""

    kind = SelectField("Kind", choices=[(k, k) for k in messages.KINDS])
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    discom = SelectField("Discom", choices=[("", "any")] + [(d, d) for d in DISCOMS], default="")
    area = StringField("Area", validators=[Optional(), Length(max=100)])
    meter_type = SelectField(
        "Meter type", choices=[("", "any")] + [(m, m) for m in METER_TYPES], default=""
    )
    min_dues = DecimalField(
        "Minimum dues (₹)", places=2, validators=[Optional(), NumberRange(min=0, max=10_000_000)]
    )
    accounts = StringField(
        "Only these accounts",
        validators=[
            Optional(),
            Regexp(r"^\s*\d{10}(?:[\s,]+\d{10})*\s*$", message="10-digit account numbers."),
        ],
    )
    valid_until = DateField("Old numbers work until", validators=[Optional()])
    notice_hours = IntegerField(
        "Hours of notice before a cut", validators=[Optional(), NumberRange(min=0, max=24 * 30)]
    )
    form_token = HiddenField(validators=[DataRequired(), Regexp(r"^[A-Za-z0-9_-]{16,40}$")])

    def filters(self) -> Filters:
        """The filters as :mod:`notifier.campaigns` takes them (empty ones mean any)."""
        min_dues = self.min_dues.data
        return Filters(
            discom=self.discom.data or None,
            areas=(self.area.data.strip(),) if self.area.data and self.area.data.strip() else (),
            meter_type=self.meter_type.data or None,
            min_dues_paise=int(Decimal(min_dues) * 100) if min_dues is not None else None,
            accounts=tuple(re.findall(r"\d{10}", self.accounts.data or "")),
        )

    def task_args(self) -> tuple[str, str, str | None, int | None]:
        """kind, filters (JSON), valid_until (ISO) and notice hours, as the tasks take them."""
        until = self.valid_until.data.isoformat() if self.valid_until.data else None
        return self.kind.data, self.filters().to_json(), until, self.notice_hours.data

    def fill_from(self, args: tuple[Any, ...]) -> None:
        """Show the values a dry run was asked with (its job's arguments)."""
        kind, filters_json, until, hours = args[:4]
        filters = Filters.from_json(filters_json)
        self.kind.data = kind
        self.discom.data = filters.discom or ""
        self.area.data = filters.areas[0] if filters.areas else ""
        self.meter_type.data = filters.meter_type or ""
        paise = filters.min_dues_paise
        self.min_dues.data = Decimal(paise) / 100 if paise is not None else None
        self.accounts.data = " ".join(filters.accounts)
        self.valid_until.data = dt.date.fromisoformat(until) if until else None
        self.notice_hours.data = hours


class ActionForm(FlaskForm):
    """A button: only its CSRF token."""


def _view(status: campaigns.CampaignStatus) -> dict[str, Any]:
    """What the templates draw from a :class:`notifier.campaigns.CampaignStatus`."""
    skipped = sum(status.skipped.values())
    return {
        "status": status,
        "progress": chart.progress(status.done, status.selected),
        "skipped": skipped,
        "excluded": sum(status.excluded.values()),
        "funnel": chart.funnel(
            status.selected, status.sent, status.delivered, status.read, status.failed, skipped
        ),
        "failures": [
            (code, count, ERROR_MEANINGS.get(code, code.replace("_", " ")))
            for code, count in sorted(
                status.failures_by_code.items(), key=lambda item: (-item[1], item[0])
            )
        ],
    }


def _task(job_id: str, wanted: frozenset[str]) -> Job:
    """The task job ``job_id`` when it is one of ``wanted`` (any other job is none of ours)."""
    if not _JOB_ID.match(job_id):
        abort(404)
    try:
        job = Job.fetch(job_id, connection=_redis())
    except NoSuchJobError:
        abort(404)
    if job.func_name not in wanted:
        abort(404)
    return job


def _new_form_token(form: CampaignForm) -> None:
    form.form_token.data = secrets.token_urlsafe(18)


@bp.get("/")
def index() -> ResponseReturnValue:
    """Every campaign, newest first, with its state and progress."""
    rows = [_view(status) for status in campaigns.list_campaigns(_engine())]
    return render_template("campaigns/index.html", rows=rows, may_act=_may_act())


@bp.route("/new", methods=["GET", "POST"])
def new() -> ResponseReturnValue:
    """The form: a dry run first (shown here when ``?preview=<job>``), then create a draft."""
    _require_act()
    form = CampaignForm()
    preview_job = None
    if request.method == "GET":
        _new_form_token(form)
        job_id = request.args.get("preview")
        if job_id:
            preview_job = _task(job_id, frozenset({tasks.PREVIEW}))
            form.fill_from(tuple(preview_job.args))
            form.name.data = str(preview_job.meta.get("name") or "")
        return render_template("campaigns/new.html", form=form, **_task_view(preview_job))
    if not form.validate_on_submit():
        return render_template("campaigns/new.html", form=form, **_task_view(None)), 400
    if request.form.get("action") == "create":
        kind, filters_json, until, hours = form.task_args()
        name = (form.name.data or "").strip() or None
        job_id = tasks.enqueue(
            _redis(),
            tasks.CREATE,
            kind,
            filters_json,
            name,
            until,
            hours,
            _actor(),
            job_id=f"campaign-create-{form.form_token.data}",
        )
        log.info(kv("campaign_create_requested", operator=current_user.username, job=job_id))
        return redirect(url_for("campaigns.task", job_id=job_id))
    # The name does not change a dry run; kept with the job so the form shows it again.
    job_id = tasks.enqueue(
        _redis(), tasks.PREVIEW, *form.task_args(), meta={"name": form.name.data or ""}
    )
    return redirect(url_for("campaigns.new", preview=job_id))


def _task_view(job: Job | None) -> dict[str, Any]:
    """A task's state for the templates: waiting, its outcome, or why it failed."""
    if job is None:
        return {"task": None}
    state = job.get_status(refresh=True)
    outcome = job.return_value() if state == "finished" else None
    failed = state in ("failed", "stopped", "canceled")
    return {
        "task": {"id": job.id, "state": str(state), "failed": failed},
        "outcome": outcome,
    }


@bp.get("/tasks/<job_id>")
def task(job_id: str) -> ResponseReturnValue:
    """A creation handed to a worker: waiting, then on to the new campaign (or why not)."""
    _require_act()
    job = _task(job_id, frozenset({tasks.CREATE}))
    view = _task_view(job)
    outcome = view.get("outcome")
    if outcome is not None and outcome.campaign_id is not None:
        flash("Created as a draft: nothing is sent until you start it.")
        return redirect(url_for("campaigns.show", campaign_id=outcome.campaign_id))
    return render_template("campaigns/task.html", **view)


@bp.get("/<int:campaign_id>")
def show(campaign_id: int) -> ResponseReturnValue:
    """A campaign: progress, the funnel, failures by code, and its buttons."""
    try:
        status = campaigns.status(_engine(), campaign_id)
    except campaigns.CampaignNotFound:
        abort(404)
    view = _view(status)
    return render_template(
        "campaigns/show.html",
        form=ActionForm(),
        may_act=_may_act(),
        live=status.state in LIVE_STATES,
        twilio_error_url=TWILIO_ERROR_URL,
        **view,
    )


def _audit(campaign_id: int, action: str, **details: object) -> None:
    with session_scope(_engine()) as session:
        audit(session, _actor(), action, str(campaign_id), **details)


def _checked(campaign_id: int) -> None:
    """Only officers and admins (the shell checked the form's CSRF token), and a campaign that
    exists."""
    _require_act()
    with session_scope(_engine()) as session:
        if session.get(Campaign, campaign_id) is None:
            abort(404)


def _back(campaign_id: int) -> ResponseReturnValue:
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


def _hand_to_worker(campaign_id: int, task_name: str, what: str) -> ResponseReturnValue:
    _checked(campaign_id)
    job_id = tasks.enqueue(_redis(), task_name, campaign_id, _actor(), retry=True)
    _audit(campaign_id, f"campaign_{what}_requested", job=job_id)
    log.info(kv(f"campaign_{what}_requested", campaign=campaign_id, job=job_id))
    flash(
        f"{what.title()} requested: a worker is queueing the messages. "
        "The figures below update by themselves."
    )
    return _back(campaign_id)


@bp.post("/<int:campaign_id>/start")
def start(campaign_id: int) -> ResponseReturnValue:
    """Start a draft: a worker queues its recipients in batches."""
    return _hand_to_worker(campaign_id, tasks.START, "start")


@bp.post("/<int:campaign_id>/resume")
def resume(campaign_id: int) -> ResponseReturnValue:
    """Resume a paused campaign where it stopped."""
    return _hand_to_worker(campaign_id, tasks.RESUME, "resume")


@bp.post("/<int:campaign_id>/pause")
def pause(campaign_id: int) -> ResponseReturnValue:
    """Pause at once: nothing more is sent until it is resumed."""
    _checked(campaign_id)
    try:
        campaigns.pause(_engine(), _redis(), campaign_id, actor=_actor())
    except campaigns.CampaignError as exc:
        flash(str(exc))
        return _back(campaign_id)
    flash("Paused. Messages already handed to Twilio still arrive.")
    return _back(campaign_id)


@bp.post("/<int:campaign_id>/cancel")
def cancel(campaign_id: int) -> ResponseReturnValue:
    """Cancel for good: nobody not yet sent to gets a message."""
    _checked(campaign_id)
    try:
        skipped = campaigns.cancel(_engine(), _redis(), campaign_id, actor=_actor())
    except campaigns.CampaignError as exc:
        flash(str(exc))
        return _back(campaign_id)
    flash(f"Cancelled: {skipped} consumers not yet sent to will get nothing.")
    return _back(campaign_id)


def filters_text(filters: Filters) -> str:
    """The filters as a person reads them."""
    return filters.describe()


bp.add_app_template_filter(filters_text, "filters_text")

__all__ = ["ACT_ROLES", "CampaignForm", "bp", "init_app"]
