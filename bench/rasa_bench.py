"""Rasa speed: parse latency, whole-reply time and model load, ours beside a stock `rasa init` bot.

Both assistants are served on this machine in the same run and driven by the same load
generator: C concurrent senders, each sending its next message as soon as the previous reply
arrives. Rounds alternate between the two servers so that the machine's noise falls on both; the
figures printed are medians over rounds. Each request opens its own connection, for both
servers, as the gateway's jobs do.

The stock bot runs as Rasa ships it (`rasa run --enable-api`, the REST channel). Ours runs as the
Procfile runs it (`bijli rasa-server`: the gateway's signed channel, the API behind a token) and
gets what the worker posts (bot/gateway/inbound.py): a body signed with the gateway secret naming
the channel, mobile and role. ``--registered`` of the senders write from a mobile registered to
one account, as most consumers do; the others are unknown numbers, so account questions go
through the account form (ask for the number, look it up). ``--registered 0`` is the hardest mix.

    python bench/rasa_bench.py [--rounds 3] [--messages 300] [--concurrency 10] [--registered 7]

The stock assistant is created with `rasa init --no-prompt` once and cached in
~/.cache/bijli/bench/ (it trains for about two minutes the first time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import migrations, signing  # noqa: E402
from bot.connections import redis_client  # noqa: E402
from bot.dev.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from bot.rasa_runtime import training as model  # noqa: E402
from bot.rasa_runtime.environment import rasa_env  # noqa: E402
from bot.settings import DEFAULT_SANIC_WORKERS, load  # noqa: E402

BIN = Path(sys.executable).parent
CACHE = model.cache_dir() / "bench"

STOCK_MESSAGES = ["hi", "I am sad", "yes", "great", "bye", "are you a bot?", "no", "hello"]
OUR_MESSAGES = [
    "hi",
    "mera naya account number kya hai",
    "bill kitna baki hai",
    "मेरा बिल कितना है",
    "light nahi hai kab aayegi",
    "what can you do",
    "456789",
    "thanks",
    "prepaid balance kitna hai",
    "kya mera connection katega",
]


def stock_model() -> Path:
    """The stock `rasa init` model, trained once and cached."""
    import rasa

    target = CACHE / f"rasa-init-{rasa.__version__}.tar.gz"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print("creating and training the stock `rasa init` assistant (about 2 minutes)", flush=True)
        subprocess.run(
            [str(BIN / "rasa"), "init", "--no-prompt", "--init-dir", tmp],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        (trained,) = Path(tmp, "models").glob("*.tar.gz")
        shutil.copy(trained, target)
    return target


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process and its live descendants (/proc, via psutil).

    Steadier than replies/s on a shared machine: other processes' load slows a reply down but
    hardly changes the CPU it takes. Sanic's extra workers are children of the server process.
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def our_server_env(
    env: dict[str, str], port: int, api_token: str, sanic_workers: int, action_port: int
) -> dict[str, str]:
    """The environment of our `bijli rasa-server` on ``port``, as the Procfile runs it: ``env``
    (database, Redis, secrets) with the stores' variables, its API token, its Sanic workers and
    the action server on ``action_port``."""
    return {
        **env,
        **rasa_env(load(env)),
        "RASA_PORT": str(port),
        "RASA_AUTH_TOKEN": api_token,
        "SANIC_WORKERS": str(sanic_workers),
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
    }


@dataclass
class Served:
    """A running server: seconds from spawn until it answered, and its process id."""

    load_s: float
    pid: int


@contextmanager
def serve(
    name: str, argv: list[str], env: dict[str, str], url: str, cwd: Path = ROOT
) -> Iterator[Served]:
    """Run a server until the block ends; yield how long it took to answer, and its pid."""
    log = open(CACHE / f"{name}.log", "wb")  # noqa: SIM115
    started = time.monotonic()
    # This checkout's code, whichever clone the shared venv's editable install names (an
    # ``env`` that names its own, as rasa_ab.py's does, wins).
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {log.name}")
            try:
                requests.get(url, timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
            if time.monotonic() - started > 300:
                raise RuntimeError(f"{name} did not answer in 300 s; see {log.name}")
        yield Served(time.monotonic() - started, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def registered_mobiles(database_url: str, count: int) -> list[str]:
    """Mobiles registered to exactly one account, as most consumers' are."""
    from sqlalchemy import func, select

    from bot.connections import engine_for
    from bot.store import Consumer, session_scope

    with session_scope(engine_for(database_url)) as session:
        query = (
            select(Consumer.mobile)
            .where(Consumer.mobile.is_not(None))
            .group_by(Consumer.mobile)
            .having(func.count() == 1)
            .order_by(Consumer.mobile)
            .limit(count)
        )
        return list(session.scalars(query))


