"""Action tests run against the suite's real SQLite/PostgreSQL store and real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot import connections


@pytest.fixture()
def store_env(
    monkeypatch: pytest.MonkeyPatch,
    settings,
    engine,
    redis_conn,  # type: ignore[no-untyped-def]
) -> Iterator[object]:
    """Point the action server's settings at the test database and a flushed Redis."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("BIJLI_LOOKUP_LIMIT_PER_DAY", "3")
    connections.reset()
    yield engine
    connections.reset()
