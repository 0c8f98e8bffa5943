"""Operator accounts: argon2id password hashes, sign-in with lockout, and the CLI's changes.

No Flask here: ``bijli operator …`` and the login page share these rules. A wrong password counts
against the account; after :data:`MAX_FAILED_LOGINS` in a row it is locked for :data:`LOCKOUT`,
and while locked even the right password is refused (``bijli operator unlock`` ends it early).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.clock import utcnow
from bot.logfmt import kv
from bot.store import OPERATOR_ROLES, Operator, audit

log = logging.getLogger(__name__)

#: Wrong passwords in a row that lock an account.
MAX_FAILED_LOGINS = 5
#: How long a locked account stays locked.
LOCKOUT = dt.timedelta(minutes=15)
#: Shortest password accepted, in characters.
MIN_PASSWORD_LENGTH = 12
#: Longest password accepted (argon2 takes any length; a megabyte "password" is an attack).
MAX_PASSWORD_LENGTH = 256
#: Lower-case letters, digits and ``._-``, 3 to 30 characters (the audit log's actor is 40).
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,29}$")

#: Outcomes of a sign-in.
OK = "ok"
INVALID = "invalid"
LOCKED = "locked"


class OperatorError(ValueError):
    """An operator account cannot be made or changed as asked; the message says why."""


class NoSuchOperator(OperatorError):
    """No operator has that username."""


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    """argon2id with the library's defaults (RFC 9106's second recommendation)."""
    return PasswordHasher()


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    # Checked for unknown usernames, so a wrong username costs as long as a wrong password.
    return hasher().hash("not a password of anyone")


def normalise_username(username: str) -> str:
    """The stored form of a username (trimmed, lower case)."""
    return username.strip().lower()


def check_username(username: str) -> str:
    """The stored form of ``username``, or :class:`OperatorError` saying what is wrong."""
    name = normalise_username(username)
    if not USERNAME.match(name):
        raise OperatorError(
            "a username is 3 to 30 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_password(password: str) -> None:
    """:class:`OperatorError` unless ``password`` is long enough (and not absurdly long)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperatorError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise OperatorError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def check_role(role: str) -> str:
    """``role`` when it is one of :data:`~bot.store.OPERATOR_ROLES`."""
    if role not in OPERATOR_ROLES:
        raise OperatorError(f"a role is one of {', '.join(OPERATOR_ROLES)}")
    return role


def by_username(session: Session, username: str, *, lock: bool = False) -> Operator | None:
    """The operator called ``username`` (any case), if any."""
    query = select(Operator).where(Operator.username == normalise_username(username))
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def _existing(session: Session, username: str) -> Operator:
    operator = by_username(session, username, lock=True)
    if operator is None:
        raise NoSuchOperator(f"no operator is called {normalise_username(username)!r}")
    return operator


def create_operator(
    session: Session, username: str, password: str, role: str, display_name: str = ""
) -> Operator:
    """Make an operator account; the display name is what consumers see on agents' replies."""
    name = check_username(username)
    check_password(password)
    check_role(role)
    shown = " ".join(display_name.split())[:80] or name
    operator = Operator(
        username=name,
        display_name=shown,
        role=role,
        password_hash=hasher().hash(password),
        active=True,
        failed_logins=0,
        session_epoch=0,
    )
    try:
        with session.begin_nested():
            session.add(operator)
    except IntegrityError:
        raise OperatorError(f"an operator called {name!r} exists already") from None
    audit(session, "cli", "operator_added", name, role=role)
    return operator


def set_password(session: Session, username: str, password: str) -> Operator:
    """Change a password; the operator's open sessions end and a lock is lifted."""
    check_password(password)
    operator = _existing(session, username)
    operator.password_hash = hasher().hash(password)
    operator.session_epoch += 1
    operator.failed_logins = 0
    operator.locked_until = None
    audit(session, "cli", "operator_password_set", operator.username)
    return operator


def unlock(session: Session, username: str) -> Operator:
    """Lift a lock after failed sign-ins."""
    operator = _existing(session, username)
    operator.failed_logins = 0
    operator.locked_until = None
    audit(session, "cli", "operator_unlocked", operator.username)
    return operator


def set_active(session: Session, username: str, active: bool) -> Operator:
    """Enable or disable an account; disabling ends its open sessions."""
    operator = _existing(session, username)
    if operator.active and not active:
        operator.session_epoch += 1
    operator.active = active
    audit(session, "cli", "operator_enabled" if active else "operator_disabled", operator.username)
    return operator


def list_operators(session: Session) -> list[Operator]:
    """Every operator, by username."""
    return list(session.execute(select(Operator).order_by(Operator.username)).scalars())


def count_operators(session: Session) -> int:
    """How many operator accounts exist."""
    return int(session.execute(select(func.count()).select_from(Operator)).scalar_one())


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: :data:`OK` with the operator, :data:`INVALID` or :data:`LOCKED`."""

    outcome: str
    operator: Operator | None = None


def authenticate(
    session: Session, username: str, password: str, now: dt.datetime | None = None
) -> SignIn:
    """Check a username and password, counting failures and locking after too many."""
    moment = now or utcnow()
    operator = by_username(session, username[:64], lock=True)
    if operator is None or not operator.active or len(password) > MAX_PASSWORD_LENGTH:
        _verify(_decoy_hash(), password[:MAX_PASSWORD_LENGTH])
        log.info(kv("operator_login_failed", reason="unknown_or_disabled"))
        return SignIn(INVALID)
    if operator.locked_until is not None and operator.locked_until > moment:
        # Costs what a check costs, so the time taken does not tell that the account exists.
        _verify(_decoy_hash(), password)
        log.warning(kv("operator_login_refused_locked", operator=operator.username))
        return SignIn(LOCKED)
    if not _verify(operator.password_hash, password):
        operator.failed_logins = (operator.failed_logins or 0) + 1
        if operator.failed_logins >= MAX_FAILED_LOGINS:
            operator.locked_until = moment + LOCKOUT
            operator.failed_logins = 0
            minutes = int(LOCKOUT.total_seconds() // 60)
            audit(session, "web", "operator_locked", operator.username, minutes=minutes)
            log.warning(kv("operator_locked", operator=operator.username))
            return SignIn(LOCKED)
        log.info(kv("operator_login_failed", operator=operator.username, reason="password"))
        return SignIn(INVALID)
    operator.failed_logins = 0
    operator.locked_until = None
    operator.last_login_at = moment
    if hasher().check_needs_rehash(operator.password_hash):
        operator.password_hash = hasher().hash(password)
    audit(session, "web", "operator_login", operator.username)
    log.info(kv("operator_login", operator=operator.username, role=operator.role))
    return SignIn(OK, operator)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(hasher().verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


__all__ = [
    "INVALID",
    "LOCKED",
    "LOCKOUT",
    "MAX_FAILED_LOGINS",
    "MIN_PASSWORD_LENGTH",
    "OK",
    "NoSuchOperator",
    "OperatorError",
    "SignIn",
    "authenticate",
    "by_username",
    "check_password",
    "check_role",
    "check_username",
    "count_operators",
    "create_operator",
    "list_operators",
    "set_active",
    "set_password",
    "unlock",
]