def gateway_senders(mobiles: list[str], concurrency: int, rnd: int) -> list[tuple[str, str]]:
    """(channel, mobile) of each sender; unregistered numbers after ``mobiles``."""
    senders = []
    for index in range(concurrency):
        # Unknown numbers, new each round: no demo mobile starts with +91 7000.
        mobile = mobiles[index] if index < len(mobiles) else f"+917000{rnd:02d}{index:04d}"
        senders.append(("whatsapp" if index % 2 == 0 else "sms", mobile))
    return senders


@dataclass(frozen=True)
class Target:
    """A Rasa server and how to talk to it: the stock REST channel, or ours, signed."""

    base: str
    #: BIJLI_GATEWAY_SECRET for our server; None for the stock bot's REST channel.
    secret: str | None = None
    #: RASA_AUTH_TOKEN of its HTTP API (our server's API wants it).
    api_token: str | None = None

    def webhook(
        self, index: int, text: str, tag: str, senders: list[tuple[str, str]] | None
    ) -> tuple[str, bytes, dict[str, str]]:
        """(url, body, headers) of one message from sender ``index``."""
        if self.secret is None:
            body = json.dumps({"sender": f"bench-{tag}-{index}", "message": text}).encode()
            return f"{self.base}/webhooks/rest/webhook", body, {"Content-Type": "application/json"}
        channel, mobile = senders[index] if senders else ("whatsapp", f"+917999{index:06d}")
        message = signing.new_message(channel, mobile, "consumer", text)
        body, headers = signing.signed_request(self.secret, message)
        return self.base + signing.WEBHOOK_PATH, body, headers

    def parse(self, text: str) -> tuple[str, bytes, dict[str, str]]:
        """(url, body, headers) of one /model/parse call."""
        query = f"?token={self.api_token}" if self.api_token else ""
        body = json.dumps({"text": text}).encode()
        return f"{self.base}/model/parse{query}", body, {"Content-Type": "application/json"}


async def _drive(
    target: Target,
    what: str,
    messages: list[str],
    total: int,
    concurrency: int,
    tag: str,
    senders: list[tuple[str, str]] | None = None,
) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def sender(index: int, session: aiohttp.ClientSession) -> None:
        turn = 0
        for _ in counter:
            text = messages[(index + turn) % len(messages)]
            turn += 1
            url, body, headers = (
                target.parse(text) if what == "parse" else target.webhook(index, text, tag, senders)
            )
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                resp.raise_for_status()
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    # A new connection per request, as the gateway posts to Rasa (Connection: close, in
    # bot/gateway/inbound.py). Kept-alive connections would each stick to the Sanic worker that
    # accepted them, and one worker could end up with all ten senders.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(sender(i, session) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2],
        "p95": latencies[int(len(latencies) * 0.95) - 1],
    }


