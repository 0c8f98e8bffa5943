"""Run by tests/test_pg_schemas.py in two pytest processes at once (not collected on its own).

Each run writes its name into a table of the session's database, waits until the other run has
done the same, then reads the table back: with one shared schema, one run's setup would have
dropped the other's table.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import create_engine, text


def _wait_for(path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"the other run never wrote {path.name}"
        time.sleep(0.1)


def test_probe(database_url: str) -> None:
    folder = Path(os.environ["BIJLI_PG_PROBE_DIR"])
    me, peer = os.environ["BIJLI_PG_PROBE_NAME"], os.environ["BIJLI_PG_PROBE_PEER"]
    engine = create_engine(database_url, future=True)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE probe (run text)"))
            conn.execute(text("INSERT INTO probe VALUES (:me)"), {"me": me})
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        (folder / f"{me}.schema").write_text(schema)
        (folder / f"{me}.ready").touch()
        _wait_for(folder / f"{peer}.ready")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT run FROM probe")).scalars().all() == [me]
        (folder / f"{me}.done").touch()
        _wait_for(folder / f"{peer}.done")
    finally:
        engine.dispose()
