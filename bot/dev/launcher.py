"""``bijli run``: the whole stack on one machine, on embedded defaults.

Starts a private Redis when ``REDIS_URL`` is unset (on EMBEDDED_REDIS_PORT, keeping an
append-only file in ``var/redis/``, so queues, scheduled retries and counters survive a restart)
and the local fake Twilio when no real credentials are set, migrates the database, loads demo
data into an empty one, then runs every process of the ``Procfile`` under honcho until Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bot.dev.embedded_redis import EmbeddedRedis, RedisPortInUse
from bot.rasa_runtime.environment import rasa_env
from bot.settings import ROOT, Settings, load, load_checked


def procfile_processes(root: Path = ROOT) -> dict[str, str]:
    """The process commands of the Procfile, by name."""
    from honcho.environ import parse_procfile

    return dict(parse_procfile((root / "Procfile").read_text()).processes)


def embedded_redis(cfg: Settings) -> EmbeddedRedis:
    """The Redis ``bijli run`` starts: same port every time, its data kept in ``var/redis/``."""
    return EmbeddedRedis(port=cfg.embedded_redis_port, workdir=cfg.var_dir / "redis")


def load_demo_data(cfg: Settings, consumers: int) -> None:
    """Import synthetic consumers, bills, balances and staff into an empty database."""
    from bot import connections, importers
    from bot.importers import demo_data
    from bot.store import Consumer, count_rows, session_scope

    engine = connections.engine(cfg)
    with session_scope(engine) as session:
        if count_rows(session, Consumer):
            print("demo data: database already has consumers, leaving it alone", flush=True)
            return
    with tempfile.TemporaryDirectory(prefix="bijli-demo-") as tmp:
        files = demo_data.write_demo_data(Path(tmp), consumers=consumers, seed=2023, progress=True)
        for kind in ("consumers", "bills", "prepaid-balances", "staff"):
            report = importers.import_file(engine, kind, files[kind], progress=True)
            print(report.summary(), flush=True)


def run_all(demo_consumers: int = 2000) -> int:
    """Run the stack; return the exit code honcho reports."""
    from honcho.manager import Manager

    from bot import migrations

    cfg = load_checked()
    env = dict(os.environ)
    with ExitStack() as stack:
        if not cfg.redis_url:
            try:
                redis = stack.enter_context(embedded_redis(cfg))
            except RedisPortInUse as exc:
                raise SystemExit(
                    f"embedded redis-server: {exc} (a redis-server left by an earlier "
                    "`bijli run`? stop it, or set EMBEDDED_REDIS_PORT to a free port)"
                ) from None
            env["REDIS_URL"] = redis.url
            print(f"embedded redis-server: {redis.url}", flush=True)
        processes = procfile_processes()
        if cfg.twilio_is_dev and not cfg.twilio_api_base_url:
            port = cfg.fake_twilio_port
            env["TWILIO_API_BASE_URL"] = f"http://127.0.0.1:{port}"
            processes["twilio"] = f"bijli fake-twilio --port {port}"
        if cfg.twilio_is_dev and cfg.razorpay_is_dev and not cfg.razorpay_api_base_url:
            # No gateway credentials: payments go to the local fake, which signs its webhooks
            # with the development secret and posts them to this stack's web process.
            env["RAZORPAY_API_BASE_URL"] = f"http://127.0.0.1:{cfg.fake_razorpay_port}"
            processes["razorpay"] = f"bijli fake-razorpay --port {cfg.fake_razorpay_port}"
        cfg = load(env)
        env.update(rasa_env(cfg))
        if cfg.database_url.startswith("sqlite:///"):
            Path(cfg.database_url.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        migrations.upgrade(cfg.database_url)
        if demo_consumers:
            load_demo_data(cfg, demo_consumers)

        web = env.get("PUBLIC_BASE_URL", cfg.public_base_url)
        print(
            "\nBijli Sahayak is starting (Rasa takes a little while to load its model):\n"
            f"  dev console     {web}/console\n"
            f"  agent inbox     {web}/admin/inbox/  (a login: bijli operator add NAME)\n"
            f"  campaigns       {web}/admin/campaigns/  (officers and admins)\n"
            f"  queues          {web}/admin/rq/\n"
            f"  health          {web}/healthz\n"
            f"  Rasa            {cfg.rasa_url}/\n"
            + (
                f"  fake Twilio     {env['TWILIO_API_BASE_URL']}/sent\n"
                if "twilio" in processes
                else ""
            )
            + (
                f"  fake Razorpay   {env['RAZORPAY_API_BASE_URL']}/_fake/deliveries\n"
                if "razorpay" in processes
                else ""
            )
            + "Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        bindir = str(Path(sys.executable).parent)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        manager = Manager()
        for name, command in processes.items():
            manager.add_process(name, command, env=env, cwd=str(ROOT))
        manager.loop()
        return int(manager.returncode or 0)
