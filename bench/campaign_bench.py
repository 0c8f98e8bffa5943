"""Campaign throughput on KESCO's 5.3 lakh consumers, against the fake Twilio (not in make test).

Measures, each step in its own process on a private database, Redis and fake Twilio:

1. **enqueue**: ``notifier.campaigns.create`` (selection frozen into ``campaign_recipients``)
   and ``start`` (batch jobs enqueued in one Redis pipeline) for a ``new-account-number``
   campaign to every consumer with an old number; wall seconds and peak RSS.
2. **sustained sends/s with the limiter off** (``BIJLI_WHATSAPP_MPS=0``, ``BIJLI_SMS_MPS=0``):
   ``bijli worker --workers N`` (RQ's worker pool, the real send path: batch job, rules,
   rendering, ``bot.twilio_client.send`` with its idempotency row, the fake's HTTP answer), for
   each N; messages counted where they arrive, at the fake, after a warm-up. ``--sustain-mps``
   keeps the limiter on every send at a rate far above what is reached (it then costs its Redis
   round trip per message without being the cap). Each batch job sends a chunk with
   ``BIJLI_CAMPAIGN_SEND_THREADS`` requests in flight (default 8).
3. **limiter accuracy**: both senders at ``--limit-mps`` (default 50) with 4 workers for
   ``--limit-seconds`` (default 60); the rate each sender's messages reached the fake.
4. **peak memory** of every process (sampled with psutil) and of Redis.
5. ``--profile``: one batch job under cProfile in a process of its own, with one sending thread
   (cProfile sees one thread): where a send's time goes.
6. ``--fake-alone``: the fake Twilio fed by plain HTTP clients (2 processes of 8 threads, no
   send path in front): the rate it takes and its CPU a request, to tell whether it is the cap.

The fake Twilio runs under gunicorn (one process, threads) in its lean mode: no status
callbacks, only arrival times kept.

    python bench/campaign_bench.py --base-db /tmp/base.sqlite3   # a database with the consumers
    python bench/campaign_bench.py --consumers 530000            # generate and import them first
    python bench/campaign_bench.py --csv-dir DIR --drain 2       # send it all: exactly once each?
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
import requests
from sqlalchemy import create_engine, text
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import migrations  # noqa: E402
from bot.dev.embedded_redis import EmbeddedRedis  # noqa: E402
from bot.settings import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN  # noqa: E402

PY = sys.executable
VALID_UNTIL = "2027-05-31"
#: The sender the limiter-alone measurement sends from (its own bucket and count at the fake).
LIMITED_SENDER = "+15005550099"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --------------------------------------------------------------------------- memory sampling


@dataclass
class MemorySampler:
    """Samples the RSS of processes (and their children) every ``interval`` seconds."""

    roots: dict[str, int] = field(default_factory=dict)
    peaks: dict[str, float] = field(default_factory=dict)
    interval: float = 0.5
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, label: str, pid: int) -> None:
        self.roots[label] = pid

    def unwatch(self, label: str) -> None:
        self.roots.pop(label, None)

    def _sample(self) -> None:
        for label, pid in list(self.roots.items()):
            try:
                proc = psutil.Process(pid)
                procs = [proc, *proc.children(recursive=True)]
            except psutil.Error:
                continue
            for p in procs:
                try:
                    rss = p.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                key = label if p.pid == pid else f"{label} (child)"
                self.peaks[key] = max(self.peaks.get(key, 0.0), rss)

    def __enter__(self) -> MemorySampler:
        def run() -> None:
            while not self._stop.wait(self.interval):
                self._sample()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# --------------------------------------------------------------------------- the stack


@contextlib.contextmanager
def fake_twilio(sampler: MemorySampler) -> Iterator[str]:
    """The fake Twilio under gunicorn (one process, 32 threads), lean: no callbacks kept."""
    port = free_port()
    app = f"bot.dev.fake_twilio:create_fake_app('{DEV_ACCOUNT_SID}', '{DEV_AUTH_TOKEN}')"
    proc = subprocess.Popen(
        [PY, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "32",
         "--backlog", "2048", "-b", f"127.0.0.1:{port}", "--log-level", "warning", app],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{url}/_fake/health", timeout=2).raise_for_status()
            break
        except requests.RequestException:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("the fake Twilio did not start") from None
            time.sleep(0.3)
    requests.post(
        f"{url}/_fake/errors", json={"post_callbacks": False, "keep_sent": False}, timeout=5
    ).raise_for_status()
    sampler.watch("fake Twilio (gunicorn)", proc.pid)
    try:
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()


def arrived(url: str) -> int:
    return int(requests.get(f"{url}/_fake/health", timeout=30).json()["received"])


def prepare_database(args: argparse.Namespace, folder: Path, stack: contextlib.ExitStack) -> str:
    """A database with the consumers, migrated to the latest schema; its URL."""
    path = folder / "bench.sqlite3"
    url = f"sqlite:///{path}"
    if args.database_url:
        from tests.pg_schemas import PrivateSchema

        url = stack.enter_context(PrivateSchema(args.database_url, "bijli_cbench")).url
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url}
    if args.base_db and not args.database_url:
        log(f"copying {args.base_db} ({Path(args.base_db).stat().st_size / 2**20:.0f} MB)")
        shutil.copyfile(args.base_db, path)
    else:
        csv = Path(args.csv_dir) if args.csv_dir else folder / "csv"
        if not args.csv_dir:
            log(f"generating {args.consumers:,} demo consumers")
            subprocess.run(
                [PY, "-m", "bot.cli", "demo-data", "--consumers", str(args.consumers),
                 "--out", str(csv)],
                env=env, check=True,
            )  # fmt: skip
        migrations.upgrade(url)
        for kind, name in (("consumers", "consumers"), ("bills", "bills")):
            log(f"importing {kind}")
            subprocess.run(
                [PY, "-m", "bot.cli", "import", kind, str(csv / f"{name}.csv")], env=env, check=True
            )
    migrations.upgrade(url)
    return url


def stack_env(db_url: str, redis_url: str, twilio_url: str, **extra: str) -> dict[str, str]:
    """The environment of the bench's processes (development credentials, the fake Twilio)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWILIO_", "BIJLI_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        TWILIO_API_BASE_URL=twilio_url,
        # Nothing listens there: the fake posts no callbacks anyway.
        PUBLIC_BASE_URL=f"http://127.0.0.1:{free_port()}",
        BIJLI_QUIET_HOURS="off",
        BIJLI_OLD_ACCOUNT_VALID_UNTIL=VALID_UNTIL,
        BIJLI_WHATSAPP_MPS="0",
        BIJLI_SMS_MPS="0",
    )
    env.update(extra)
    return env


