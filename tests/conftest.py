"""Shared fixtures: a real Redis, a real database (SQLite, or PostgreSQL via DATABASE_URL), the app.

The Redis server is the project's own embedded one unless ``REDIS_URL`` is set; it is flushed before
every test. The database schema is built once per session through Alembic and emptied after every
test, so each test starts from empty tables. On PostgreSQL each run has a schema of its own
(``tests/pg_schemas.py``), dropped at the end, so two runs on one server never meet.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot import connections, create_app, migrations
from bot import settings as settings_mod
from bot.connections import redis_client as connect
from bot.dev.embedded_redis import EmbeddedRedis
from bot.store import Base
from tests.pg_schemas import PrivateSchema

#: The gateway tests' fixtures (fake Twilio, stub Rasa, signed posts, a worker), shared with dev;
#: and operators for the /admin pages.
pytest_plugins = ["tests.gateway_stack", "tests.operators"]

#: Prefix of the PostgreSQL schema each run creates for itself (``bijli_test_<n>``).
PG_SCHEMA_PREFIX = "bijli_test"


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


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for this session (on PostgreSQL, in a schema of its own)."""
    env_url = os.environ.get("DATABASE_URL")
    if not (env_url and env_url.startswith("postgresql")):
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        migrations.upgrade(url)
        yield url
        connections.reset()
        return
    with PrivateSchema(env_url, PG_SCHEMA_PREFIX) as schema:
        migrations.upgrade(schema.url)
        yield schema.url
        connections.reset()  # every engine on the schema lets go before it is dropped


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


@pytest.fixture(scope="session")
def predict_graph(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The cached model's (metadata, predict graph runner, storage), loaded once per session."""
    from tests.rasa_runtime.model import load_predict_graph

    return load_predict_graph(tmp_path_factory.mktemp("model"))
