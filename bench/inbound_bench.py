"""Gateway throughput and latency: signed webhooks at rising rates through the whole path.

Starts the stack on this machine (embedded Redis, SQLite, the fake Twilio, the action server,
Rasa on the trained model, N RQ workers, gunicorn), then:

1. Rasa alone: C concurrent senders post signed messages to Rasa's gateway channel, as the worker
   does, each sending its next message as soon as the previous reply arrives; replies/s is the
   ceiling the gateway is measured against.
2. The whole path: signed webhooks are sent open-loop at rising rates (messages/s), each from its
   own sender; a message counts as answered when the fake Twilio receives its first reply.
   Reported per rate: answered/s sustained, webhook→outbound-send p50/p95, and the webhook's HTTP
   round trip (p50/p99) under that load.
3. The gateway's own overhead (webhook → job enqueued): the Flask app in-process, signed posts
   one after another against the same Redis and database, p50/p99 of the handler (measured
   first, before the other processes start).

    python bench/inbound_bench.py [--workers 4] [--rates 2,4,8,12,16] [--seconds 20]
                                  [--rasa-concurrency 10] [--write bench/GATEWAY_RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twilio.request_validator import RequestValidator  # noqa: E402

from bot import migrations, signing  # noqa: E402
from bot import settings as settings_mod  # noqa: E402
from bot.dev.embedded_redis import EmbeddedRedis  # noqa: E402
from bot.rasa_runtime import training as model  # noqa: E402
from bot.settings import DEFAULT_SANIC_WORKERS  # noqa: E402
from tests.processes import stack_env  # noqa: E402

BIN = Path(sys.executable).parent
MESSAGES = [
    "hi",
    "mera naya account number kya hai",
    "bill kitna baki hai",
    "मेरा बिल कितना है",
    "light nahi hai kab aayegi",
    "what can you do",
    "thanks",
    "prepaid balance kitna hai",
]


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


@contextmanager
def process(
    name: str, argv: list[str], env: dict[str, str], logs: Path, ready: str, timeout: float = 300
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a child until the block ends, once ``ready`` (a URL) answers."""
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "wb") as log:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited; see {logs / (name + '.log')}")
                if ready.startswith("http"):
                    try:
                        if requests.get(ready, timeout=2).status_code < 500:
                            break
                    except requests.RequestException:
                        pass
                elif ready in (logs / f"{name}.log").read_text(errors="replace"):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready after {timeout}s")
                time.sleep(0.3)
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)


def signed_form(
    cfg: settings_mod.Settings, sender: str, body: str, sid: str
) -> tuple[dict[str, str], str]:
    """An incoming WhatsApp message as Twilio posts it, and its signature."""
    form = {
        "MessageSid": sid,
        "AccountSid": cfg.twilio_account_sid,
        "From": f"whatsapp:{sender}",
        "To": cfg.twilio_whatsapp_from,
        "Body": body,
        "NumMedia": "0",
        "ProfileName": "bench",
    }
    url = f"{cfg.public_base_url}/twilio/messages"
    return form, RequestValidator(cfg.twilio_auth_token).compute_signature(url, form)


async def rasa_only(cfg: settings_mod.Settings, total: int, concurrency: int, tag: str) -> float:
    """Replies/s of Rasa alone, closed loop with ``concurrency`` clients.

    Each message comes from a new sender with the same mix as the whole-path run, so that both
    ask Rasa the same work (a fresh conversation per message), signed as the worker signs it.
    """
    done = 0
    silent = 0
    start = time.monotonic()

    async def sender(index: int, session: aiohttp.ClientSession) -> None:
        nonlocal done, silent
        while done < total:
            n = done
            done += 1
            message = signing.new_message(
                "whatsapp", f"+9195{tag}{n:06d}", "consumer", MESSAGES[n % len(MESSAGES)]
            )
            body, headers = signing.signed_request(cfg.gateway_signing_secret, message)
            url = cfg.rasa_url + signing.WEBHOOK_PATH
            async with session.post(url, data=body, headers=headers) as resp:
                if resp.status != 200 or not await resp.json():
                    silent += 1

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(sender(i, session) for i in range(concurrency)))
    elapsed = time.monotonic() - start
    if silent:
        # A failed turn (e.g. an unreachable action server) is fast and useless: say so.
        print(f"  warning: {silent}/{total} Rasa answers were errors or empty", flush=True)
    return total / elapsed


