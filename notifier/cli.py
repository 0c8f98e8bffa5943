"""``bijli campaign``, ``bijli holiday`` and ``bijli moratorium``: the notifier's commands.

``bot/cli.py`` mounts these groups; the work is done by :mod:`notifier.campaigns` and
:mod:`notifier.calendar`, imported when a command runs so that other ``bijli`` commands do not
pay for them. Every command prints counts and a progress bar.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import redis
    from sqlalchemy.engine import Engine

    from notifier.campaigns import CampaignStatus, DryRun

KIND_CHOICE = click.Choice(["new-account-number", "disconnection-warning"])


def _engine() -> Engine:
    from bot import connections

    return connections.engine()


def _redis() -> redis.Redis:
    from bot import connections

    try:
        return connections.redis()
    except connections.RedisNotConfigured as exc:
        raise click.ClickException(str(exc)) from None


def _rupees(paise: int) -> str:
    from bot.money import format_rupees

    return format_rupees(paise)


def _ist(moment: dt.datetime | None) -> str:
    from bot.clock import to_ist

    return f"{to_ist(moment):%d-%m-%Y %H:%M} IST" if moment else "-"


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items()) or "none"


# --------------------------------------------------------------------------- campaign


@click.group()
def campaign() -> None:
    """Campaigns to consumers' registered mobiles: new account numbers, disconnection warnings."""


@campaign.command("create")
@click.argument("kind", type=KIND_CHOICE)
@click.option("--discom", help="Only this discom (KESCO, PVVNL, MVVNL, DVVNL, PUVVNL).")
@click.option("--area", "areas", multiple=True, help="Only this area (repeat for several).")
@click.option("--meter-type", type=click.Choice(["postpaid", "smart_postpaid", "smart_prepaid"]))
@click.option(
    "--category",
    type=click.Choice(["domestic", "commercial", "public_institution", "industrial"]),
)
@click.option(
    "--min-dues", type=click.FloatRange(min=0), help="Least dues in rupees (warnings), e.g. 15000."
)
@click.option("--account", "accounts", multiple=True, help="Only these new account numbers.")
@click.option("--name", help="A name for the campaign (default: kind and time).")
@click.option(
    "--old-valid-until",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="new-account-number: the last day old numbers work "
    "(default BIJLI_OLD_ACCOUNT_VALID_UNTIL).",
)
@click.option(
    "--notice-hours",
    type=click.IntRange(min=0),
    help="disconnection-warning: hours before the earliest cut announced "
    "(default BIJLI_DISCONNECTION_NOTICE_HOURS, else 24).",
)
@click.option("--dry-run", is_flag=True, help="Show counts, segments and cost; store nothing.")
def campaign_create(
    kind: str,
    discom: str | None,
    areas: tuple[str, ...],
    meter_type: str | None,
    category: str | None,
    min_dues: float | None,
    accounts: tuple[str, ...],
    name: str | None,
    old_valid_until: dt.datetime | None,
    notice_hours: int | None,
    dry_run: bool,
) -> None:
    """Select the consumers of a campaign (frozen from now on), or --dry-run to see it first."""
    from notifier import campaigns
    from notifier.campaigns import Filters

    filters = Filters(
        discom=discom.upper() if discom else None,
        areas=areas,
        meter_type=meter_type,
        category=category,
        min_dues_paise=round(min_dues * 100) if min_dues is not None else None,
        accounts=accounts,
    )
    try:
        result = campaigns.create(
            _engine(),
            kind,
            filters,
            name=name,
            dry_run=dry_run,
            valid_until=old_valid_until.date() if old_valid_until else None,
            notice_hours=notice_hours,
            progress=True,
        )
    except (campaigns.CampaignError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if isinstance(result, campaigns.DryRun):
        _echo_dry_run(result)
        return
    st = campaigns.status(_engine(), result)
    click.echo(f"campaign {result} created ({kind}, {filters.describe()})")
    _echo_status(st)
    click.echo(f"start it with: bijli campaign start {result}")


def _echo_dry_run(report: DryRun) -> None:
    click.echo(f"dry run: {report.kind} to {report.filters.describe()} (nothing stored or sent)")
    click.echo(f"selected: {report.selected}")
    for key, count in report.by_channel_language.items():
        click.echo(f"  {key}: {count}")
    click.echo(f"excluded: {_counts(report.excluded)}")
    for t in report.templates:
        if t.channel == "sms":
            click.echo(
                f"  sms/{t.language}: header {t.header}, DLT template {t.template_id}, "
                f"{t.encoding}, {t.segments_min}-{t.segments_max} segment(s) a message, "
                f"{t.segments_total} in all, {_rupees(t.cost_paise)}"
            )
        else:
            click.echo(
                f"  whatsapp/{t.language}: ContentSid {t.template_id}, {t.recipients} message(s), "
                f"{_rupees(t.cost_paise)}"
            )
    click.echo(f"estimated cost: {_rupees(report.cost_paise)}")
    if report.waits_for:
        click.echo(f"would wait ({report.waits_for}) until {_ist(report.sends_from)}")


def _echo_status(st: CampaignStatus, *, bar: bool = True) -> None:
    from tqdm import tqdm

    click.echo(
        f"campaign {st.id} {st.name!r} ({st.kind}): {st.state}"
        + (f", {st.held_reason}" if st.held_reason else "")
    )
    click.echo(
        f"selected {st.selected}, queued {st.queued}, sent {st.sent}, delivered {st.delivered}, "
        f"read {st.read}, failed {st.failed}"
    )
    click.echo(f"excluded: {_counts(st.excluded)}; skipped: {_counts(st.skipped)}")
    if st.failures_by_code:
        click.echo(f"failures by code: {_counts(st.failures_by_code)}")
    click.echo(
        f"created {_ist(st.created_at)}, started {_ist(st.started_at)}, "
        f"finished {_ist(st.finished_at)}"
    )
    if bar:
        with tqdm(total=st.selected, initial=st.done, desc="settled", unit=" consumers") as b:
            b.refresh()


def _campaign_action(name: str, action: Callable[[], object], campaign_id: int) -> None:
    from notifier import campaigns

    try:
        outcome = action()
    except campaigns.CampaignError as exc:
        raise click.ClickException(str(exc)) from None
    if isinstance(outcome, campaigns.Started):
        click.echo(f"{name}: {outcome.queued} recipient(s) queued in {outcome.jobs} job(s)")
    elif isinstance(outcome, int):
        click.echo(f"{name}: {outcome} recipient(s) skipped")
    _echo_status(campaigns.status(_engine(), campaign_id))


@campaign.command("start")
@click.argument("campaign_id", type=int)
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True)
def campaign_start(campaign_id: int, batch_size: int) -> None:
    """Send: queue every waiting recipient in batch jobs (again: re-queue, never resend)."""
    from notifier import campaigns

    _campaign_action(
        "started",
        lambda: campaigns.start(
            _engine(), _redis(), campaign_id, batch_size=batch_size, progress=True
        ),
        campaign_id,
    )


