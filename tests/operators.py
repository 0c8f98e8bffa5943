"""Operator fixtures (a pytest plugin, see tests/conftest.py): accounts and signing in.

Accounts are made the way ``bijli operator add`` makes them; signing in posts the login form with
the CSRF token the login page gives, as a browser does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher

from bot.admin import accounts
from bot.store import session_scope

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token a page's form carries."""
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


#: The production hasher (argon2id, 64 MiB, three passes), for the test that checks it.
PRODUCTION_HASHER = accounts.hasher


@pytest.fixture(autouse=True)
def quick_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A light argon2id in tests: sign-in tests hash dozens of times on a shared 2-core box."""
    quick = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(accounts, "hasher", lambda: quick)
    accounts._decoy_hash.cache_clear()
    yield
    accounts._decoy_hash.cache_clear()


@pytest.fixture()
def make_operator(engine: Any) -> Callable[..., None]:
    """Make an operator account (role agent unless told)."""

    def make(username: str = "priya", role: str = "agent", name: str = "Priya") -> None:
        with session_scope(engine) as session:
            accounts.create_operator(session, username, PASSWORD, role, name)

    return make


def sign_in(client: Any, username: str = "priya", password: str = PASSWORD, next_: str = "") -> Any:
    """Post the login form as a browser would (with the token from the login page)."""
    token = csrf_from(client.get("/admin/login").get_data(as_text=True))
    url = "/admin/login" + (f"?next={next_}" if next_ else "")
    return client.post(url, data={"username": username, "password": password, "csrf_token": token})