# --------------------------------------------------------------------------- phases


def enqueue_phase() -> None:
    """(In a child process) create and start the campaign; print the figures as JSON."""
    from bot import connections
    from notifier import campaigns
    from notifier.campaigns import Filters

    cfg = connections.settings()
    engine = connections.engine(cfg)
    conn = connections.redis(cfg)
    started = time.perf_counter()
    cid = campaigns.create(
        engine,
        "new-account-number",
        Filters(),
        cfg=cfg,
        valid_until=dt.date.fromisoformat(VALID_UNTIL),
        progress=True,
    )
    assert isinstance(cid, int)
    created = time.perf_counter()
    result = campaigns.start(engine, conn, cid, progress=True)
    done = time.perf_counter()
    print(
        "RESULT "
        + json.dumps(
            {
                "campaign": cid,
                "queued": result.queued,
                "jobs": result.jobs,
                "create_s": created - started,
                "start_s": done - created,
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        ),
        flush=True,
    )


def run_enqueue(env: dict[str, str], sampler: MemorySampler) -> dict[str, Any]:
    proc = subprocess.Popen(
        [PY, str(Path(__file__).resolve()), "_enqueue"], env=env, stdout=subprocess.PIPE, text=True
    )
    sampler.watch("enqueue (create + start)", proc.pid)
    out, _ = proc.communicate()
    sampler.unwatch("enqueue (create + start)")
    if proc.returncode:
        raise SystemExit(f"enqueue failed ({proc.returncode}):\n{out}")
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])  # type: ignore[no-any-return]