@campaign.command("pause")
@click.argument("campaign_id", type=int)
def campaign_pause(campaign_id: int) -> None:
    """Stop sending for now; resume picks up where it stopped."""
    from notifier import campaigns

    _campaign_action(
        "paused", lambda: campaigns.pause(_engine(), _redis(), campaign_id), campaign_id
    )


@campaign.command("resume")
@click.argument("campaign_id", type=int)
def campaign_resume(campaign_id: int) -> None:
    """Send again after a pause."""
    from notifier import campaigns

    _campaign_action(
        "resumed",
        lambda: campaigns.resume(_engine(), _redis(), campaign_id, progress=True),
        campaign_id,
    )


@campaign.command("cancel")
@click.argument("campaign_id", type=int)
def campaign_cancel(campaign_id: int) -> None:
    """Stop for good: whoever was not sent to yet is skipped."""
    from notifier import campaigns

    _campaign_action(
        "cancelled", lambda: campaigns.cancel(_engine(), _redis(), campaign_id), campaign_id
    )


@campaign.command("status")
@click.argument("campaign_id", type=int, required=False)
@click.option("--watch", is_flag=True, help="Follow the progress bar until nothing is queued.")
def campaign_status(campaign_id: int | None, watch: bool) -> None:
    """A campaign's counts and progress (without an id: every campaign, one line each)."""
    from tqdm import tqdm

    from notifier import campaigns

    engine = _engine()
    if campaign_id is None:
        for st in campaigns.list_campaigns(engine):
            click.echo(
                f"{st.id}\t{st.kind}\t{st.state}\tselected {st.selected}\tsent {st.sent}\t"
                f"delivered {st.delivered}\tfailed {st.failed}\tqueued {st.queued}\t{st.name}"
            )
        return
    try:
        st = campaigns.status(engine, campaign_id)
    except campaigns.CampaignNotFound as exc:
        raise click.ClickException(str(exc)) from None
    if not watch:
        _echo_status(st)
        return
    with tqdm(total=st.selected, initial=st.done, desc="settled", unit=" consumers") as bar:
        while st.queued and st.state in ("running", "held"):
            time.sleep(1)
            st = campaigns.status(engine, campaign_id)
            bar.update(st.done - bar.n)
            bar.set_postfix(state=st.state, sent=st.sent, failed=st.failed)
    _echo_status(st, bar=False)


