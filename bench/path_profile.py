"""CPU, Redis commands and SQL statements per message of the web and the worker, in one process.

The app (Flask test client, signed webhooks and status callbacks) and an RQ worker run in this
process's main thread against the embedded Redis, a SQLite file (or DATABASE_URL), the fake
Twilio and a stub Rasa (both in threads here, so the main thread's CPU clock counts only the
web's or the worker's work). Each phase reports CPU ms per message (``time.thread_time``), Redis
commands per message (Redis's own ``total_commands_processed``) and SQL statements per message;
``--profile`` adds the top of a cProfile of each phase.

    python bench/path_profile.py [--messages 300] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rq import Queue  # noqa: E402
from sqlalchemy import event  # noqa: E402

from bot import connections, create_app, delivery_status, migrations, queues  # noqa: E402
from bot import settings as settings_mod  # noqa: E402
from bot.dev import fake_twilio  # noqa: E402
from bot.dev.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from bot.store import InboundMessage, OutboundMessage, session_scope  # noqa: E402
from bot.worker import Worker  # noqa: E402
from tests.gateway_stack import ServerThread, StubRasa, inbound_form, sign  # noqa: E402


def measure(
    name: str, n: int, fn: Callable[[], None], redis_conn: Any, engine: Any, profile: bool
) -> dict[str, float]:
    """Run ``fn`` once; CPU ms, Redis commands and SQL statements per message."""
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    before_stats = redis_conn.info("commandstats")
    before_cmds = redis_conn.info("stats")["total_commands_processed"]
    profiler = cProfile.Profile(time.thread_time) if profile else None
    started = time.thread_time()
    if profiler:
        profiler.enable()
    attr = sys.modules.get("wp2_attr")
    if attr:
        attr.counts.clear()
    fn()
    if profiler:
        profiler.disable()
    if attr:
        for (where, cmd), calls in attr.counts.most_common(40):
            print(f"      {calls / n:5.2f} {cmd:<12} {where}")
    cpu = time.thread_time() - started
    # The INFO call itself is one command.
    cmds = redis_conn.info("stats")["total_commands_processed"] - before_cmds - 1
    event.remove(engine, "before_cursor_execute", count)
    after_stats = redis_conn.info("commandstats")
    per_command = {
        name.removeprefix("cmdstat_"): (value["calls"] - before_stats.get(name, {}).get("calls", 0))
        / n
        for name, value in after_stats.items()
    }
    result = {"cpu_ms": 1000 * cpu / n, "redis": cmds / n, "sql": statements[0] / n}
    print(
        f"{name:<18} cpu {result['cpu_ms']:6.2f} ms/msg  redis {result['redis']:5.1f} cmds/msg"
        f"  sql {result['sql']:5.1f} stmts/msg",
        flush=True,
    )
    top = sorted(per_command.items(), key=lambda item: -item[1])[:20]
    print("   " + " ".join(f"{name}={calls:.1f}" for name, calls in top if calls >= 0.05))
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(45)
        print(out.getvalue())
        profiler.dump_stats(f"/tmp/path-profile-{name.split()[0]}.pstats")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    n = args.messages
    tmp = Path(tempfile.mkdtemp(prefix="bijli-path-"))
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'db.sqlite3'}"
    migrations.upgrade(database_url)
    with EmbeddedRedis() as redis_server:
        stub = StubRasa()
        fake_app = fake_twilio.create_fake_app(
            settings_mod.DEV_ACCOUNT_SID, settings_mod.DEV_AUTH_TOKEN, callback_delay=0.0
        )
        fake_app.extensions["fake_twilio"].post_callbacks = False
        with ServerThread(stub) as rasa, ServerThread(fake_app) as twilio_fake:
            os.environ.update(
                {
                    "DATABASE_URL": database_url,
                    "REDIS_URL": redis_server.url,
                    "RASA_URL": rasa.url,
                    "TWILIO_API_BASE_URL": twilio_fake.url,
                    "PUBLIC_BASE_URL": f"http://127.0.0.1:{free_port()}",
                    "BIJLI_VAR_DIR": str(tmp / "var"),
                    "BIJLI_WHATSAPP_MPS": "1000",
                    "BIJLI_SMS_MPS": "1000",
                }
            )
            connections.reset()
            cfg = settings_mod.load()
            engine = connections.engine(cfg)
            conn = connections.redis(cfg)
            client = create_app(cfg).test_client()

            def webhooks() -> None:
                for i in range(n):
                    form = inbound_form(f"message {i}", sender=f"+9197000{i:05d}")
                    signature = sign(cfg, "/twilio/messages", form)
                    response = client.post(
                        "/twilio/messages", data=form, headers={"X-Twilio-Signature": signature}
                    )
                    assert response.status_code == 200, response.status_code

            def work() -> None:
                qs = [Queue(name, connection=conn) for name in queues.ALL]
                Worker(qs, connection=conn).work(burst=True, with_scheduler=False)

            def callbacks() -> None:
                with session_scope(engine) as session:
                    sids = [s for (s,) in session.query(OutboundMessage.twilio_sid).all() if s]
                assert len(sids) >= n, len(sids)
                for status in ("sent", "delivered", "read"):
                    for sid in sids[:n]:
                        form = {"MessageSid": sid, "MessageStatus": status}
                        signature = sign(cfg, "/twilio/status", form)
                        response = client.post(
                            "/twilio/status", data=form, headers={"X-Twilio-Signature": signature}
                        )
                        assert response.status_code == 204, response.status_code

            # A warm-up message through web and worker, so imports are not measured.
            warm = inbound_form("warm up", sender="+919699999999")
            client.post(
                "/twilio/messages",
                data=warm,
                headers={"X-Twilio-Signature": sign(cfg, "/twilio/messages", warm)},
            )
            work()
            measure("webhook", n, webhooks, conn, engine, args.profile)
            measure("worker", n, work, conn, engine, args.profile)
            with session_scope(engine) as session:
                answered = (
                    session.query(InboundMessage)
                    .filter(InboundMessage.processed_at.isnot(None))
                    .count()
                )
            asked = len(stub.requests)
            print(f"answered {answered - 1} of {n}; Rasa asked {asked - 1} times", flush=True)
            assert answered == asked == n + 1, (answered, asked)
            measure("status x3", n, callbacks, conn, engine, args.profile)
            measure("flush (worker)", n, delivery_status.flush_job, conn, engine, args.profile)


if __name__ == "__main__":
    main()
