"""The atomic ticket lock store, on the real Redis, beside Rasa's own RedisLockStore."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from rasa.core.lock_store import LockError, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig, read_endpoint_config

from bot.rasa_runtime.environment import rasa_env
from bot.rasa_runtime.lock_store import AtomicRedisLockStore
from bot.settings import load

ROOT = Path(__file__).resolve().parents[2]
SENDER = "whatsapp:+919000000101"


def _config(redis_url: str) -> EndpointConfig:
    parsed = urlparse(redis_url)
    return EndpointConfig(
        parsed.hostname,
        type="bot.rasa_runtime.lock_store.AtomicRedisLockStore",
        port=parsed.port,
        db=int(parsed.path.lstrip("/") or 0),
        key_prefix="test",
    )


@pytest.fixture()
def stores(redis_url: str, redis_conn: Any) -> list[AtomicRedisLockStore]:
    """Two stores on one flushed Redis, as two Rasa processes would have."""
    return [AtomicRedisLockStore(_config(redis_url)) for _ in range(2)]


def _rasa_store(redis_url: str) -> RedisLockStore:
    config = _config(redis_url)
    return RedisLockStore(host=config.url, **config.kwargs)


def test_rasa_builds_this_store_from_endpoints_yml(redis_url: str) -> None:
    parsed = urlparse(redis_url)
    env = rasa_env(load({"REDIS_URL": redis_url}))
    assert env["REDIS_HOST"] == parsed.hostname
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        config = read_endpoint_config(str(ROOT / "endpoints.yml"), "lock_store")
    store = LockStore.create(config)
    assert type(store) is AtomicRedisLockStore
    assert store.key_prefix == "bijli:lock:"


def test_tickets_from_many_processes_at_once_are_all_different(
    stores: list[AtomicRedisLockStore],
) -> None:
    # Rasa's store reads the lock and writes it back: two takers at once can both get ticket 0.
    numbers: list[int] = []
    start = threading.Barrier(8)

    def take(store: AtomicRedisLockStore) -> None:
        start.wait()
        for _ in range(25):
            numbers.append(store.issue_ticket(SENDER, 60))

    threads = [threading.Thread(target=take, args=(stores[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(numbers) == list(range(200))
    lock = stores[0].get_lock(SENDER)
    assert lock is not None and len(lock.tickets) == 200


def test_turns_of_one_sender_never_overlap_and_go_in_order(
    stores: list[AtomicRedisLockStore],
) -> None:
    inside: list[int] = []
    order: list[int] = []

    async def turn(n: int) -> None:
        await asyncio.sleep(n * 0.002)  # take tickets in the order 0, 1, 2, …
        async with stores[n % 2].lock(SENDER, 30, wait_time_in_seconds=0.01):
            inside.append(n)
            assert len(inside) == 1, f"turns {inside} held the lock together"
            order.append(n)
            await asyncio.sleep(0.02)
            inside.remove(n)

    async def main() -> None:
        await asyncio.gather(*(turn(n) for n in range(6)))

    asyncio.run(main())

    assert order == list(range(6))
    assert stores[0].get_lock(SENDER) is None  # the last turn out removed the lock


def test_a_free_lock_takes_two_round_trips(stores: list[AtomicRedisLockStore]) -> None:
    store = stores[0]
    commands: list[str] = []
    execute = store.red.execute_command

    def counting(*args: Any, **kwargs: Any) -> Any:
        commands.append(str(args[0]))
        return execute(*args, **kwargs)

    store.red.execute_command = counting  # type: ignore[method-assign]

    async def one_turn() -> None:
        async with store.lock(SENDER) as lock:
            assert not lock.is_locked(0)

    asyncio.run(one_turn())

    assert commands == ["EVALSHA", "EVALSHA"]
    assert store.get_lock(SENDER) is None


def test_other_senders_are_not_held_up(stores: list[AtomicRedisLockStore]) -> None:
    async def main() -> float:
        async with stores[0].lock(SENDER):
            started = time.monotonic()
            async with stores[1].lock("whatsapp:+919000000102", wait_time_in_seconds=5):
                return time.monotonic() - started

    assert asyncio.run(main()) < 1


def test_expired_tickets_are_dropped_by_rasas_rule(stores: list[AtomicRedisLockStore]) -> None:
    store = stores[0]
    store.issue_ticket(SENDER, 0.05)  # a turn whose process died holding the lock
    store.issue_ticket(SENDER, 0.05)  # and one that waited behind it and gave up
    time.sleep(0.1)

    async def main() -> list[int]:
        async with store.lock(SENDER, wait_time_in_seconds=5) as lock:
            return [ticket.number for ticket in lock.tickets]

    started = time.monotonic()
    # Both are gone at once; with no live ticket left the numbers start again at 0, as in Rasa.
    assert asyncio.run(main()) == [0]
    assert time.monotonic() - started < 1
    assert store.get_lock(SENDER) is None


def test_a_waiting_turn_whose_lock_expired_gets_rasas_lock_error(
    stores: list[AtomicRedisLockStore],
) -> None:
    store = stores[0]
    store.issue_ticket(SENDER, 0.3)  # held by a turn that never gives it back

    async def main() -> None:
        async with store.lock(SENDER, lock_lifetime=0.05, wait_time_in_seconds=0.1):
            pass

    started = time.monotonic()
    with pytest.raises(LockError):
        asyncio.run(main())
    assert time.monotonic() - started < 5
    assert store.get_lock(SENDER) is None


def test_locks_read_the_same_in_both_stores(
    stores: list[AtomicRedisLockStore], redis_url: str
) -> None:
    # A rolling upgrade has processes with either store: each must honour the other's tickets.
    rasa = _rasa_store(redis_url)
    ours = stores[0]

    first = rasa.issue_ticket(SENDER, 60)
    second = ours.issue_ticket(SENDER, 60)
    third = rasa.issue_ticket(SENDER, 60)
    assert (first, second, third) == (0, 1, 2)

    lock = ours.get_lock(SENDER)
    assert lock is not None and lock.now_serving == 0 and lock.last_issued == 2
    ours.cleanup(SENDER, first)
    lock = rasa.get_lock(SENDER)
    assert lock is not None and lock.now_serving == 1
    rasa.cleanup(SENDER, second)
    ours.cleanup(SENDER, third)
    assert rasa.get_lock(SENDER) is None


def test_a_redis_that_lost_its_scripts_still_answers(
    stores: list[AtomicRedisLockStore], redis_conn: Any
) -> None:
    # A restarted Redis has no cached scripts: redis-py loads them again (NOSCRIPT).
    store = stores[0]
    assert store.issue_ticket(SENDER, 60) == 0
    redis_conn.script_flush()
    assert store.issue_ticket(SENDER, 60) == 1
    store.cleanup(SENDER, 0)
    store.cleanup(SENDER, 1)
    assert store.get_lock(SENDER) is None