def drive(*args: Any, **kwargs: Any) -> dict[str, float]:
    """Send ``total`` requests with ``concurrency`` senders; return replies/s, p50, p95 (s).

    The arguments are ``_drive``'s: target, "webhook" or "parse", messages, total, concurrency,
    tag, senders.
    """
    return asyncio.run(_drive(*args, **kwargs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument(
        "--sanic-workers",
        type=int,
        default=DEFAULT_SANIC_WORKERS,
        help="SANIC_WORKERS for our server (the stock bot's in-memory lock store allows one)",
    )
    parser.add_argument(
        "--registered",
        type=int,
        default=7,
        help="how many of the senders write from a registered mobile (the rest are unknown)",
    )
    args = parser.parse_args()

    CACHE.mkdir(parents=True, exist_ok=True)
    stock = stock_model()
    model.train_if_needed()
    results: dict[str, dict[str, list[float]]] = {"stock": {}, "ours": {}}

    def record(which: str, key: str, value: float) -> None:
        results[which].setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis() as redis_server:
        database_url = f"sqlite:///{tmp}/bench.sqlite3"
        migrations.upgrade(database_url)
        from bot.dev.launcher import load_demo_data

        secret, api_token = secrets.token_hex(32), secrets.token_hex(16)
        env_common = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_server.url,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "BIJLI_GATEWAY_SECRET": secret,
            "ACTIONS_TOKEN": secrets.token_hex(16),
        }
        cfg = load(env_common)
        load_demo_data(cfg, 2000)
        mobiles = registered_mobiles(database_url, min(args.registered, args.concurrency))
        print(
            f"our senders: {len(mobiles)} registered mobiles, "
            f"{args.concurrency - len(mobiles)} unknown numbers",
            flush=True,
        )
        action_port = free_port()
        actions_argv = [str(BIN / "bijli"), "actions-server", "--port", str(action_port)]
        actions_url = f"http://127.0.0.1:{action_port}/health"
        with serve("actions", actions_argv, env_common, actions_url) as actions:
            for rnd in range(1, args.rounds + 1):
                for which in ("stock", "ours"):
                    port = free_port()
                    base = f"http://127.0.0.1:{port}"
                    target = Target(base)
                    if which == "stock":
                        argv = [str(BIN / "rasa"), "run", "--enable-api", "-m", str(stock)]
                        argv += ["--port", str(port)]
                        env = dict(env_common)
                        # Its own directory, so it doesn't pick up our endpoints.yml.
                        cwd = Path(tmp)
                        messages = STOCK_MESSAGES
                    else:
                        argv = [str(BIN / "bijli"), "rasa-server"]
                        env = our_server_env(
                            env_common, port, api_token, args.sanic_workers, action_port
                        )
                        target = Target(base, secret=secret, api_token=api_token)
                        cwd = ROOT
                        messages = OUR_MESSAGES
                    if which == "ours":
                        # Each round starts our registered senders on new conversations, as
                        # the stock bot's in-memory trackers start empty.
                        conn = redis_client(redis_server.url)
                        for key in conn.scan_iter("bijli:tracker:*"):
                            conn.delete(key)
                        conn.close()
                    with serve(which, argv, env, base + "/", cwd) as server:
                        load_s = server.load_s
                        record(which, "load_s", load_s)
                        # Warm-up: first calls build TensorFlow graphs.
                        drive(target, "webhook", messages, 20, 2, f"warm{rnd}")
                        parse = drive(target, "parse", messages, args.messages, 10, "p")
                        tag = f"r{rnd}"
                        cpu_before = cpu_seconds(server.pid), cpu_seconds(actions.pid)
                        reply = drive(
                            target,
                            "webhook",
                            messages,
                            args.messages,
                            args.concurrency,
                            tag,
                            None
                            if which == "stock"
                            else gateway_senders(mobiles, args.concurrency, rnd),
                        )
                        rasa_cpu = cpu_seconds(server.pid) - cpu_before[0]
                        actions_cpu = cpu_seconds(actions.pid) - cpu_before[1]
                    record(which, "parse_rps", parse["rps"])
                    record(which, "parse_p50_ms", parse["p50"] * 1000)
                    record(which, "reply_rps", reply["rps"])
                    record(which, "reply_p50_ms", reply["p50"] * 1000)
                    record(which, "reply_p95_ms", reply["p95"] * 1000)
                    # CPU milliseconds per reply: the Rasa server (all its Sanic workers) and
                    # the action server (idle for the stock bot, which calls no custom action).
                    record(which, "rasa_cpu_ms", rasa_cpu * 1000 / args.messages)
                    record(which, "actions_cpu_ms", actions_cpu * 1000 / args.messages)
                    ratio = ""
                    if which == "ours":
                        ratio = f"  ratio {reply['rps'] / results['stock']['reply_rps'][-1]:4.2f}"
                    print(
                        f"round {rnd}/{args.rounds} {which:5s} load {load_s:5.1f}s  "
                        f"parse {parse['rps']:6.1f}/s p50 {parse['p50'] * 1000:5.0f}ms  "
                        f"reply {reply['rps']:6.1f}/s p50 {reply['p50'] * 1000:5.0f}ms "
                        f"p95 {reply['p95'] * 1000:5.0f}ms  "
                        f"cpu/reply rasa {rasa_cpu * 1000 / args.messages:5.1f}ms "
                        f"actions {actions_cpu * 1000 / args.messages:5.1f}ms{ratio}",
                        flush=True,
                    )

    med = {w: {k: statistics.median(v) for k, v in r.items()} for w, r in results.items()}
    print(f"\nmedians over {args.rounds} rounds, concurrency {args.concurrency}:")
    print(f"{'metric':16s} {'stock rasa init':>16s} {'bijli':>10s} {'ratio':>8s}")
    for key in (
        "load_s",
        "parse_rps",
        "parse_p50_ms",
        "reply_rps",
        "reply_p50_ms",
        "reply_p95_ms",
        "rasa_cpu_ms",
        "actions_cpu_ms",
    ):
        s, o = med["stock"][key], med["ours"][key]
        ratio = f"{o / s:8.2f}" if s else f"{'':8s}"
        print(f"{key:16s} {s:16.1f} {o:10.1f} {ratio}")
    pairs = zip(results["stock"]["reply_rps"], results["ours"]["reply_rps"], strict=True)
    ratios = [o / s for s, o in pairs]
    print("reply_rps ratio per round: " + ", ".join(f"{r:.2f}" for r in ratios), end="")
    print(f"; median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
