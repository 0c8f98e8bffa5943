"""Operator accounts: argon2 hashes, sign-in, lockout after repeated failures, the CLI."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from bot import connections
from bot.admin import accounts
from bot.cli import main
from bot.store import AuditLog, Operator, session_scope
from tests.operators import PASSWORD, PRODUCTION_HASHER

NOW = dt.datetime(2026, 11, 23, 6, 0)


def _operator(engine, username="priya") -> Operator:
    with session_scope(engine) as session:
        found = accounts.by_username(session, username)
        assert found is not None
        return found


def test_passwords_are_stored_as_argon2id_hashes(engine, make_operator):
    make_operator()
    stored = _operator(engine).password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_production_hashes_use_rfc_9106_parameters():
    made = PRODUCTION_HASHER().hash(PASSWORD)
    assert made.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PRODUCTION_HASHER().verify(made, PASSWORD)


def test_a_weaker_old_hash_is_upgraded_at_sign_in(engine, make_operator, monkeypatch):
    make_operator()  # hashed with the light test parameters
    monkeypatch.setattr(accounts, "hasher", PRODUCTION_HASHER)
    with session_scope(engine) as session:
        assert accounts.authenticate(session, "priya", PASSWORD, NOW).outcome == accounts.OK
    assert _operator(engine).password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


@pytest.mark.parametrize(
    ("username", "password", "role", "problem"),
    [
        ("ab", PASSWORD, "agent", "3 to 30"),
        ("Priya Sharma", PASSWORD, "agent", "3 to 30"),
        ("priya", "short", "agent", "at least 12"),
        ("priya", "x" * 300, "agent", "at most 256"),
        ("priya", PASSWORD, "superuser", "agent, officer, admin"),
    ],
)
def test_bad_accounts_are_refused_with_a_reason(engine, username, password, role, problem):
    with pytest.raises(accounts.OperatorError, match=problem), session_scope(engine) as session:
        accounts.create_operator(session, username, password, role)


def test_usernames_are_unique_whatever_their_case(engine, make_operator):
    make_operator("priya")
    with pytest.raises(accounts.OperatorError, match="exists"), session_scope(engine) as s:
        accounts.create_operator(s, "PRIYA", PASSWORD, "agent")


def test_sign_in_with_the_right_password_only(engine, make_operator):
    make_operator()
    with session_scope(engine) as session:
        assert accounts.authenticate(session, "Priya", PASSWORD, NOW).outcome == accounts.OK
        assert accounts.authenticate(session, "priya", "wrong password!", NOW).outcome == (
            accounts.INVALID
        )
        assert accounts.authenticate(session, "nobody", PASSWORD, NOW).outcome == accounts.INVALID
    assert _operator(engine).last_login_at == NOW


def test_five_failures_lock_the_account_even_against_the_right_password(engine, make_operator):
    make_operator()
    with session_scope(engine) as session:
        outcomes = [
            accounts.authenticate(session, "priya", f"wrong {n} password", NOW).outcome
            for n in range(accounts.MAX_FAILED_LOGINS)
        ]
        assert outcomes == [accounts.INVALID] * 4 + [accounts.LOCKED]
        locked = accounts.authenticate(session, "priya", PASSWORD, NOW + dt.timedelta(minutes=14))
        assert locked.outcome == accounts.LOCKED and locked.operator is None
        later = NOW + accounts.LOCKOUT + dt.timedelta(seconds=1)
        assert accounts.authenticate(session, "priya", PASSWORD, later).outcome == accounts.OK
        actions = [row.action for row in session.query(AuditLog).order_by(AuditLog.id)]
        assert actions[-2:] == ["operator_locked", "operator_login"]


def test_a_success_resets_the_count_of_failures(engine, make_operator):
    make_operator()
    with session_scope(engine) as session:
        for _ in range(accounts.MAX_FAILED_LOGINS - 1):
            accounts.authenticate(session, "priya", "wrong password!", NOW)
        assert accounts.authenticate(session, "priya", PASSWORD, NOW).outcome == accounts.OK
        for _ in range(accounts.MAX_FAILED_LOGINS - 1):
            accounts.authenticate(session, "priya", "wrong password!", NOW)
        assert accounts.authenticate(session, "priya", PASSWORD, NOW).outcome == accounts.OK


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(engine, make_operator):
    make_operator()
    epoch = _operator(engine).session_epoch
    with session_scope(engine) as session:
        accounts.set_active(session, "priya", False)
        assert accounts.authenticate(session, "priya", PASSWORD, NOW).outcome == accounts.INVALID
    assert _operator(engine).session_epoch == epoch + 1


@pytest.fixture()
def cli(monkeypatch, settings, engine):
    """The ``bijli`` command on the test database."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    connections.reset()
    yield CliRunner()
    connections.reset()


def test_operator_add_asks_for_the_password_twice_and_never_echoes_it(cli, engine):
    result = cli.invoke(
        main,
        ["operator", "add", "priya", "--role", "agent", "--name", "Priya"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "operator priya (agent) added, shown as 'Priya'" in result.output
    assert PASSWORD not in result.output
    with session_scope(engine) as session:
        assert accounts.authenticate(session, "priya", PASSWORD, NOW).outcome == accounts.OK


def test_operator_add_refuses_a_mismatch_a_short_password_and_a_duplicate(cli):
    mismatch = cli.invoke(main, ["operator", "add", "ravi"], input=f"{PASSWORD}\nother one!!\n")
    assert mismatch.exit_code != 0
    short = cli.invoke(main, ["operator", "add", "ravi", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 12" in short.output
    ok = cli.invoke(main, ["operator", "add", "ravi", "--password-stdin"], input=f"{PASSWORD}\n")
    assert ok.exit_code == 0, ok.output
    again = cli.invoke(main, ["operator", "add", "ravi", "--password-stdin"], input=f"{PASSWORD}\n")
    assert again.exit_code == 1 and "exists already" in again.output


def test_unlock_passwd_disable_and_list(cli, engine, make_operator):
    make_operator()
    with session_scope(engine) as session:
        for _ in range(accounts.MAX_FAILED_LOGINS):
            accounts.authenticate(session, "priya", "wrong password!")
    listed = cli.invoke(main, ["operator", "list"])
    assert "priya\tagent\tlocked until" in listed.output
    assert cli.invoke(main, ["operator", "unlock", "priya"]).exit_code == 0
    assert (
        "priya\tagent\tactive\tlast sign-in never\tPriya"
        in cli.invoke(main, ["operator", "list"]).output
    )
    new = "a brand new passphrase"
    changed = cli.invoke(main, ["operator", "passwd", "priya", "--password-stdin"], input=new)
    assert changed.exit_code == 0, changed.output
    with session_scope(engine) as session:
        assert accounts.authenticate(session, "priya", new).outcome == accounts.OK
    assert cli.invoke(main, ["operator", "disable", "priya"]).exit_code == 0
    assert "disabled" in cli.invoke(main, ["operator", "list"]).output
    missing = cli.invoke(main, ["operator", "unlock", "nobody"])
    assert missing.exit_code == 1 and "no operator is called 'nobody'" in missing.output
