"""Scale-out on one machine: two Rasa servers behind a round robin, three workers, PostgreSQL.

Twenty senders each send ten numbered messages at once through Twilio's signed webhook (gunicorn),
answered by three ``bijli worker`` processes through a round-robin balancer
(tests/e2e/round_robin.py) in front of two ``bijli rasa-server`` processes, which share the
Redis tracker and lock stores, and one action server, with the data in PostgreSQL. Each message
asks the dues of its own account, and the reply names the account, so the replies show which
message each one answers. Midway one Rasa server is killed (SIGKILL, its whole process group):
the one that asked a consumer "which account?" just before. The answer to that question, sent
after the kill, reaches the other server, which knows what it answers; and every message of the
run is answered, each sender's in the order sent, without a dead letter.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot import migrations, store
from bot.actions.tickets import RECEIPT_MISSING
from bot.store import DeadLetter, InboundMessage, OutboundMessage, session_scope
from tests.e2e.conftest import Stack, launch, new_sid, require_model, wait_for
from tests.e2e.round_robin import RoundRobin
from tests.gateway_stack import ServerThread
from tests.pg_schemas import PrivateSchema
from tests.processes import stop

pytestmark = [pytest.mark.rasa, pytest.mark.slow, pytest.mark.timeout(900)]

#: The PostgreSQL that ``make test`` uses for its PostgreSQL pass (Makefile, PG_TEST_URL).
PG_TEST_URL = "postgresql://127.0.0.1:5432/test"
#: Twenty senders, ten messages each.
SENDERS = [f"+9197000010{n:02d}" for n in range(20)]
MESSAGES = 10
#: A consumer with two accounts, whom the bot asks "which account?" before the kill.
CHOOSER = "+919700001200"
#: Replies counted before one Rasa server is killed (a third of the run).
KILL_AFTER = len(SENDERS) * MESSAGES // 3


def account(sender: int, message: int) -> str:
    """The account that message ``message`` of sender ``sender`` asks about (10 digits)."""
    return f"19700{sender:02d}{message:03d}"


HOME, SHOP = account(20, 1), account(20, 2)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A migrated schema of its own on the PostgreSQL server, in either pass of ``make test``."""
    env_url = os.environ.get("DATABASE_URL") or ""
    on_postgresql = env_url.startswith("postgresql")
    url = env_url if on_postgresql else PG_TEST_URL
    if not on_postgresql:
        # The SQLite pass: PostgreSQL may be absent from the machine, which only skips.
        parsed = make_url(url)
        try:
            socket.create_connection((parsed.host, parsed.port or 5432), 2).close()
        except OSError as exc:
            pytest.skip(f"scale-out runs on PostgreSQL and none answers at {url}: {exc}")
    with PrivateSchema(url, "bijli_scale") as schema:
        migrations.upgrade(schema.url)
        yield schema.url


@pytest.fixture(scope="module")
def scaled(
    tmp_path_factory: pytest.TempPathFactory, pg_url: str
) -> Iterator[tuple[Stack, RoundRobin]]:
    """The stack with two Rasa servers behind a round robin and three worker processes."""
    require_model()
    balancers: list[RoundRobin] = []

    @contextmanager
    def front(urls: list[str]) -> Iterator[str]:
        balancer = RoundRobin(urls)
        balancers.append(balancer)
        with ServerThread(balancer) as server:
            yield server.url

    root: Path = tmp_path_factory.mktemp("scale")
    with launch(
        root,
        pg_url,
        rasa_servers=2,
        rasa_front=front,
        worker_processes=3,
        workers_each=1,
        # One Sanic worker each: two servers are the point, and each worker holds the model.
        sanic_workers=1,
    ) as stack:
        _register(stack)
        yield stack, balancers[0]


def _register(stack: Stack) -> None:
    """Each sender's ten accounts, and the chooser's two, with dues that differ."""
    rows = [
        (account(s, m), mobile, 100_000 + 100 * s + m)
        for s, mobile in enumerate(SENDERS)
        for m in range(MESSAGES)
    ]
    rows += [(HOME, CHOOSER, 184_500), (SHOP, CHOOSER, 752_050)]
    with session_scope(stack.engine) as session:
        for number, mobile, _ in rows:
            shop = number == SHOP
            session.add(
                store.Consumer(
                    discom="KESCO",
                    new_account_no=number,
                    old_account_no=number[-7:],
                    name="राम कुमार जनरल स्टोर" if shop else "राम कुमार",
                    mobile=mobile,
                    category="commercial" if shop else "domestic",
                    meter_type="postpaid",
                    area="Kidwai Nagar",
                    language="hi",
                )
            )
        session.flush()
        for number, _, due in rows:
            session.add(
                store.Bill(
                    new_account_no=number,
                    bill_month="2026-10",
                    amount_due_paise=due,
                    due_date=dt.date(2026, 11, 20),
                    arrears_paise=0,
                )
            )


def _inbound(stack: Stack, sid: str) -> InboundMessage | None:
    with session_scope(stack.engine) as session:
        row = session.execute(
            select(InboundMessage).where(InboundMessage.message_sid == sid)
        ).scalar_one_or_none()
        if row is not None:
            session.expunge(row)
        return row


