"""The daily lookup cap holds when a reader's lookups arrive at the same moment (two Rasa
servers, two action-server threads): never one more than the cap."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select

from bot import store, verification

LIMIT = 5


def test_concurrent_lookups_never_pass_the_cap(engine: Any, area: dict[str, int]) -> None:
    with store.session_scope(engine) as session:
        reader = session.get(store.Staff, area["reader"])
        for n in range(LIMIT - 1):
            verification.check_lookup(
                session, reader, subject=f"12345678{n:02}", limit=LIMIT, channel="sms", via="t"
            )
    threads = 8
    start = threading.Barrier(threads)

    def lookup(n: int) -> verification.Lookup:
        with store.session_scope(engine) as session:
            staff = session.get(store.Staff, area["reader"])
            assert staff is not None
            start.wait()
            return verification.check_lookup(
                session, staff, subject=f"22345678{n:02}", limit=LIMIT, channel="sms", via="t"
            )

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(lookup, range(threads)))
    assert outcomes.count(verification.Lookup.ALLOWED) == 1
    assert outcomes.count(verification.Lookup.CAP_REACHED) == 1, "the officers are told once"
    assert outcomes.count(verification.Lookup.REFUSED) == threads - 2
    with store.session_scope(engine) as session:
        log = store.AuditLog
        allowed = session.execute(
            select(func.count()).where(log.action == verification.LOOKUP)
        ).scalar_one()
    assert allowed == LIMIT
