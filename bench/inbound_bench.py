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

4. Whole path and memory (issue 14), in rounds: the stock `rasa init` bot alone (built and served
   by bench/rasa_bench.py's own code), our Rasa alone, and the whole path saturated (a burst of
   signed webhooks well above what the stack can answer; replies/s from the first webhook to
   the last reply). Each process's CPU milliseconds per message come from /proc/<pid>/stat
   (utime+stime of the process and every descendant, plus what they reaped), read before and
   after each measured window; the window of the whole path ends once every reply's
   ``delivered`` status is in the database (the parked status callbacks were flushed). Memory is
   RSS and PSS (/proc/<pid>/smaps_rollup) summed over each process's tree: PSS counts a page
   shared by forked workers once, RSS once per process. The stack is the Procfile's, started as
   `make run` starts it (its commands, an embedded Redis, the fake Twilio and fake Razorpay).

    python bench/inbound_bench.py [--workers 4] [--rates 2,4,8,12,16] [--seconds 20]
                                  [--rasa-concurrency 10] [--write bench/GATEWAY_RESULTS.md]
    python bench/inbound_bench.py --rounds 3 --burst 600 --rates "" --write /tmp/whole.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import threading
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
            # This checkout's code, whichever clone the shared venv's editable install names
            # (an ``env`` that names its own wins).
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
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


# --------------------------------------------------------------------------- /proc readings

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and the children it reaped), from /proc."""
    table: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read().decode(errors="replace")
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields start after the last ")".
        fields = raw[raw.rindex(")") + 2 :].split()
        # state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based in proc(5).
        ticks = sum(int(v) for v in fields[11:15])
        table[int(entry.name)] = (int(fields[1]), ticks / CLOCK_TICKS)
    return table


def descendants(table: dict[int, tuple[int, float]], root: int) -> list[int]:
    """``root`` and every live process under it."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