def _replies(stack: Stack, sid: str) -> list[OutboundMessage] | None:
    """The replies to message ``sid``, once it is answered (None before)."""
    row = _inbound(stack, sid)
    if row is None or row.processed_at is None:
        return None
    with session_scope(stack.engine) as session:
        replies = list(
            session.execute(
                select(OutboundMessage)
                .where(OutboundMessage.idempotency_key.like(f"reply:{row.id}:%"))
                .order_by(OutboundMessage.id)
            ).scalars()
        )
        session.expunge_all()
        return replies


def _say(stack: Stack, mobile: str, text: str) -> tuple[str, str]:
    """Send ``text`` and wait for its answer: (the message's sid, the replies joined)."""
    sid = new_sid()
    assert stack.post_message(text, mobile, sid=sid).status_code == 200
    replies = wait_for(lambda: _replies(stack, sid), timeout=300)
    return sid, "\n".join(r.body for r in replies)


def _answered(stack: Stack) -> int:
    with session_scope(stack.engine) as session:
        return session.execute(
            select(func.count())
            .select_from(InboundMessage)
            .where(InboundMessage.from_number.in_(SENDERS), InboundMessage.processed_at.isnot(None))
        ).scalar_one()


def test_two_rasa_servers_three_workers_and_a_kill(scaled: tuple[Stack, RoundRobin]) -> None:
    stack, balancer = scaled
    started = time.monotonic()

    # Before the kill: the account form asks the chooser which of two accounts.
    _, question = _say(stack, CHOOSER, "receipt chahiye")
    assert HOME in question and SHOP in question, question
    [asked] = balancer.served(f"whatsapp:{CHOOSER}")
    assert asked.status == 200
    victim, survivor = asked.backend, 1 - asked.backend

    # Twenty senders, each posting its ten messages one after another, all at once.
    sids = {mobile: [new_sid() for _ in range(MESSAGES)] for mobile in SENDERS}
    errors: list[str] = []

    def send(s: int, mobile: str) -> None:
        for m, sid in enumerate(sids[mobile]):
            answer = stack.post_message(f"bill kitna hai {account(s, m)}", mobile, sid=sid)
            if answer.status_code != 200:
                errors.append(f"{mobile} #{m}: {answer.status_code}")

    posters = [threading.Thread(target=send, args=(s, m)) for s, m in enumerate(SENDERS)]
    for poster in posters:
        poster.start()

    # Mid-run, with a request in its hands if one comes soon: kill the server that asked.
    wait_for(lambda: _answered(stack) >= KILL_AFTER, timeout=300)
    deadline = time.monotonic() + 10
    while balancer.in_flight[victim] == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    stop(stack.rasa_procs[victim], signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: balancer.in_flight[victim] == 0, timeout=30)
    with balancer.lock:
        before_kill = list(balancer.forwarded)
    answered_at_kill = _answered(stack)

    # After it: the answer to the question reaches the other server, which knows the question.
    _, answer = _say(stack, CHOOSER, "pehle wale ka")
    *_, answered_by = balancer.served(f"whatsapp:{CHOOSER}")
    assert answered_by.backend == survivor and answered_by.status == 200
    with session_scope(stack.engine) as session:
        tickets = list(
            session.execute(
                select(store.Ticket).where(
                    store.Ticket.kind == RECEIPT_MISSING, store.Ticket.mobile == CHOOSER
                )
            ).scalars()
        )
        filed = [(t.new_account_no, t.description) for t in tickets]
        assert filed == [(HOME, "receipt chahiye")], f"the survivor answered: {answer!r}"
        assert tickets[0].reference in answer, answer

    for poster in posters:
        poster.join()
    assert not errors, errors
    wait_for(lambda: _answered(stack) == len(SENDERS) * MESSAGES, timeout=600)
    all_answered_at = time.monotonic()

    # Every message answered, by a reply naming its own account, sent, and in the order sent.
    for s, mobile in enumerate(SENDERS):
        position: dict[str, int] = {}
        for m, sid in enumerate(sids[mobile]):
            replies = _replies(stack, sid)
            assert replies, f"{mobile} #{m} has no reply"
            assert any(account(s, m) in r.body for r in replies), (mobile, m, replies[0].body)
            for reply in replies:
                assert reply.twilio_sid, f"{mobile} #{m}: a reply was not sent"
                position[reply.twilio_sid] = m
        sent = [position[x["sid"]] for x in stack.sent(f"whatsapp:{mobile}")]
        assert sent == sorted(sent) and set(sent) == set(range(MESSAGES)), (mobile, sent)
    with session_scope(stack.engine) as session:
        assert session.execute(select(func.count()).select_from(DeadLetter)).scalar_one() == 0

    # Both servers took messages of the run before the kill; only the survivor after it.
    assert {f.backend for f in before_kill if f.sender.removeprefix("whatsapp:") in SENDERS} == {
        0,
        1,
    }
    with balancer.lock:
        after_kill = balancer.forwarded[len(before_kill) :]
    assert after_kill and {f.backend for f in after_kill} == {survivor}
    broken = [f.sender for f in before_kill if f.status == 0]
    print(
        f"scale-out: {len(SENDERS) * MESSAGES} messages answered {all_answered_at - started:.0f} s "
        f"after the first question, {all_answered_at - killed_at:.0f} s after the kill; "
        f"{answered_at_kill} answered at the kill; requests it broke: {broken}; "
        f"connections refused after it: {balancer.refused[victim]}"
    )