@contextlib.contextmanager
def workers(env: dict[str, str], count: int, sampler: MemorySampler) -> Iterator[int]:
    label = f"bijli worker --workers {count}"
    proc = subprocess.Popen(
        [PY, "-m", "bot.cli", "worker", "--workers", str(count)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    sampler.watch(label, proc.pid)
    try:
        yield proc.pid
    finally:
        sampler.unwatch(label)
        # The pool's own shutdown; then the whole group, should a worker be mid-job.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds so far of each process and its children, by label."""
    out: dict[str, float] = {}
    for label, pid in pids.items():
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        total = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                total += times.user + times.system
        out[label] = total
    return out


def measure_rate(
    url: str, warmup: float, seconds: float, pids: dict[str, int]
) -> tuple[float, int, dict[str, float]]:
    """Messages per second arriving at the fake over ``seconds`` after ``warmup``, and the CPU
    milliseconds each process group spent per message meanwhile."""
    time.sleep(warmup)
    first, t0, cpu0 = arrived(url), time.monotonic(), cpu_seconds(pids)
    time.sleep(seconds)
    last, t1, cpu1 = arrived(url), time.monotonic(), cpu_seconds(pids)
    sent = last - first
    per_message = {
        label: (cpu1[label] - cpu0[label]) * 1000 / max(sent, 1) for label in cpu1 if label in cpu0
    }
    return sent / (t1 - t0), sent, per_message


def limiter_phase(url: str, warmup: float, seconds: float) -> dict[str, Any]:
    """Per-sender rates from the fake's arrival times over the window after ``warmup``."""
    start = time.time() + warmup
    time.sleep(warmup + seconds)
    data = requests.get(f"{url}/_fake/received", timeout=60).json()
    per: dict[str, list[float]] = {}
    for t, sender in zip(data["times"], data["senders"], strict=True):
        if start <= t < start + seconds:
            per.setdefault(sender, []).append(t)
    out: dict[str, Any] = {}
    for sender, times in sorted(per.items()):
        seconds_list = [0] * int(seconds)
        for t in times:
            seconds_list[min(int(t - start), int(seconds) - 1)] += 1
        out[sender] = {
            "count": len(times),
            "rate": len(times) / seconds,
            "min_per_s": min(seconds_list),
            "max_per_s": max(seconds_list),
        }
    return out


def limited_sender(seconds: float, mps: float) -> None:
    """(In a child process) take a token, send one message, for ``seconds``: the limiter alone."""
    from bot import connections, ratelimit, twilio_client

    cfg = connections.settings()
    conn = connections.redis(cfg)
    client = twilio_client.make_client(cfg)
    limiter = ratelimit.RateLimiter(conn, LIMITED_SENDER, mps)
    stop = time.monotonic() + seconds
    n = 0
    while time.monotonic() < stop:
        limiter.acquire(ratelimit.BULK, max_wait=30)
        client.messages.create(to=f"+9190{n:08d}", from_=LIMITED_SENDER, body="bench")
        n += 1


def run_limited_senders(
    env: dict[str, str], url: str, processes: int, mps: float, warmup: float, seconds: float
) -> dict[str, Any]:
    procs = [
        subprocess.Popen(
            [PY, str(Path(__file__).resolve()), "_limited", str(warmup + seconds + 2), str(mps)],
            env=env,
        )
        for _ in range(processes)
    ]
    try:
        figures = limiter_phase(url, warmup, seconds)
    finally:
        for proc in procs:
            proc.wait()
    return figures.get(LIMITED_SENDER, {"count": 0, "rate": 0.0, "min_per_s": 0, "max_per_s": 0})


def drain(
    env: dict[str, str], url: str, db_url: str, count: int, queued: int, sampler: MemorySampler
) -> dict[str, Any]:
    """Send the whole campaign with ``count`` workers, with a progress bar; the time it took and
    whether each recipient got exactly one message: as many arrived at the fake as were queued,
    and the database holds one sent message per recipient (none lost, none twice)."""
    log(f"drain: {queued:,} recipients, {count} workers")
    first = arrived(url)
    started = time.monotonic()
    last, last_change = first, started
    with workers(env, count, sampler), tqdm(total=queued, unit=" sends") as bar:
        while last - first < queued and time.monotonic() - last_change < 120:
            time.sleep(2)
            now = arrived(url)
            if now != last:
                bar.update(now - last)
                last, last_change = now, time.monotonic()
        # A short wait for any message sent twice to arrive as well.
        time.sleep(5)
        sent = arrived(url) - first
    seconds = last_change - started
    engine = create_engine(db_url)  # a PostgreSQL URL names its private schema itself
    with engine.connect() as db:
        messages, keys = db.execute(
            text("SELECT count(*), count(DISTINCT idempotency_key) FROM outbound_messages")
        ).one()
        # Every recipient but those left out at selection (opted out, no mobile) is sent.
        unsent = db.execute(
            text("SELECT count(*) FROM campaign_recipients WHERE state NOT IN ('sent', 'excluded')")
        ).scalar_one()
    engine.dispose()
    result = {
        "workers": count,
        "queued": queued,
        "arrived": sent,
        "seconds": seconds,
        "rate": (last - first) / seconds if seconds else 0.0,
        "outbound_rows": messages,
        "recipients_not_sent": unsent,
        "exactly_once": sent == queued == messages == keys and unsent == 0,
    }
    log(
        f"  drain: {sent:,} of {queued:,} messages arrived in {seconds:.0f} s "
        f"({result['rate']:.0f} sends/s); {messages:,} messages in the database, "
        f"{unsent:,} recipients not sent; exactly one each: {result['exactly_once']}"
    )
    return result


def fake_load(url: str, seconds: float, threads: int) -> None:
    """(In a child process) ``threads`` plain HTTP clients posting messages to the fake for
    ``seconds``: what the fake alone can take, without the send path in front of it."""
    stop = time.monotonic() + seconds
    path = f"{url}/2010-04-01/Accounts/{DEV_ACCOUNT_SID}/Messages.json"

    def run(n: int) -> None:
        session = requests.Session()
        i = 0
        while time.monotonic() < stop:
            session.post(
                path,
                auth=(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN),
                data={"To": f"+9191{n:02d}{i:06d}", "From": "+15005550098", "Body": "bench"},
                timeout=30,
            ).raise_for_status()
            i += 1

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def run_fake_alone(
    url: str, processes: int, threads: int, warmup: float, seconds: float, fake_pid: int
) -> dict[str, Any]:
    procs = [
        subprocess.Popen(
            [
                PY,
                str(Path(__file__).resolve()),
                "_fakeload",
                url,
                str(warmup + seconds + 1),
                str(threads),
            ],
        )  # fmt: skip
        for _ in range(processes)
    ]
    try:
        rate, sent, cpu = measure_rate(url, warmup, seconds, {"fake": fake_pid})
    finally:
        for proc in procs:
            proc.wait()
    return {"rate": rate, "sent": sent, "fake_cpu_ms_per_request": cpu.get("fake", 0.0)}


def profile_phase() -> None:
    """(In a child process) one batch job under cProfile; print the top of the profile."""
    from sqlalchemy import select

    from bot import connections, store
    from notifier import jobs

    cfg = connections.settings()
    engine = connections.engine(cfg)
    with store.session_scope(engine) as session:
        campaign = session.execute(select(store.Campaign).order_by(store.Campaign.id)).scalar_one()
        ids = list(
            session.execute(
                select(store.CampaignRecipient.id)
                .where(
                    store.CampaignRecipient.campaign_id == campaign.id,
                    store.CampaignRecipient.state == "queued",
                )
                .order_by(store.CampaignRecipient.id)
                .limit(500)
            ).scalars()
        )
        cid, generation = int(campaign.id), int(campaign.generation)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    jobs.send_batch(cid, generation, ids[0], ids[-1])
    profiler.disable()
    elapsed = time.perf_counter() - started
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer).sort_stats("cumulative")
    stats.print_stats(35)
    print(
        f"PROFILE {len(ids)} messages in {elapsed:.2f} s ({len(ids) / elapsed:.0f}/s, one process, "
        "one sending thread)"
    )
    print(buffer.getvalue())


# --------------------------------------------------------------------------- main


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_enqueue":
        enqueue_phase()
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_profile":
        profile_phase()
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_fakeload":
        fake_load(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_limited":
        limited_sender(float(sys.argv[2]), float(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-db", help="SQLite file that already holds the consumers (copied)")
    parser.add_argument("--consumers", type=int, default=530_000)
    parser.add_argument("--csv-dir", help="`bijli demo-data` files to import (else generated)")
    parser.add_argument(
        "--database-url", help="PostgreSQL server (a private schema; consumers imported there)"
    )
    parser.add_argument("--workers", default="2,3,4", help="worker counts for the sustained rate")
    parser.add_argument(
        "--sustain-mps",
        type=float,
        default=0.0,
        help="each sender's MPS during the sustained-rate runs (0: limiter off; a rate far above "
        "what is reached keeps the limiter on every send without it being the cap)",
    )
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--sustain-seconds", type=float, default=60.0)
    parser.add_argument("--limit-mps", type=float, default=50.0)
    parser.add_argument("--limit-seconds", type=float, default=60.0)
    parser.add_argument("--limit-workers", type=int, default=4)
    parser.add_argument("--profile", action="store_true", help="profile one batch job too")
    parser.add_argument(
        "--fake-alone",
        action="store_true",
        help="also measure the fake Twilio alone (plain HTTP clients, 2 processes x 8 threads)",
    )
    parser.add_argument(
        "--skip-limiter", action="store_true", help="leave out the two rate-limiter measurements"
    )
    parser.add_argument(
        "--drain",
        type=int,
        metavar="WORKERS",
        help="instead of the timed windows, send the whole campaign with this many workers and "
        "check that the fake got exactly one message per recipient",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",") if n]

    report: dict[str, Any] = {
        "command": " ".join(["python", "bench/campaign_bench.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
    }
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bijli-cbench-")))
        sampler = stack.enter_context(MemorySampler())
        db_url = prepare_database(args, folder, stack)
        report["database"] = db_url.split("://")[0]
        redis_server = stack.enter_context(EmbeddedRedis())
        sampler.watch("redis-server", redis_server.process.pid)  # type: ignore[union-attr]
        url = stack.enter_context(fake_twilio(sampler))
        env = stack_env(db_url, redis_server.url, url)

        log("enqueue: create (selection) and start (batch jobs)")
        enq = run_enqueue(env, sampler)
        report["enqueue"] = enq
        log(
            f"enqueue: {enq['queued']:,} recipients in {enq['jobs']:,} jobs; create "
            f"{enq['create_s']:.1f} s + start {enq['start_s']:.1f} s = "
            f"{enq['create_s'] + enq['start_s']:.1f} s; peak {enq['peak_mb']:.0f} MB"
        )

        if args.profile:
            log("profile: one batch of 500 in one process")
            out = subprocess.run(
                [PY, str(Path(__file__).resolve()), "_profile"],
                # One sending thread: cProfile sees only the thread it runs in.
                env={**env, "BIJLI_CAMPAIGN_SEND_THREADS": "1"},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            report["profile"] = out
            print(out)

        if args.drain:
            report["drain"] = drain(env, url, db_url, args.drain, enq["queued"], sampler)
            print("\nJSON " + json.dumps(report, default=str))
            return

        rates = []
        sustain = f"{args.sustain_mps:g}"
        sustain_env = {**env, "BIJLI_WHATSAPP_MPS": sustain, "BIJLI_SMS_MPS": sustain}
        report["sustain_mps"] = args.sustain_mps
        for count in counts:
            limiter = f"limiter at {sustain} MPS" if args.sustain_mps else "limiter off"
            log(f"{limiter}, {count} workers: {args.warmup:.0f} s warm-up, then measure")
            load_before = os.getloadavg()
            with workers(sustain_env, count, sampler) as pool_pid:
                groups = {
                    "workers": pool_pid,
                    **{
                        k: v
                        for k, v in sampler.roots.items()
                        if k in ("fake Twilio (gunicorn)", "redis-server")
                    },
                }
                rate, sent, cpu = measure_rate(url, args.warmup, args.sustain_seconds, groups)
            rates.append(
                {
                    "workers": count,
                    "rate": rate,
                    "sent": sent,
                    "load": os.getloadavg()[0],
                    "cpu_ms_per_message": cpu,
                }
            )
            log(
                f"  {count} workers: {rate:.0f} sends/s ({sent:,} in "
                f"{args.sustain_seconds:.0f} s; load {load_before[0]:.1f} → "
                f"{os.getloadavg()[0]:.1f}); CPU ms a message: "
                + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
                + f"; all {sum(cpu.values()):.1f}"
            )
        report["sustained"] = rates

        if args.fake_alone:
            log("the fake Twilio alone: 2 processes x 8 threads of plain HTTP posts")
            fake_pid = sampler.roots["fake Twilio (gunicorn)"]
            alone_fake = run_fake_alone(url, 2, 8, args.warmup, args.sustain_seconds, fake_pid)
            report["fake_alone"] = alone_fake
            log(
                f"  the fake alone: {alone_fake['rate']:.0f} requests/s; its CPU "
                f"{alone_fake['fake_cpu_ms_per_request']:.2f} ms a request"
            )
        if args.skip_limiter:
            print("\nJSON " + json.dumps(report, default=str))
            return

        mps = f"{args.limit_mps:g}"
        log(
            f"limiter alone at {mps} MPS: {args.limit_workers} processes take a token and send "
            f"one message each time, {args.limit_seconds:.0f} s"
        )
        alone = run_limited_senders(
            env, url, args.limit_workers, args.limit_mps, args.warmup, args.limit_seconds
        )
        report["limiter_alone"] = {"mps": args.limit_mps, "seconds": args.limit_seconds, **alone}
        error = (alone["rate"] - args.limit_mps) / args.limit_mps * 100
        log(
            f"  {LIMITED_SENDER}: {alone['rate']:.2f}/s ({error:+.1f}% of {mps}); per second "
            f"{alone['min_per_s']}–{alone['max_per_s']}"
        )
        limited_env = {**env, "BIJLI_WHATSAPP_MPS": mps, "BIJLI_SMS_MPS": mps}
        log(
            f"limiter at {mps} MPS per sender, {args.limit_workers} workers, "
            f"{args.limit_seconds:.0f} s"
        )
        with workers(limited_env, args.limit_workers, sampler):
            limits = limiter_phase(url, args.warmup, args.limit_seconds)
        report["limiter"] = {"mps": args.limit_mps, "seconds": args.limit_seconds, **limits}
        for sender, fig in limits.items():
            error = (fig["rate"] - args.limit_mps) / args.limit_mps * 100
            log(
                f"  {sender}: {fig['rate']:.2f}/s ({error:+.1f}% of {mps}); per second "
                f"{fig['min_per_s']}–{fig['max_per_s']}"
            )
        used = redis.Redis.from_url(redis_server.url, socket_timeout=5).info("memory")
        sampler._sample()
        report["memory_mb"] = {
            **{k: round(v) for k, v in sorted(sampler.peaks.items())},
            "redis used_memory_peak": round(int(used["used_memory_peak"]) / 2**20),
        }
    print("\nPeak memory (MB):")
    for label, value in report["memory_mb"].items():
        print(f"  {label}: {value}")
    print("\nJSON " + json.dumps(report, default=str))


if __name__ == "__main__":
    main()
