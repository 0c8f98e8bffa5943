"""Shared fixtures: a real Redis, a real database (SQLite, or PostgreSQL via DATABASE_URL), the app.

The Redis server is the project's own embedded one unless ``REDIS_URL`` is set; it is flushed before
every test. The database schema is built once per session through Alembic and emptied after every
test, so each test starts from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from bot import connections, create_app, migrations
from bot import settings as settings_mod
from bot.connections import redis_client as connect
from bot.dev.embedded_redis import EmbeddedRedis
from bot.store import Base

#: The gateway tests' fixtures (fake Twilio, stub Rasa, signed posts, a worker), shared with dev;
#: and operators for the /admin pages.
pytest_plugins = ["tests.gateway_stack", "tests.operators"]

#: PostgreSQL schema the suite owns; dropped and rebuilt at the start of each run.
PG_SCHEMA = "bijli_test"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis: REDIS_URL if set, else an embedded server for this session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture()
def redis_conn(redis_url: str) -> Iterator[object]:
    """A client on a flushed Redis database."""
    conn = connect(redis_url)
    conn.flushdb()
    yield conn
    conn.close()


def _postgres_url(url: str) -> str:
    """Point a PostgreSQL URL at the suite's own schema, rebuilt empty."""
    from sqlalchemy import create_engine

    admin = create_engine(url, future=True)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    admin.dispose()
    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={PG_SCHEMA}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for this session."""
    env_url = os.environ.get("DATABASE_URL")
    if env_url and env_url.startswith("postgresql"):
        url = _postgres_url(env_url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    migrations.upgrade(url)
    yield url
    connections.reset()


@pytest.fixture()
def engine(database_url: str) -> Iterator[Engine]:
    """The session's engine; every table is emptied after the test."""
    eng = connections.engine_for(database_url)
    yield eng
    with eng.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture()
def settings(database_url: str, redis_url: str, tmp_path: Path) -> settings_mod.Settings:
    """Settings pointing at the test database, the test Redis and a scratch var dir."""
    return settings_mod.load(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "BIJLI_VAR_DIR": str(tmp_path / "var"),
        }
    )


@pytest.fixture()
def app(settings: settings_mod.Settings, engine: Engine, redis_conn: object):  # type: ignore[no-untyped-def]
    """The Flask app on the test settings, with empty tables and a flushed Redis."""
    application = create_app(settings)
    application.testing = True
    return application


@pytest.fixture()
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()
