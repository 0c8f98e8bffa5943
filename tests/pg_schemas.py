"""A PostgreSQL schema of its own for each test or benchmark run, dropped when the run ends.

Two runs on one server at once (two clones' ``make test``, a benchmark beside the suite) used to
share one schema, and each dropped and rebuilt it under the other. Now each run creates
``<prefix>_<n>`` with a random ``n`` and points its URL's ``search_path`` at it.

A run holds a session-level advisory lock on ``(LOCK_CLASS, n)`` while it lives, taken before
its schema exists. A schema of ours whose lock nobody holds was left by a run that was killed,
and the next run drops it; a live run's schema is never touched.
"""

from __future__ import annotations

import re
import secrets
from types import TracebackType

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url

#: First key of our advisory locks (``pg_advisory_lock(int, int)``): "bj", for bijli.
LOCK_CLASS = 0x626A


class PrivateSchema:
    """An empty schema for one run; ``url`` points at it. Use as a context manager."""

    def __init__(self, url: str, prefix: str) -> None:
        self.admin_url = url
        self.prefix = prefix
        self.key = secrets.randbelow(2**31)
        self.name = f"{prefix}_{self.key}"
        self._engine: Engine | None = None
        self._holder: Connection | None = None

    @property
    def url(self) -> str:
        """The database URL with this schema as its search path."""
        options = f"-csearch_path={self.name}"
        return (
            make_url(self.admin_url)
            .update_query_dict({"options": options})
            .render_as_string(hide_password=False)
        )

    def create(self) -> PrivateSchema:
        """Lock our key, drop schemas that dead runs left, create ours."""
        self._engine = create_engine(self.admin_url, future=True)
        holder = self._holder = self._engine.connect()
        # Session-level: the lock lasts as long as this connection, whatever its transactions.
        holder.execute(text("SELECT pg_advisory_lock(:c, :k)"), {"c": LOCK_CLASS, "k": self.key})
        holder.commit()
        self.drop_abandoned()
        holder.execute(text(f'CREATE SCHEMA "{self.name}"'))
        holder.commit()
        return self

    def drop_abandoned(self) -> list[str]:
        """Drop this prefix's schemas whose run is gone (nobody holds their lock); their names."""
        assert self._holder is not None, "create() first"
        holder = self._holder
        pattern = re.compile(rf"{re.escape(self.prefix)}_(\d+)")
        names = holder.execute(text("SELECT nspname FROM pg_namespace")).scalars().all()
        dropped = []
        for name in names:
            found = pattern.fullmatch(name)
            if found is None or name == self.name:
                continue
            key = {"c": LOCK_CLASS, "k": int(found.group(1))}
            if holder.execute(text("SELECT pg_try_advisory_lock(:c, :k)"), key).scalar_one():
                holder.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
                holder.execute(text("SELECT pg_advisory_unlock(:c, :k)"), key)
                dropped.append(name)
            holder.commit()
        return dropped

    def drop(self) -> None:
        """Drop the schema and let go of the lock."""
        if self._holder is None or self._engine is None:
            return
        try:
            # A connection left inside a transaction on our tables would block the drop for
            # ever; fail instead (the next run drops the schema, once our lock is gone).
            self._holder.execute(text("SET lock_timeout = '30s'"))
            self._holder.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
            self._holder.commit()
        finally:
            self._holder.close()  # ends the session, and its lock with it
            self._engine.dispose()
            self._holder = self._engine = None

    def __enter__(self) -> PrivateSchema:
        return self.create()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.drop()


def schema_exists(url: str, name: str) -> bool:
    """True when the database at ``url`` has a schema called ``name``."""
    engine = create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            query = text("SELECT count(*) FROM pg_namespace WHERE nspname = :n")
            return bool(conn.execute(query, {"n": name}).scalar_one())
    finally:
        engine.dispose()


__all__ = ["LOCK_CLASS", "PrivateSchema", "schema_exists"]
