"""Field verification: staff lookups (audited, capped per day), visits, and the area figures.

Shared by the staff actions (bot/actions/staff.py), the officers' report and pages (bot/staff/)
and the CLI, which may not import each other. Whether a sender is staff is always read from the
staff table (``active`` rows only) at the moment of asking: nothing here caches it, so a number
deactivated a second ago is a consumer on its next message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import and_, case, distinct, func, select, union, update
from sqlalchemy.orm import Session

from bot import store
from bot.clock import IST, utcnow
from bot.phone import mask

#: Audit actions written here (the officer page and the tests read them back).
LOOKUP = "staff_lookup"
LOOKUP_REFUSED = "staff_lookup_refused"
CAP_REACHED = "staff_lookup_cap_reached"
VISIT = "staff_visit"
#: RQ job that tells a reader's officers the reader reached the day's cap (bot/staff/jobs.py).
CAP_ALERT_JOB = "bot.staff.jobs.alert_lookup_cap"


def active_staff(session: Session, mobile: str | None) -> store.Staff | None:
    """The active staff member with this E.164 mobile, read from the table now."""
    return store.staff_by_mobile(session, mobile) if mobile else None


def actor(staff: store.Staff) -> str:
    """How the audit log names a staff member: by their row, never by a mobile."""
    return f"staff:{staff.id}"


def day_bounds(now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime, dt.date]:
    """The IST day around ``now`` (naive UTC) as naive-UTC [start, end) and its IST date."""
    moment = (now or utcnow()).replace(tzinfo=dt.timezone.utc).astimezone(IST)
    start = dt.datetime.combine(moment.date(), dt.time(), tzinfo=IST)
    to_utc = start.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return to_utc, to_utc + dt.timedelta(days=1), moment.date()


class Lookup(str, Enum):
    ALLOWED = "allowed"
    REFUSED = "refused"  # over the day's cap
    CAP_REACHED = "cap_reached"  # refused, and the first refusal today: alert the officer


def _count_today(session: Session, staff: store.Staff, action: str, now: dt.datetime) -> int:
    start, end, _ = day_bounds(now)
    log = store.AuditLog
    return int(
        session.execute(
            select(func.count()).where(
                log.actor == actor(staff), log.action == action, log.at >= start, log.at < end
            )
        ).scalar_one()
    )


def lookups_today(session: Session, staff: store.Staff, now: dt.datetime | None = None) -> int:
    """Lookups ``staff`` made today (IST)."""
    return _count_today(session, staff, LOOKUP, now or utcnow())


def check_lookup(
    session: Session,
    staff: store.Staff,
    *,
    subject: str,
    limit: int,
    channel: str | None,
    via: str,
    now: dt.datetime | None = None,
) -> Lookup:
    """Count and audit one lookup of ``subject`` by ``staff`` against the day's ``limit``."""
    moment = now or utcnow()
    detail = {"name": staff.name, "role": staff.role, "area": staff.area, "channel": channel}
    # One lookup of a reader at a time: a write to the staff row (PostgreSQL's row lock, SQLite's
    # write lock) holds a concurrent lookup until this one's audit row is committed, so two
    # lookups at the cap cannot both pass it.
    session.execute(
        update(store.Staff).where(store.Staff.id == staff.id).values(active=store.Staff.active)
    )
    if _count_today(session, staff, LOOKUP, moment) >= limit:
        first = _count_today(session, staff, CAP_REACHED, moment) == 0
        store.audit(session, actor(staff), LOOKUP_REFUSED, subject=subject, limit=limit, **detail)
        if first:
            store.audit(session, actor(staff), CAP_REACHED, subject=subject, limit=limit, **detail)
            return Lookup.CAP_REACHED
        return Lookup.REFUSED
    store.audit(session, actor(staff), LOOKUP, subject=subject, via=via, **detail)
    return Lookup.ALLOWED


# --------------------------------------------------------------------------- visits


