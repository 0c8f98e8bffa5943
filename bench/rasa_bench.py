"""Rasa speed: parse latency, whole-reply time and model load, ours beside a stock `rasa init` bot.

Both assistants are served the same way (`rasa run --enable-api`, REST channel) on this machine in
the same run, and driven by the same load generator: C concurrent senders, each sending its next
message as soon as the previous reply arrives. Rounds alternate between the two servers so that
the machine's noise falls on both; the figures printed are medians over rounds.

    python bench/rasa_bench.py [--rounds 3] [--messages 300] [--concurrency 10]

The stock assistant is created with `rasa init --no-prompt` once and cached in
~/.cache/bijli/bench/ (it trains for about two minutes the first time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import db, model  # noqa: E402
from bot.launcher import rasa_env  # noqa: E402
from bot.redis_server import EmbeddedRedis, free_port  # noqa: E402
from bot.settings import load  # noqa: E402

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


@contextmanager
def serve(
    name: str, argv: list[str], env: dict[str, str], url: str, cwd: Path = ROOT
) -> Iterator[float]:
    """Run a server until the block ends; yield seconds from spawn until it answered."""
    log = open(CACHE / f"{name}.log", "wb")  # noqa: SIM115
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, cwd=cwd
    )
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
        yield time.monotonic() - started
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def _drive(
    base: str, path: str, messages: list[str], total: int, concurrency: int, tag: str
) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def sender(index: int, session: aiohttp.ClientSession) -> None:
        turn = 0
        for _ in counter:
            text = messages[(index + turn) % len(messages)]
            turn += 1
            body = (
                {"sender": f"bench-{tag}-{index}", "message": text}
                if path.startswith("/webhooks")
                else {"text": text}
            )
            t0 = time.perf_counter()
            async with session.post(base + path, json=body) as resp:
                await resp.read()
                resp.raise_for_status()
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(sender(i, session) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2],
        "p95": latencies[int(len(latencies) * 0.95) - 1],
    }


def drive(base: str, path: str, messages: list[str], total: int, concurrency: int, tag: str):
    """Send ``total`` requests with ``concurrency`` senders; return replies/s, p50, p95 (s)."""
    return asyncio.run(_drive(base, path, messages, total, concurrency, tag))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--sanic-workers", type=int, default=1)
    args = parser.parse_args()

    CACHE.mkdir(parents=True, exist_ok=True)
    stock = stock_model()
    model.train_if_needed()
    results: dict[str, dict[str, list[float]]] = {"stock": {}, "ours": {}}

    def record(which: str, key: str, value: float) -> None:
        results[which].setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis() as redis_server:
        database_url = f"sqlite:///{tmp}/bench.sqlite3"
        db.upgrade(database_url)
        from bot.launcher import load_demo_data

        cfg = load({"DATABASE_URL": database_url, "REDIS_URL": redis_server.url})
        load_demo_data(cfg, 2000)
        action_port = free_port()
        env_common = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_server.url,
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        actions_argv = [str(BIN / "bijli"), "actions-server", "--port", str(action_port)]
        with serve("actions", actions_argv, env_common, f"http://127.0.0.1:{action_port}/health"):
            for rnd in range(1, args.rounds + 1):
                for which in ("stock", "ours"):
                    port = free_port()
                    base = f"http://127.0.0.1:{port}"
                    if which == "stock":
                        argv = [str(BIN / "rasa"), "run", "--enable-api", "-m", str(stock)]
                        argv += ["--port", str(port)]
                        env = dict(env_common)
                        # Its own directory, so it doesn't pick up our endpoints.yml.
                        cwd = Path(tmp)
                        messages = STOCK_MESSAGES
                    else:
                        argv = [str(BIN / "bijli"), "rasa-server"]
                        env = {
                            **env_common,
                            **rasa_env(cfg),
                            "RASA_PORT": str(port),
                            "SANIC_WORKERS": str(args.sanic_workers),
                            "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
                        }
                        cwd = ROOT
                        messages = OUR_MESSAGES
                    with serve(which, argv, env, base + "/status", cwd) as load_s:
                        record(which, "load_s", load_s)
                        # Warm-up: first calls build TensorFlow graphs.
                        drive(base, "/webhooks/rest/webhook", messages, 20, 2, f"warm{rnd}")
                        parse = drive(base, "/model/parse", messages, args.messages, 10, "p")
                        reply = drive(
                            base,
                            "/webhooks/rest/webhook",
                            messages,
                            args.messages,
                            args.concurrency,
                            f"r{rnd}",
                        )
                    record(which, "parse_rps", parse["rps"])
                    record(which, "parse_p50_ms", parse["p50"] * 1000)
                    record(which, "reply_rps", reply["rps"])
                    record(which, "reply_p50_ms", reply["p50"] * 1000)
                    record(which, "reply_p95_ms", reply["p95"] * 1000)
                    print(
                        f"round {rnd}/{args.rounds} {which:5s} load {load_s:5.1f}s  "
                        f"parse {parse['rps']:6.1f}/s p50 {parse['p50'] * 1000:5.0f}ms  "
                        f"reply {reply['rps']:6.1f}/s p50 {reply['p50'] * 1000:5.0f}ms "
                        f"p95 {reply['p95'] * 1000:5.0f}ms",
                        flush=True,
                    )

    med = {w: {k: statistics.median(v) for k, v in r.items()} for w, r in results.items()}
    print(f"\nmedians over {args.rounds} rounds, concurrency {args.concurrency}:")
    print(f"{'metric':16s} {'stock rasa init':>16s} {'bijli':>10s} {'ratio':>8s}")
    for key in ("load_s", "parse_rps", "parse_p50_ms", "reply_rps", "reply_p50_ms", "reply_p95_ms"):
        s, o = med["stock"][key], med["ours"][key]
        print(f"{key:16s} {s:16.1f} {o:10.1f} {o / s:8.2f}")


if __name__ == "__main__":
    main()