async def open_loop(
    web: str, cfg: settings_mod.Settings, rate: float, seconds: float, tag: str
) -> tuple[dict[str, float], list[float]]:
    """Send signed webhooks at ``rate``/s for ``seconds``; return send times by sender and RTTs."""
    sent_at: dict[str, float] = {}
    rtts: list[float] = []
    failures = 0
    count = int(rate * seconds)
    start = time.monotonic()

    async def one(i: int, session: aiohttp.ClientSession) -> None:
        nonlocal failures
        sender = f"+9196{tag}{i:06d}"
        form, sig = signed_form(cfg, sender, MESSAGES[i % len(MESSAGES)], f"SM{tag}{i:030d}")
        t0 = time.time()
        m0 = time.monotonic()
        async with session.post(
            f"{web}/twilio/messages", data=form, headers={"X-Twilio-Signature": sig}
        ) as resp:
            await resp.read()
            if resp.status != 200:
                failures += 1
                return
        rtts.append(time.monotonic() - m0)
        sent_at[sender] = t0

    tasks = []
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as s:
        for i in range(count):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, s)))
        await asyncio.gather(*tasks)
    if failures:
        print(f"  {failures} webhook(s) did not answer 200", flush=True)
    return sent_at, rtts


def replies(fake: str) -> dict[str, float]:
    """First reply time per E.164 number, from the fake Twilio."""
    first: dict[str, float] = {}
    for m in requests.get(f"{fake}/sent", timeout=30).json()["messages"]:
        number = m["to"].split(":", 1)[-1]
        first[number] = min(first.get(number, m["received_at"]), m["received_at"])
    return first


def cpu_seconds(pid: int) -> float:
    """CPU seconds used by a process, its live children and the children it has reaped."""
    import psutil

    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:4])
        children = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    for child in children:
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return float(total)


def cpu_by_group(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, float]:
    """CPU seconds so far per group of processes (workers summed)."""
    groups: dict[str, float] = {}
    for name, proc in procs.items():
        group = "workers" if name.startswith("worker") else name
        groups[group] = groups.get(group, 0.0) + cpu_seconds(proc.pid)
    return groups


