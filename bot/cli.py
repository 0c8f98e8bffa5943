"""The ``bijli`` command: schema, imports, demo data, and the processes of the Procfile."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot import settings as settings_mod

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.store import Operator

IMPORT_KINDS = ("consumers", "bills", "prepaid-balances", "staff", "bank-statement")


class _Group(click.Group):
    """A command group that reports a bad configuration in one line, without a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except settings_mod.ConfigurationError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Bijli Sahayak: WhatsApp and SMS assistant for UPPCL discoms."""


# --------------------------------------------------------------------------- database


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the tables to the latest schema."""
    from bot import migrations

    cfg = settings_mod.load()
    if cfg.database_url.startswith("sqlite:///"):
        Path(cfg.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(cfg.database_url, revision)
    click.echo(f"database at {revision}: {_safe_url(cfg.database_url)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --------------------------------------------------------------------------- data


@main.command("import")
@click.argument("kind", type=click.Choice(IMPORT_KINDS))
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--skip-bad-rows", is_flag=True, help="Import the good rows even if some are bad.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def import_cmd(kind: str, file: Path, skip_bad_rows: bool, no_progress: bool) -> None:
    """Import a discom CSV file (consumers, bills, prepaid-balances, staff or bank-statement)."""
    from bot import connections, importers

    if kind == "bank-statement":
        _import_bank_statement(file, skip_bad_rows)
        return

    report = importers.import_file(
        connections.engine(),
        kind,
        file,
        skip_bad_rows=skip_bad_rows,
        progress=not no_progress,
    )
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


def _import_bank_statement(file: Path, skip_bad_rows: bool) -> None:
    from bot import connections
    from bot.payments import jobs, statement

    cfg = settings_mod.load()
    report = statement.import_statement(connections.engine(cfg), file, skip_bad_rows=skip_bad_rows)
    click.echo(report.summary())
    if report.credited:
        if cfg.redis_url:
            for payment_id in report.credited:
                jobs.enqueue_receipt(cfg, payment_id)
            click.echo(f"{len(report.credited)} receipt(s) queued for delivery")
        else:
            click.echo("REDIS_URL is not set: receipts were not queued for delivery", err=True)
    if not report.ok:
        sys.exit(1)


@main.group()
def billing() -> None:
    """The billing system's state: month-end closing or an outage, and reconciling after it."""


@billing.command("closing")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--discom", "discoms", multiple=True, help="Default: every discom.")
@click.option("--reason", default="month-end closing", show_default=True)
def billing_closing(state: str, discoms: tuple[str, ...], reason: str) -> None:
    """Mark billing closed (on) or reopened (off); pay links and receipts go on either way."""
    from bot import connections
    from bot.payments import billing as billing_mod
    from bot.store import DISCOMS

    unknown = set(discoms) - set(DISCOMS)
    if unknown:
        raise click.BadParameter(f"unknown discom(s): {', '.join(sorted(unknown))}")
    for line in billing_mod.set_closing(
        connections.engine(), state == "on", discoms or DISCOMS, reason
    ):
        click.echo(line)


@billing.command("reconcile")
@click.option("--dry-run", is_flag=True, help="Show what would be posted, change nothing.")
def billing_reconcile(dry_run: bool) -> None:
    """Post to billing the payments credited while it was closed, and list them."""
    from bot import connections
    from bot.payments import billing as billing_mod

    click.echo(billing_mod.reconcile(connections.engine(), dry_run=dry_run).summary())


@main.command("demo-data")
@click.option("--consumers", "count", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--seed", type=int, default=2023, show_default=True)
def demo_data(count: int, out: Path, seed: int) -> None:
    """Write consumers, bills, prepaid balances and staff CSVs with synthetic data."""
    from bot.importers import demo_data as demo

    written = demo.write_demo_data(out, consumers=count, seed=seed, progress=True)
    for kind, path in written.items():
        click.echo(f"{kind}: {path}")


# --------------------------------------------------------------------------- processes


@main.command("train")
@click.option("--force", is_flag=True, help="Train even if a model for this data is cached.")
def train(force: bool) -> None:
    """Train the Rasa model if the training data changed; print its path."""
    from bot.rasa_runtime import training

    click.echo(training.train_if_needed(force=force))


@main.command("rasa-server", context_settings={"ignore_unknown_options": True})
@click.argument("rasa_args", nargs=-1, type=click.UNPROCESSED)
def rasa_server(rasa_args: tuple[str, ...]) -> None:
    """Run the Rasa server on the cached model, with Redis tracker and lock stores."""
    cfg = settings_mod.load_checked()  # before importing Rasa, which takes seconds
    from bot.rasa_runtime import server

    try:
        sys.exit(server.run_rasa_server(cfg, rasa_args))
    except (server.ModelMissing, settings_mod.SecretMissing) as exc:
        raise click.ClickException(str(exc)) from None


@main.command("actions-server")
@click.option("--port", type=int, help="Default: ACTIONS_PORT, else 5055.")
def actions_server(port: int | None) -> None:
    """Run the rasa_sdk action server with the project's custom actions."""
    cfg = settings_mod.load_checked()
    from bot.rasa_runtime import server

    try:
        sys.exit(server.run_action_server(cfg.with_overrides(actions_port=port) if port else cfg))
    except settings_mod.SecretMissing as exc:
        raise click.ClickException(str(exc)) from None


@main.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--workers", type=click.IntRange(min=1), help="Default: BIJLI_WORKERS, else 2.")
def worker(burst: bool, workers: int | None) -> None:
    """Run RQ workers on the inbound and notifications queues, under RQ's worker pool."""
    from bot import logfmt
    from bot.worker import run_worker

    logfmt.configure()
    cfg = settings_mod.load_checked()
    if not cfg.redis_url:
        raise click.ClickException("REDIS_URL is not set (`bijli run` starts an embedded Redis)")
    try:
        _ = cfg.gateway_signing_secret  # the worker signs what it passes to Rasa
    except settings_mod.SecretMissing as exc:
        raise click.ClickException(str(exc)) from None
    run_worker(cfg, burst=burst, workers=workers)


@main.command("run")
@click.option("--demo-consumers", type=int, default=2000, show_default=True)
@click.option("--no-demo", is_flag=True, help="Do not load demo data into an empty database.")
def run(demo_consumers: int, no_demo: bool) -> None:
    """Start every Procfile process on the embedded defaults, and print the URLs to open."""
    from bot.dev import launcher

    try:
        sys.exit(launcher.run_all(demo_consumers=0 if no_demo else demo_consumers))
    except settings_mod.SecretMissing as exc:
        raise click.ClickException(str(exc)) from None


# --------------------------------------------------------------------------- gateway


@main.command("fake-twilio")
@click.option("--port", type=int, help="Default: FAKE_TWILIO_PORT, else 8025.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--error-rate-429", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--error-rate-500", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option(
    "--callback-delay",
    type=float,
    default=0.05,
    show_default=True,
    help="Seconds between the queued, sent and delivered status callbacks.",
)
def fake_twilio(
    port: int | None, host: str, error_rate_429: float, error_rate_500: float, callback_delay: float
) -> None:
    """Run a local fake of Twilio's Messages API (GET /sent lists what was sent)."""
    from bot import logfmt
    from bot.dev import fake_twilio as fake

    logfmt.configure()
    cfg = settings_mod.load()
    fake.serve(
        port or cfg.fake_twilio_port,
        cfg.twilio_account_sid,
        cfg.twilio_auth_token,
        host=host,
        error_rate_429=error_rate_429,
        error_rate_500=error_rate_500,
        callback_delay=callback_delay,
    )


@main.command("cron")
def cron() -> None:
    """Run RQ's cron scheduler: the inbox sweep every 30 seconds, stalled campaigns every 5 min."""
    from bot import connections, logfmt
    from bot.gateway import inbox
    from bot.queues import CAMPAIGNS
    from notifier import campaigns

    logfmt.configure()
    cfg = settings_mod.load()
    if not cfg.redis_url:
        raise click.ClickException("REDIS_URL is not set (`bijli run` starts an embedded Redis)")
    stalled_campaigns = inbox.CronJob(campaigns.sweep_job, CAMPAIGNS, interval=300, timeout=120)
    inbox.run_cron(connections.redis(cfg), extra=[stalled_campaigns])


@main.command("sweep")
def sweep() -> None:
    """Sweep the inbox once, here: probe a paused Twilio, enqueue unanswered messages."""
    from bot import logfmt
    from bot.gateway import inbox

    logfmt.configure()
    if not settings_mod.load().redis_url:
        raise click.ClickException("REDIS_URL is not set")
    click.echo(inbox.sweep())


@main.command("webhook-url")
def webhook_url() -> None:
    """Print the URLs to give Twilio, with the connection overrides the signature check knows."""
    cfg = settings_mod.load()
    click.echo(
        f"A message comes in (POST): {cfg.public_base_url}/twilio/messages"
        f"#{cfg.twilio_webhook_overrides}"
    )
    click.echo(f"Status callbacks (set on every message sent): {cfg.public_base_url}/twilio/status")


@main.command("fake-razorpay")
@click.option("--port", type=int, help="Default: FAKE_RAZORPAY_PORT, else 8026.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--webhook-url",
    help="Where payment.captured webhooks go. Default: PUBLIC_BASE_URL/payments/razorpay/webhook",
)
def fake_razorpay(port: int | None, host: str, webhook_url: str | None) -> None:
    """Run a local fake of Razorpay: payments API and signed payment.captured webhooks."""
    from bot import logfmt
    from bot.dev import fake_razorpay as fake

    logfmt.configure()
    cfg = settings_mod.load()
    fake.serve(
        port or cfg.fake_razorpay_port,
        cfg.razorpay_key_id,
        cfg.razorpay_key_secret,
        cfg.razorpay_webhook_key,
        webhook_url or f"{cfg.public_base_url}/payments/razorpay/webhook",
        host=host,
    )


@main.command("replay-failed")
@click.option("--id", "ids", type=int, multiple=True, help="Replay only these dead letters.")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed, change nothing.")
def replay_failed(ids: tuple[int, ...], dry_run: bool) -> None:
    """Re-enqueue inbound messages whose jobs failed their last retry (dead letters).

    Jobs that failed while the database was down are read from RQ's failed-job registry and
    get their dead letters first.
    """
    from bot.gateway import dead_letters

    cfg = settings_mod.load_checked()
    if not cfg.redis_url and not dry_run:
        raise click.ClickException("REDIS_URL is not set")
    replayed = dead_letters.replay_dead_letters(
        cfg, list(ids) or None, dry_run=dry_run, echo=click.echo
    )
    verb = "would replay" if dry_run else "replayed"
    click.echo(f"{verb} {replayed} dead letter(s)")


# --------------------------------------------------------------------------- operators


@main.group()
def operator() -> None:
    """People who sign in to the operator pages (/admin): agents, officers, admins."""


def _read_password(password_stdin: bool, prompt: str = "Password") -> str:
    """A new password: typed twice at a hidden prompt, or one line of stdin (for scripts).

    Never an option's value, so it stays out of shell history and the process list.
    """
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


def _operator_change(action: Callable[[Session], Operator]) -> Operator:
    """Run ``action(session)`` in a transaction; an OperatorError becomes a one-line message."""
    from bot import connections
    from bot.admin import accounts

    try:
        with connections.session() as session:
            return action(session)
    except accounts.OperatorError as exc:
        raise click.ClickException(str(exc)) from None


@operator.command("add")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["agent", "officer", "admin"]),
    default="agent",
    show_default=True,
    help="agent: answers the inbox, sees consumers' details masked; officer: sees them in "
    "full, may take over a conversation; admin: as officer.",
)
@click.option("--name", "display_name", default="", help="Shown to consumers on agents' replies.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def operator_add(username: str, role: str, display_name: str, password_stdin: bool) -> None:
    """Make an operator account; the password is asked for (twice), never an argument."""
    from bot.admin import accounts

    try:
        accounts.check_username(username)
    except accounts.OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    password = _read_password(password_stdin)
    made = _operator_change(
        lambda s: accounts.create_operator(s, username, password, role, display_name)
    )
    click.echo(f"operator {made.username} ({made.role}) added, shown as {made.display_name!r}")


@operator.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def operator_passwd(username: str, password_stdin: bool) -> None:
    """Set a new password (the operator's open sessions end)."""
    from bot.admin import accounts

    password = _read_password(password_stdin, "New password")
    done = _operator_change(lambda s: accounts.set_password(s, username, password))
    click.echo(f"password of {done.username} changed")


@operator.command("unlock")
@click.argument("username")
def operator_unlock(username: str) -> None:
    """Lift the lock after repeated failed sign-ins."""
    from bot.admin import accounts

    done = _operator_change(lambda s: accounts.unlock(s, username))
    click.echo(f"{done.username} unlocked")


@operator.command("disable")
@click.argument("username")
def operator_disable(username: str) -> None:
    """Stop an operator signing in (their open sessions end)."""
    from bot.admin import accounts

    done = _operator_change(lambda s: accounts.set_active(s, username, False))
    click.echo(f"{done.username} disabled")


@operator.command("enable")
@click.argument("username")
def operator_enable(username: str) -> None:
    """Let a disabled operator sign in again."""
    from bot.admin import accounts

    done = _operator_change(lambda s: accounts.set_active(s, username, True))
    click.echo(f"{done.username} enabled")


@operator.command("list")
def operator_list() -> None:
    """Every operator: role, state, last sign-in (IST)."""
    from bot import connections
    from bot.admin import accounts
    from bot.clock import to_ist, utcnow

    now = utcnow()
    with connections.session() as session:
        for op in accounts.list_operators(session):
            if not op.active:
                state = "disabled"
            elif op.locked_until is not None and op.locked_until > now:
                state = f"locked until {to_ist(op.locked_until):%d-%m-%Y %H:%M}"
            else:
                state = "active"
            last = f"{to_ist(op.last_login_at):%d-%m-%Y %H:%M}" if op.last_login_at else "never"
            click.echo(f"{op.username}\t{op.role}\t{state}\tlast sign-in {last}\t{op.display_name}")


# --------------------------------------------------------------------------- staff (issue 13)

#: Visits in an area above which the report shows a progress bar while it counts them.
PROGRESS_FROM_VISITS = 5000


@main.group()
def report() -> None:
    """Reports for officers."""


@report.command("verification")
@click.option("--area", "areas", multiple=True, help="Area (substation or locality); repeatable.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path))
def report_verification(areas: tuple[str, ...], csv_file: Path | None) -> None:
    """Per area: consumers informed out of the total, mobiles confirmed, pending changes, and
    visits per reader per day (all areas unless --area)."""
    from tqdm import tqdm

    from bot import connections, verification
    from bot.staff import report as staff_report

    def wrap(rows: Iterator[Any], total: int) -> Iterator[Any]:
        if total < PROGRESS_FROM_VISITS:
            return rows
        return tqdm(rows, total=total, unit="visit", desc="counting visits", file=sys.stderr)

    with connections.session() as session:
        known = verification.areas(session)
        chosen = list(areas) or known
        unknown = [a for a in chosen if a not in known]
        if unknown:
            raise click.ClickException(
                f"no consumers or staff in area {', '.join(unknown)}; areas: {', '.join(known)}"
            )
        reports = staff_report.build(session, chosen, wrap)
    for r in reports:
        f = r.figures
        click.echo(
            f"{f.area}: informed {f.informed}/{f.total} ({f.percent}%), mobiles confirmed "
            f"{f.confirmed}, pending changes {f.pending}, visits today {f.visits_today}"
        )
        for d in r.days:
            click.echo(
                f"  {d.day:%d-%m-%Y}  {d.name}: {d.visits} visits, {d.informed} informed, "
                f"{d.mobile_changes} mobile changes"
            )
    if csv_file is not None:
        rows = staff_report.save_csv(csv_file, reports)
        click.echo(f"wrote {rows} rows to {csv_file}")


@main.group()
def staff() -> None:
    """Meter readers and officers: deactivate a number, decide mobile changes."""


def _staff_mobile(raw: str) -> str:
    from bot.phone import NotAnIndianMobile, parse_indian_mobile

    try:
        return parse_indian_mobile(raw)
    except NotAnIndianMobile as exc:
        raise click.BadParameter(f"{raw!r} {exc}") from None


def _set_staff_active(mobile: str, active: bool) -> None:
    from sqlalchemy import select

    from bot import connections, store
    from bot.phone import mask

    e164 = _staff_mobile(mobile)
    with connections.session() as session:
        member = session.execute(
            select(store.Staff).where(store.Staff.mobile == e164)
        ).scalar_one_or_none()
        if member is None:
            raise click.ClickException(f"{mask(e164)} is not in the staff table")
        changed = member.active != active
        member.active = active
        if changed:
            store.audit(
                session, "cli", "staff_activated" if active else "staff_deactivated", mask(e164)
            )
    state = "active" if active else "deactivated: treated as a consumer from its next message"
    click.echo(f"{mask(e164)} ({member.name}, {member.role}) {state}")


@staff.command("deactivate")
@click.argument("mobile")
def staff_deactivate(mobile: str) -> None:
    """Stop a number getting staff answers, at once (staff.csv with active=yes undoes it)."""
    _set_staff_active(mobile, False)


@staff.command("activate")
@click.argument("mobile")
def staff_activate(mobile: str) -> None:
    """Give a deactivated staff number its staff answers back."""
    _set_staff_active(mobile, True)


@staff.command("pending")
@click.option("--area", default=None)
def staff_pending(area: str | None) -> None:
    """Mobile changes waiting for an officer."""
    from bot import connections, verification
    from bot.clock import to_ist
    from bot.phone import mask

    with connections.session() as session:
        changes = verification.pending_changes(session, area)
        for c in changes:
            click.echo(
                f"{c.id}	{c.new_account_no}	{mask(c.old_mobile) if c.old_mobile else '-'} -> "
                f"{mask(c.new_mobile)}	{to_ist(c.created_at):%d-%m-%Y %H:%M}"
            )
    click.echo(f"{len(changes)} pending")


def _decide(change_id: int, approve: bool) -> None:
    from bot import connections
    from bot.phone import mask
    from bot.staff import approvals

    try:
        with connections.session() as session:
            decision = approvals.decide(session, change_id, approve=approve, decided_by="cli")
    except (approvals.ChangeNotFound, approvals.AlreadyDecided) as exc:
        raise click.ClickException(str(exc)) from None
    jobs = approvals.notify(connections.redis(), decision)
    click.echo(
        f"change {change_id} {decision.status}: account {decision.new_account_no} "
        f"{mask(decision.new_mobile)}" + (f"; {len(jobs)} notices queued" if jobs else "")
    )


@staff.command("approve")
@click.argument("change_id", type=int)
def staff_approve(change_id: int) -> None:
    """Approve a pending mobile change: the consumer's registered mobile moves, both numbers are
    told."""
    _decide(change_id, True)


@staff.command("reject")
@click.argument("change_id", type=int)
def staff_reject(change_id: int) -> None:
    """Reject a pending mobile change (the registered mobile stays)."""
    _decide(change_id, False)


# --------------------------------------------------------------------------- notifier

from notifier.cli import campaign, holiday, moratorium  # noqa: E402  (mounted, not defined, here)

main.add_command(campaign)
main.add_command(holiday)
main.add_command(moratorium)


if __name__ == "__main__":  # pragma: no cover
    main()