def cpu_by_group(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each group: its root process, its descendants and what they reaped."""
    table = proc_table()
    return {
        name: sum(table[pid][1] for pid in descendants(table, root)) for name, root in roots.items()
    }


def memory_of(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB, from /proc/<pid>/smaps_rollup; zeros if it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def memory_by_group(roots: dict[str, int]) -> dict[str, tuple[int, int]]:
    """(RSS, PSS) in MB of each group, summed over its process tree."""
    table = proc_table()
    out: dict[str, tuple[int, int]] = {}
    for name, root in roots.items():
        rss = pss = 0
        for pid in descendants(table, root):
            r, p = memory_of(pid)
            rss, pss = rss + r, pss + p
        out[name] = (rss // 1024, pss // 1024)
    return out


class MemorySampler:
    """Samples memory_by_group every ``interval`` seconds in a thread; keeps each group's peak."""

    def __init__(self, roots: dict[str, int], interval: float = 1.0) -> None:
        self.roots, self.interval = roots, interval
        self.peak: dict[str, tuple[int, int]] = {}
        self.peak_total = (0, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = memory_by_group(self.roots)
            for name, (rss, pss) in sample.items():
                old = self.peak.get(name, (0, 0))
                self.peak[name] = (max(old[0], rss), max(old[1], pss))
            total = (sum(v[0] for v in sample.values()), sum(v[1] for v in sample.values()))
            self.peak_total = (max(self.peak_total[0], total[0]), max(self.peak_total[1], total[1]))
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _per_message(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    """CPU milliseconds per message and group between two readings."""
    return {k: (after[k] - before.get(k, 0.0)) * 1000 / max(n, 1) for k in after}


def child_with_port(port: int) -> int:
    """The pid of this process's child whose command line names ``port`` (the stock bot)."""
    table = proc_table()
    for pid, (ppid, _) in table.items():
        if ppid != os.getpid():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(port).encode() in argv:
            return pid
    raise RuntimeError(f"no child of the bench serves port {port}")


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


def delivered_count(database_url: str, prefix: str) -> int:
    """Replies to the burst's senders whose ``delivered`` status is in the database."""
    from sqlalchemy import func, select

    from bot.connections import engine_for
    from bot.store import OutboundMessage, session_scope

    with session_scope(engine_for(database_url)) as session:
        return int(
            session.execute(
                select(func.count(func.distinct(OutboundMessage.to_number))).where(
                    OutboundMessage.to_number.like(prefix + "%"),
                    OutboundMessage.status == "delivered",
                )
            ).scalar_one()
        )


def whole_path(
    web: str,
    fake: str,
    cfg: settings_mod.Settings,
    roots: dict[str, int],
    total: int,
    rate: float,
    tag: str,
) -> dict[str, Any]:
    """The whole path saturated: ``total`` webhooks at ``rate``/s, far above what it answers.

    Replies/s runs from the first webhook to the last reply at the fake Twilio. The CPU window
    ends once every reply's ``delivered`` is in the database: the status callbacks' cost,
    parked and flushed, is inside it.
    """
    requests.delete(f"{fake}/sent", timeout=5)
    before = cpu_by_group(roots)
    with MemorySampler(roots) as sampler:
        sent_at, _ = asyncio.run(open_loop(web, cfg, rate, total / rate, tag))
        deadline = time.time() + 300
        got: dict[str, float] = {}
        while time.time() < deadline:
            got = replies(fake)
            if all(s in got for s in sent_at):
                break
            time.sleep(0.5)
        answered = [s for s in sent_at if s in got]
        span = max(got[s] for s in answered) - min(sent_at.values()) if answered else 1.0
        prefix = f"+9196{tag}"
        flushed_by = time.time() + 60
        delivered = 0
        while time.time() < flushed_by:
            delivered = delivered_count(cfg.database_url, prefix)
            if delivered >= len(answered):
                break
            time.sleep(0.5)
    cpu = _per_message(before, cpu_by_group(roots), len(answered))
    return {
        "sent": len(sent_at),
        "answered": len(answered),
        "delivered_in_db": delivered,
        "rps": len(answered) / span if span > 0 else 0.0,
        "cpu": cpu,
        "peak": dict(sampler.peak),
        "peak_total": sampler.peak_total,
    }


def start_stack(
    stack: ExitStack, tmp: Path, logs: Path, args: argparse.Namespace
) -> tuple[settings_mod.Settings, dict[str, str], dict[str, int], EmbeddedRedis]:
    """The Procfile's processes with `make run`'s extras, each under its own session."""
    from bot.dev.launcher import load_demo_data, procfile_processes
    from bot.rasa_runtime.environment import rasa_env

    database_url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    migrations.upgrade(database_url)
    redis = stack.enter_context(EmbeddedRedis(workdir=tmp / "redis"))
    ports, env = stack_env(tmp, database_url, redis.url)
    env.update(
        {
            "SANIC_WORKERS": str(args.sanic_workers),
            "BIJLI_WORKERS": str(args.workers),
            "WEB_CONCURRENCY": str(args.web_workers),
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(ports["web"]),
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            # The senders' rate limiters run but never bind: a Twilio number's real limit (10
            # WhatsApp messages a second by default) would cap the whole path at it.
            "BIJLI_WHATSAPP_MPS": str(args.mps),
            "BIJLI_SMS_MPS": str(args.mps),
        }
    )
    cfg = settings_mod.load(env)
    env.update(rasa_env(cfg))
    load_demo_data(cfg, 2000)
    commands = procfile_processes()
    commands["twilio"] = f"bijli fake-twilio --port {ports['fake']}"
    commands["razorpay"] = f"bijli fake-razorpay --port {ports['razorpay']}"
    ready = {
        "twilio": f"{env['TWILIO_API_BASE_URL']}/_fake/health",
        "razorpay": "",
        "actions": f"http://127.0.0.1:{ports['actions']}/health",
        "rasa": f"{env['RASA_URL']}/",
        "worker": "Listening on",
        "cron": "",
        "web": f"{env['PUBLIC_BASE_URL']}/healthz",
    }
    roots = {"redis": redis.process.pid if redis.process else 0}
    t0 = time.monotonic()
    for name in ("twilio", "razorpay", "actions", "rasa", "worker", "cron", "web"):
        argv = ["bash", "-c", f"exec {commands[name]}"]
        proc = stack.enter_context(process(name, argv, env, logs, ready[name], timeout=600))
        roots[name] = proc.pid
    print(f"  stack up in {time.monotonic() - t0:.0f} s: {commands}", flush=True)
    return cfg, env, roots, redis


def stock_server(stack: ExitStack, tmp: Path) -> tuple[Any, int, float]:
    """The stock `rasa init` bot as rasa_bench.py runs it: (target, pid, load seconds)."""
    import rasa_bench

    from bot.dev.embedded_redis import free_port

    rasa_bench.CACHE.mkdir(parents=True, exist_ok=True)
    model_file = rasa_bench.stock_model()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [str(BIN / "rasa"), "run", "--enable-api", "-m", str(model_file), "--port", str(port)]
    workdir = tmp / "stock"
    workdir.mkdir()
    served = stack.enter_context(
        rasa_bench.serve("stock", argv, {"TF_CPP_MIN_LOG_LEVEL": "2"}, base + "/", workdir)
    )
    return rasa_bench.Target(base), child_with_port(port), served.load_s


def med(values: list[float]) -> float:
    import statistics

    return statistics.median(values) if values else float("nan")


def issue14(args: argparse.Namespace) -> None:
    """Whole path and memory: the stock bot alone, our Rasa alone, the whole path, in rounds."""
    import rasa_bench

    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bijli-bench-"))
    logs = tmp / "logs"
    results: dict[str, list[Any]] = {"stock": [], "rasa": [], "path": []}
    with ExitStack() as stack:
        print("starting the stock `rasa init` bot …", flush=True)
        stock, stock_pid, stock_load = stock_server(stack, tmp)
        print(f"  stock bot answering after {stock_load:.1f} s", flush=True)
        print("starting the stack as `make run` does …", flush=True)
        cfg, env, roots, _ = start_stack(stack, tmp, logs, args)
        web, fake = env["PUBLIC_BASE_URL"], env["TWILIO_API_BASE_URL"]
        # Warm-up: TensorFlow graphs in both Rasas, the workers' first jobs.
        rasa_bench.drive(stock, "webhook", rasa_bench.STOCK_MESSAGES, 20, 2, "warm")
        asyncio.run(rasa_only(cfg, 40, 2, "98"))
        asyncio.run(open_loop(web, cfg, 5, 4, "99"))
        time.sleep(10)
        rest = memory_by_group(roots)
        stock_rest = memory_by_group({"stock": stock_pid})["stock"]
        idle_before = cpu_by_group(roots)
        time.sleep(args.idle_seconds)
        idle = {
            k: (v - idle_before[k]) * 1000 / args.idle_seconds
            for k, v in cpu_by_group(roots).items()
        }
        for rnd in range(1, args.rounds + 1):
            before = cpu_by_group({"stock": stock_pid})
            s = rasa_bench.drive(
                stock,
                "webhook",
                rasa_bench.STOCK_MESSAGES,
                args.rasa_messages,
                args.rasa_concurrency,
                f"r{rnd}",
            )
            s["cpu"] = _per_message(before, cpu_by_group({"stock": stock_pid}), args.rasa_messages)[
                "stock"
            ]
            results["stock"].append(s)
            before = cpu_by_group(roots)
            rps = asyncio.run(rasa_only(cfg, args.rasa_messages, args.rasa_concurrency, f"{rnd}7"))
            results["rasa"].append(
                {"rps": rps, "cpu": _per_message(before, cpu_by_group(roots), args.rasa_messages)}
            )
            path = whole_path(web, fake, cfg, roots, args.burst, args.burst_rate, f"{rnd}6")
            results["path"].append(path)
            print(
                f"round {rnd}: stock alone {s['rps']:.1f}/s, ours alone {rps:.1f}/s, "
                f"whole path {path['rps']:.1f}/s ({path['answered']}/{path['sent']} answered, "
                f"{path['delivered_in_db']} delivered in the database); whole-path CPU ms/msg "
                + ", ".join(f"{k} {v:.1f}" for k, v in sorted(path["cpu"].items())),
                flush=True,
            )
        stock_peak = memory_by_group({"stock": stock_pid})["stock"]
    report = issue14_report(
        args, results, rest, stock_rest, stock_peak, idle, load_before, stock_load
    )
    print("\n" + report)
    if args.write:
        args.write.write_text(report, encoding="utf-8")
        print(f"written to {args.write}")


def issue14_report(
    args: argparse.Namespace,
    results: dict[str, list[Any]],
    rest: dict[str, tuple[int, int]],
    stock_rest: tuple[int, int],
    stock_peak: tuple[int, int],
    idle: dict[str, float],
    load_before: float,
    stock_load: float,
) -> str:
    """Markdown: medians over rounds, each round's figures, CPU per process, memory."""
    stock = med([r["rps"] for r in results["stock"]])
    ours = med([r["rps"] for r in results["rasa"]])
    path = med([r["rps"] for r in results["path"]])
    ratios = [p["rps"] / s["rps"] for p, s in zip(results["path"], results["stock"], strict=True)]
    groups = sorted(results["path"][0]["cpu"])
    path_cpu = {g: med([r["cpu"][g] for r in results["path"]]) for g in groups}
    rasa_cpu = {g: med([r["cpu"][g] for r in results["rasa"]]) for g in groups}
    stock_cpu = med([r["cpu"] for r in results["stock"]])
    web_worker = [r["cpu"]["web"] + r["cpu"]["worker"] for r in results["path"]]
    lines = [
        "# Whole path and memory (issue 14)",
        "",
        f"Command: `python bench/inbound_bench.py --rounds {args.rounds} --burst {args.burst} "
        f"--burst-rate {args.burst_rate:g} --workers {args.workers} --web-workers "
        f"{args.web_workers} --sanic-workers {args.sanic_workers} --rasa-messages "
        f"{args.rasa_messages} --rasa-concurrency {args.rasa_concurrency} --mps {args.mps:g} "
        "--rates ''`",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; the Procfile's "
        f"processes as `make run` starts them ({args.web_workers} gunicorn workers, "
        f"{args.workers} RQ workers, {args.sanic_workers} Sanic workers, cron, fake Twilio and "
        "Razorpay, embedded Redis with its append-only file, SQLite), and the stock bot beside "
        f"them, all on the same cores. Load average (1 min) {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end.",
        "",
        f"| medians of {args.rounds} rounds | replies/s | vs stock Rasa alone |",
        "|---|---:|---:|",
        f"| stock `rasa init`, Rasa alone ({args.rasa_concurrency} concurrent senders) "
        f"| {stock:.1f} | 1.00 |",
        f"| Bijli, Rasa alone (signed channel, same load) | {ours:.1f} | {ours / stock:.2f} |",
        f"| **Bijli, whole path** (webhook → queue → worker → Rasa → fake Twilio, "
        f"{args.burst} webhooks at {args.burst_rate:g}/s) | **{path:.1f}** "
        f"| **{path / stock:.2f}** (rounds: {', '.join(f'{r:.2f}' for r in ratios)}; "
        "target ≥ 1.5) |",
        "",
        "Each round's replies/s, stock / ours alone / whole path: "
        + "; ".join(
            f"{s['rps']:.1f} / {r['rps']:.1f} / {p['rps']:.1f}"
            for s, r, p in zip(results["stock"], results["rasa"], results["path"], strict=True)
        )
        + ". Every burst message answered and its `delivered` in the database: "
        + ", ".join(f"{p['answered']}/{p['sent']}, {p['delivered_in_db']}" for p in results["path"])
        + ".",
        "",
        "CPU milliseconds per message, from /proc (medians of rounds):",
        "",
        "| phase | " + " | ".join(groups) + " | total | web + worker |",
        "|---|" + "---:|" * (len(groups) + 2),
        f"| Rasa alone | {' | '.join(f'{rasa_cpu[g]:.1f}' for g in groups)} "
        f"| {sum(rasa_cpu.values()):.1f} | – |",
        f"| whole path | {' | '.join(f'{path_cpu[g]:.1f}' for g in groups)} "
        f"| {sum(path_cpu.values()):.1f} | **{med(web_worker):.1f}** (target ≤ 10) |",
        "",
        f"The stock bot: {stock_cpu:.1f} ms of CPU per reply (Rasa alone). "
        "At rest, CPU ms per second: "
        + ", ".join(f"{k} {v:.1f}" for k, v in sorted(idle.items()))
        + f" (over {args.idle_seconds:g} s).",
        "",
        "Memory, MB (RSS summed over each process tree / PSS, which counts a page shared by "
        "forked processes once):",
        "",
        "| process | at rest RSS | PSS | under load, peak RSS | PSS |",
        "|---|---:|---:|---:|---:|",
    ]
    peaks = [p["peak"] for p in results["path"]]
    for g in sorted(rest):
        rss_peak = max(p.get(g, (0, 0))[0] for p in peaks)
        pss_peak = max(p.get(g, (0, 0))[1] for p in peaks)
        lines.append(f"| {g} | {rest[g][0]} | {rest[g][1]} | {rss_peak} | {pss_peak} |")
    total_rest = (sum(v[0] for v in rest.values()), sum(v[1] for v in rest.values()))
    total_peak = (
        max(p["peak_total"][0] for p in results["path"]),
        max(p["peak_total"][1] for p in results["path"]),
    )
    lines += [
        f"| **whole stack** | **{total_rest[0]}** | **{total_rest[1]}** "
        f"| **{total_peak[0]}** | **{total_peak[1]}** |",
        f"| stock `rasa init` (one process) | {stock_rest[0]} | {stock_rest[1]} "
        f"| {stock_peak[0]} | {stock_peak[1]} |",
        "",
        f"The stock bot loaded in {stock_load:.1f} s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--web-workers", type=int, default=2, help="WEB_CONCURRENCY")
    parser.add_argument("--rates", default="2,4,8,12,16")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rasa-concurrency", type=int, default=10)
    parser.add_argument("--rasa-messages", type=int, default=300)
    parser.add_argument("--overhead-messages", type=int, default=1000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="Whole path and memory (issue 14): rounds of stock alone, ours alone, whole path",
    )
    parser.add_argument("--burst", type=int, default=600, help="webhooks per whole-path round")
    parser.add_argument("--burst-rate", type=float, default=100.0, help="their rate, per second")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument(
        "--mps", type=float, default=1000.0, help="BIJLI_WHATSAPP_MPS and BIJLI_SMS_MPS"
    )
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
    if args.rounds:
        issue14(args)
        return
    ramp(args)


def ramp(args: argparse.Namespace) -> None:
    """The ramp of the gateway issue: Rasa alone, then the whole path at rising rates."""
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
        roots = {name: proc.pid for name, proc in procs.items()}
        before = cpu_by_group(roots)
        rasa_rps = asyncio.run(rasa_only(cfg, args.rasa_messages, args.rasa_concurrency, "97"))
        rasa_cpu = _per_message(before, cpu_by_group(roots), args.rasa_messages)
        print(
            f"Rasa alone: {rasa_rps:.1f} replies/s at concurrency {args.rasa_concurrency}",
            flush=True,
        )

        asyncio.run(open_loop(web, cfg, 5, 4, "99"))  # warm the workers up
        time.sleep(5)
        before = cpu_by_group(roots)
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
        path_cpu = _per_message(before, cpu_by_group(roots), sum(r["answered"] for r in rows))

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