@campaign.command("sweep")
@click.option("--stall-minutes", type=click.IntRange(min=1), default=10, show_default=True)
def campaign_sweep(stall_minutes: int) -> None:
    """Start again running campaigns that stalled with recipients waiting (lost jobs), and queue
    SMS fallbacks whose status callback came while Redis was down."""
    from bot import delivery_status
    from notifier import campaigns

    restarted = campaigns.sweep(_engine(), _redis(), stall_seconds=stall_minutes * 60)
    click.echo(f"{len(restarted)} stalled campaign(s) started again: {restarted or '-'}")
    fallbacks = delivery_status.queue_missed_fallbacks(_redis(), _engine())
    click.echo(f"{len(fallbacks)} missed SMS fallback(s) queued")
    for campaign_id in restarted:
        _echo_status(campaigns.status(_engine(), campaign_id))


# --------------------------------------------------------------------------- holidays


@click.group()
def holiday() -> None:
    """Public holidays: no disconnection warning goes on one."""


@holiday.command("add")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--name", default="Public holiday", show_default=True)
def holiday_add(day: dt.datetime, name: str) -> None:
    """List DAY (YYYY-MM-DD) as a public holiday."""
    from notifier import calendar

    outcome = calendar.add_holiday(_engine(), day.date(), name)
    click.echo(f"holiday {day:%Y-%m-%d} ({name}): {outcome}")


@holiday.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-bad-rows", is_flag=True, help="Import the good rows even if some are bad.")
def holiday_import(file: Path, skip_bad_rows: bool) -> None:
    """Import a CSV of holidays (columns date,name; date as YYYY-MM-DD)."""
    from notifier import calendar

    try:
        report = calendar.import_holidays(
            _engine(), file, skip_bad_rows=skip_bad_rows, progress=True
        )
    except calendar.CalendarError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.summary())
    if report.bad and not skip_bad_rows:
        click.echo("bad rows: nothing imported (use --skip-bad-rows to import the rest)", err=True)
        sys.exit(1)


# --------------------------------------------------------------------------- moratoriums


@click.group()
def moratorium() -> None:
    """Moratoriums: no cut for dues, and disconnection warnings held, while payments are down."""


@moratorium.command("add")
@click.option("--from", "start", required=True, help="YYYY-MM-DD or 'YYYY-MM-DD HH:MM' (IST).")
@click.option("--to", "end", required=True, help="YYYY-MM-DD (the whole day) or a time (IST).")
@click.option("--reason", required=True, help="Told to consumers who ask about disconnection.")
@click.option("--discom", "discoms", multiple=True, help="Default: every discom.")
def moratorium_add(start: str, end: str, reason: str, discoms: tuple[str, ...]) -> None:
    """Declare a moratorium on disconnections for dues."""
    from bot.store import DISCOMS
    from notifier import calendar

    try:
        starts_at = calendar.parse_moment(start)
        ends_at = calendar.parse_moment(end, end_of_day=True)
        ids = calendar.add_moratorium(
            _engine(), [d.upper() for d in discoms] or list(DISCOMS), starts_at, ends_at, reason
        )
    except calendar.CalendarError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"moratorium {_ist(starts_at)} to {_ist(ends_at)} for "
        f"{', '.join(discoms) or 'every discom'} ({len(ids)} row(s)): {reason}"
    )


__all__ = ["campaign", "holiday", "moratorium"]