def _per_message(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    """CPU milliseconds per message and group between two readings."""
    return {k: (after[k] - before.get(k, 0.0)) * 1000 / max(n, 1) for k in after}


def gateway_overhead(cfg: settings_mod.Settings, n: int) -> tuple[float, float]:
    """p50/p99 in ms of the webhook handler in-process (signature, dedupe, store, enqueue)."""
    from rq import Queue

    from bot import connections, create_app
    from bot.connections import redis_client as connect
    from bot.queues import INBOUND

    connections.reset()
    app = create_app(cfg)
    client = app.test_client()
    timings: list[float] = []
    for i in range(n):
        form, sig = signed_form(cfg, f"+9197{i:08d}", "hi", f"SMo{i:030d}")
        t0 = time.perf_counter()
        response = client.post("/twilio/messages", data=form, headers={"X-Twilio-Signature": sig})
        timings.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.status_code
    Queue(INBOUND, connection=connect(cfg.redis_url or "")).empty()
    connections.reset()
    return pct(timings, 50), pct(timings, 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rates", default="2,4,8,12,16")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rasa-concurrency", type=int, default=10)
    parser.add_argument("--rasa-messages", type=int, default=300)
    parser.add_argument("--overhead-messages", type=int, default=1000)
    parser.add_argument("--write", type=Path, help="Write the results as Markdown to this file.")
    parser.add_argument(
        "--sanic-workers",
        type=int,
        default=DEFAULT_SANIC_WORKERS,
        help="SANIC_WORKERS for `bijli rasa-server`",
    )
    args = parser.parse_args()
    if not model.model_path().exists():
        sys.exit(f"no trained model at {model.model_path()}: run `bijli train` first")
    rates = [float(r) for r in args.rates.split(",")]
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bijli-bench-"))
    logs = tmp / "logs"
    database_url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    migrations.upgrade(database_url)
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        redis = stack.enter_context(EmbeddedRedis())
        ports, env = stack_env(tmp, database_url, redis.url)
        env["SANIC_WORKERS"] = str(args.sanic_workers)
        cfg = settings_mod.load(env)
        # The handler alone first, before any worker or Rasa competes for the cores.
        ov50, ov99 = gateway_overhead(cfg, args.overhead_messages)
        print(f"gateway overhead in-process: p50 {ov50:.2f} ms p99 {ov99:.2f} ms", flush=True)
        bijli = str(BIN / "bijli")
        print("starting the stack …", flush=True)
        procs: dict[str, subprocess.Popen[bytes]] = {}
        procs["fake"] = stack.enter_context(
            process(
                "fake",
                [bijli, "fake-twilio", "--port", str(ports["fake"])],
                env,
                logs,
                f"{env['TWILIO_API_BASE_URL']}/_fake/health",
            )
        )
        procs["actions"] = stack.enter_context(
            process(
                "actions",
                [bijli, "actions-server", "--port", str(ports["actions"])],
                env,
                logs,
                f"http://127.0.0.1:{ports['actions']}/health",
            )
        )
        t0 = time.monotonic()
        # As the Procfile runs it: the cached model, Redis stores, bot/rasa_runtime/speedups.py.
        rasa_argv = [bijli, "rasa-server"]
        rasa_ready = f"{env['RASA_URL']}/"  # Rasa's open root route
        procs["rasa"] = stack.enter_context(
            process("rasa", rasa_argv, env, logs, rasa_ready, timeout=600)
        )
        print(f"  Rasa loaded in {time.monotonic() - t0:.0f} s", flush=True)
        # One `bijli worker` running the pool of N workers, as the Procfile does.
        worker_argv = [bijli, "worker", "--workers", str(args.workers)]
        procs["workers"] = stack.enter_context(
            process("workers", worker_argv, env, logs, "Listening on")
        )
        procs["web"] = stack.enter_context(
            process(
                "web",
                [
                    str(BIN / "gunicorn"),
                    "--bind",
                    f"127.0.0.1:{ports['web']}",
                    "--workers",
                    "2",
                    "bot:create_app()",
                ],
                env,
                logs,
                f"{env['PUBLIC_BASE_URL']}/healthz",
            )
        )
        fake, web = env["TWILIO_API_BASE_URL"], env["PUBLIC_BASE_URL"]

        asyncio.run(rasa_only(cfg, 40, 2, "98"))  # warm-up
        before = cpu_by_group(procs)
        rasa_rps = asyncio.run(rasa_only(cfg, args.rasa_messages, args.rasa_concurrency, "97"))
        rasa_cpu = _per_message(before, cpu_by_group(procs), args.rasa_messages)
        print(
            f"Rasa alone: {rasa_rps:.1f} replies/s at concurrency {args.rasa_concurrency}",
            flush=True,
        )

        asyncio.run(open_loop(web, cfg, 5, 4, "99"))  # warm the workers up
        time.sleep(5)
        before = cpu_by_group(procs)
        for level, rate in enumerate(rates):
            requests.delete(f"{fake}/sent", timeout=5)
            sent_at, rtts = asyncio.run(open_loop(web, cfg, rate, args.seconds, f"{level:02d}"))
            deadline = time.time() + 90
            while time.time() < deadline:
                got = replies(fake)
                if all(s in got for s in sent_at):
                    break
                time.sleep(1)
            got = replies(fake)
            lat = [got[s] - t for s, t in sent_at.items() if s in got]
            answered = len(lat)
            span = (max(got[s] for s in sent_at if s in got) - min(sent_at.values())) if lat else 1
            row = {
                "rate": rate,
                "sent": len(sent_at),
                "answered": answered,
                "throughput": answered / span if span > 0 else 0.0,
                "p50": pct(lat, 50),
                "p95": pct(lat, 95),
                "rtt50": pct(rtts, 50) * 1000,
                "rtt99": pct(rtts, 99) * 1000,
            }
            rows.append(row)
            print(
                f"offered {rate:>5.1f}/s: answered {answered}/{len(sent_at)}, "
                f"{row['throughput']:.1f}/s, "
                f"webhook→send p50 {row['p50']:.2f} s p95 {row['p95']:.2f} s, "
                f"webhook HTTP p50 {row['rtt50']:.1f} ms p99 {row['rtt99']:.1f} ms",
                flush=True,
            )
            if answered < len(sent_at) or row["p95"] > 15:
                print("  backlog: stopping the ramp here", flush=True)
                break
        path_cpu = _per_message(before, cpu_by_group(procs), sum(r["answered"] for r in rows))

    best = max(rows, key=lambda r: r["throughput"] if r["answered"] == r["sent"] else 0)
    ratio = best["throughput"] / rasa_rps if rasa_rps else 0
    lines = [
        "# Gateway benchmark",
        "",
        f"Command: `python bench/inbound_bench.py --workers {args.workers} --rates {args.rates} "
        f"--seconds {args.seconds:g} --rasa-concurrency {args.rasa_concurrency} "
        f"--sanic-workers {args.sanic_workers}`",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}; "
        f"{args.workers} RQ workers, gunicorn with 2 sync workers, SQLite, embedded Redis, "
        "fake Twilio; "
        f"every process on the same {os.cpu_count()} cores. Load average (1 min) "
        f"{load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end: other work on "
        "the machine shares the cores, so compare figures only within one run.",
        "",
        f"- Rasa alone (signed gateway channel, {args.rasa_concurrency} concurrent senders): "
        f"**{rasa_rps:.1f} replies/s**",
        "- Whole path, best sustained rate with nothing left unanswered: "
        f"**{best['throughput']:.1f} "
        f"replies/s** at {best['rate']:g} offered/s = **{ratio:.0%} of Rasa alone** (target ≥ 80%)",
        f"- Gateway overhead, webhook → job enqueued, in-process: p50 {ov50:.2f} ms, "
        f"**p99 {ov99:.2f} ms** (target ≤ 20 ms)",
        "",
        "| offered/s | answered | replies/s | webhook→send p50 | p95 | webhook HTTP p50 | p99 |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rate']:g} | {r['answered']}/{r['sent']} | {r['throughput']:.1f} "
            f"| {r['p50']:.2f} s "
            f"| {r['p95']:.2f} s | {r['rtt50']:.1f} ms | {r['rtt99']:.1f} ms |"
        )
    lines += [
        "",
        "CPU per message (ms), all cores: where the time goes",
        "",
        "| phase | " + " | ".join(sorted(path_cpu)) + " | total |",
        "|---|" + "---:|" * (len(path_cpu) + 1),
    ]
    for label, cpu in (("Rasa alone", rasa_cpu), ("whole path", path_cpu)):
        cells = " | ".join(f"{cpu.get(k, 0.0):.0f}" for k in sorted(path_cpu))
        lines.append(f"| {label} | {cells} | {sum(cpu.values()):.0f} |")
    report = "\n".join(lines) + "\n"
    print("\n" + report)
    if args.write:
        args.write.write_text(report, encoding="utf-8")
        print(f"written to {args.write}")


if __name__ == "__main__":
    main()