def record_visit(
    session: Session,
    staff: store.Staff,
    consumer: store.Consumer,
    *,
    informed: bool,
    mobile_confirmed: bool,
    new_mobile: str | None,
    channel: str | None,
) -> tuple[store.StaffVisit, store.MobileChange | None]:
    """Store a visit (and a pending mobile change when the reader gave a new number); audit it."""
    visit = store.StaffVisit(
        staff_id=staff.id,
        new_account_no=consumer.new_account_no,
        area=consumer.area or "",
        informed=informed,
        mobile_confirmed=mobile_confirmed,
    )
    session.add(visit)
    session.flush()
    change = None
    if not mobile_confirmed and new_mobile and new_mobile != consumer.mobile:
        change = store.MobileChange(
            new_account_no=consumer.new_account_no,
            old_mobile=consumer.mobile,
            new_mobile=new_mobile,
            visit_id=visit.id,
            requested_by=staff.id,
            status="pending",
        )
        session.add(change)
        session.flush()
    store.audit(
        session,
        actor(staff),
        VISIT,
        subject=consumer.new_account_no,
        visit_id=visit.id,
        informed=informed,
        mobile_confirmed=mobile_confirmed,
        mobile_change_id=change.id if change else None,
        new_mobile=mask(new_mobile) if new_mobile else None,
        name=staff.name,
        area=consumer.area,
        channel=channel,
    )
    return visit, change


@dataclass(frozen=True)
class ReaderDay:
    """A reader's visits on one IST day."""

    visits: int
    informed: int


def reader_today(session: Session, staff: store.Staff, now: dt.datetime | None = None) -> ReaderDay:
    """Visits ``staff`` recorded today (IST), and how many consumers they told."""
    start, end, _ = day_bounds(now)
    v = store.StaffVisit
    visits, informed = session.execute(
        select(
            func.count(), func.coalesce(func.sum(case((v.informed.is_(True), 1), else_=0)), 0)
        ).where(v.staff_id == staff.id, v.visited_at >= start, v.visited_at < end)
    ).one()
    return ReaderDay(int(visits), int(informed))


# --------------------------------------------------------------------------- area figures


