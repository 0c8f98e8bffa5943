"""Two PostgreSQL test runs at once keep to schemas of their own, and drop them at the end."""

from __future__ import annotations

import os
import subprocess

import pytest
from sqlalchemy import create_engine, text

from tests.pg_schemas import PrivateSchema, schema_exists
from tests.processes import BIN, ROOT

PG_URL = os.environ.get("DATABASE_URL", "")

pytestmark = pytest.mark.skipif(
    not PG_URL.startswith("postgresql"),
    reason="needs PostgreSQL: DATABASE_URL=postgresql://… (make test's second pass sets it)",
)


@pytest.mark.slow
def test_two_runs_at_once_do_not_collide(tmp_path):
    """Two real pytest sessions on one server, overlapping from setup to teardown."""
    runs = {"a": "b", "b": "a"}
    procs = {
        me: subprocess.Popen(
            [str(BIN / "pytest"), "-p", "no:cacheprovider", "-q", "tests/pg_probe.py"],
            cwd=ROOT,
            env={
                **os.environ,
                "BIJLI_PG_PROBE_DIR": str(tmp_path),
                "BIJLI_PG_PROBE_NAME": me,
                "BIJLI_PG_PROBE_PEER": peer,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for me, peer in runs.items()
    }
    outputs = {me: proc.communicate(timeout=240)[0] for me, proc in procs.items()}
    for me, proc in procs.items():
        assert proc.returncode == 0, outputs[me]
    schemas = {(tmp_path / f"{me}.schema").read_text() for me in runs}
    assert len(schemas) == 2 and all(name.startswith("bijli_test_") for name in schemas)
    assert not any(schema_exists(PG_URL, name) for name in schemas), "each run drops its own"


def test_a_killed_runs_schema_is_dropped_by_the_next_and_a_live_ones_is_not():
    prefix = "bijli_probe"
    with PrivateSchema(PG_URL, prefix) as live:
        crashed = PrivateSchema(PG_URL, prefix).create()
        # What a killed run leaves: its schema, and no session holding its lock.
        assert crashed._holder is not None and crashed._engine is not None
        crashed._holder.close()
        crashed._engine.dispose()  # ends the session, as a killed client's ends
        assert schema_exists(PG_URL, crashed.name)
        with PrivateSchema(PG_URL, prefix) as later:
            assert schema_exists(PG_URL, later.name)
            assert not schema_exists(PG_URL, crashed.name)
            assert schema_exists(PG_URL, live.name)
    assert not schema_exists(PG_URL, live.name) and not schema_exists(PG_URL, later.name)


def test_the_run_s_url_points_at_its_schema(database_url):
    engine = create_engine(database_url, future=True)
    try:
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            tables = conn.execute(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = :s"), {"s": schema}
            ).scalar_one()
    finally:
        engine.dispose()
    assert schema.startswith("bijli_test_") and schema != "bijli_test"
    assert tables > 5  # migrated there