@dataclass(frozen=True)
class AreaFigures:
    """Verification coverage of one area."""

    area: str
    total: int
    informed: int
    confirmed: int
    pending: int
    visits_today: int
    readers_today: int

    @property
    def percent(self) -> int:
        """Consumers informed, as a whole percentage of the area's consumers."""
        return (100 * self.informed // self.total) if self.total else 0


def area_figures(session: Session, area: str, now: dt.datetime | None = None) -> AreaFigures:
    """Consumers, informed, confirmed, pending changes and today's visits of ``area``."""
    c, v, m = store.Consumer, store.StaffVisit, store.MobileChange
    in_area = and_(c.new_account_no == v.new_account_no, c.area == area)
    total = session.execute(select(func.count()).where(c.area == area)).scalar_one()
    informed = session.execute(
        select(func.count(distinct(v.new_account_no))).where(in_area, v.informed.is_(True))
    ).scalar_one()
    confirmed_accounts = union(
        select(v.new_account_no).where(in_area, v.mobile_confirmed.is_(True)),
        select(m.new_account_no).where(
            c.new_account_no == m.new_account_no, c.area == area, m.status == "approved"
        ),
    ).subquery()
    confirmed = session.execute(select(func.count()).select_from(confirmed_accounts)).scalar_one()
    pending = session.execute(
        select(func.count()).where(
            c.new_account_no == m.new_account_no, c.area == area, m.status == "pending"
        )
    ).scalar_one()
    start, end, _ = day_bounds(now)
    visits_today, readers_today = session.execute(
        select(func.count(), func.count(distinct(v.staff_id))).where(
            v.area == area, v.visited_at >= start, v.visited_at < end
        )
    ).one()
    return AreaFigures(
        area=area,
        total=int(total),
        informed=int(informed),
        confirmed=int(confirmed),
        pending=int(pending),
        visits_today=int(visits_today),
        readers_today=int(readers_today),
    )


def areas(session: Session) -> list[str]:
    """Every area that has consumers or staff, sorted."""
    found = set(session.execute(select(distinct(store.Consumer.area))).scalars())
    found |= set(session.execute(select(distinct(store.Staff.area))).scalars())
    return sorted(a for a in found if a)


@dataclass(frozen=True)
class ReaderDayRow:
    """Visits per reader per IST day in an area."""

    day: dt.date
    staff_id: int
    name: str
    visits: int
    informed: int
    mobile_changes: int


def count_visits(session: Session, area: str) -> int:
    """Visits recorded in ``area`` (for a progress bar's total)."""
    v = store.StaffVisit
    return int(session.execute(select(func.count()).where(v.area == area)).scalar_one())


def visit_rows(session: Session, area: str) -> Iterator[tuple[int, dt.datetime, bool, bool]]:
    """(staff id, visited_at, informed, mobile confirmed) of every visit in ``area``, streamed."""
    v = store.StaffVisit
    query = (
        select(v.staff_id, v.visited_at, v.informed, v.mobile_confirmed)
        .where(v.area == area)
        .order_by(v.visited_at)
        .execution_options(yield_per=1000)
    )
    for row in session.execute(query):
        yield int(row[0]), row[1], bool(row[2]), bool(row[3])


def per_reader_per_day(
    session: Session, area: str, rows: Iterator[tuple[int, dt.datetime, bool, bool]]
) -> list[ReaderDayRow]:
    """Group visit rows by IST day and reader (newest day first, then by name)."""
    counts: dict[tuple[dt.date, int], list[int]] = {}
    for staff_id, at, informed, confirmed in rows:
        day = at.replace(tzinfo=dt.timezone.utc).astimezone(IST).date()
        entry = counts.setdefault((day, staff_id), [0, 0, 0])
        entry[0] += 1
        entry[1] += int(informed)
        entry[2] += int(not confirmed)
    ids = {staff_id for _, staff_id in counts}
    rows_ = session.execute(select(store.Staff.id, store.Staff.name).where(store.Staff.id.in_(ids)))
    names = {int(sid): str(name) for sid, name in rows_}
    out = [
        ReaderDayRow(day, sid, names.get(sid, f"#{sid}"), *values)
        for (day, sid), values in counts.items()
    ]
    return sorted(out, key=lambda r: (-r.day.toordinal(), r.name, r.staff_id))


def pending_changes(session: Session, area: str | None = None) -> list[store.MobileChange]:
    """Mobile changes waiting for an officer, oldest first (in ``area`` when given)."""
    m, c = store.MobileChange, store.Consumer
    query = select(m).where(m.status == "pending")
    if area is not None:
        query = query.join(c, c.new_account_no == m.new_account_no).where(c.area == area)
    return list(session.execute(query.order_by(m.created_at, m.id)).scalars())


def cap_events(session: Session, limit: int = 20) -> list[store.AuditLog]:
    """The latest days a reader reached the lookup cap (the officer page lists them)."""
    log = store.AuditLog
    query = select(log).where(log.action == CAP_REACHED).order_by(log.id.desc()).limit(limit)
    return list(session.execute(query).scalars())


__all__ = [
    "CAP_ALERT_JOB",
    "CAP_REACHED",
    "LOOKUP",
    "LOOKUP_REFUSED",
    "VISIT",
    "AreaFigures",
    "Lookup",
    "ReaderDay",
    "ReaderDayRow",
    "active_staff",
    "actor",
    "area_figures",
    "areas",
    "cap_events",
    "check_lookup",
    "count_visits",
    "day_bounds",
    "lookups_today",
    "pending_changes",
    "per_reader_per_day",
    "reader_today",
    "record_visit",
    "visit_rows",
]
