"""`bijli run` (what `make run` starts) brings the whole stack up and takes it down again."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from bot.rasa_runtime import training as model
from tests.processes import bijli, free_port, stop


@pytest.mark.rasa
@pytest.mark.slow
def test_bijli_run_serves_healthz_and_stops_its_redis_keeping_its_data(tmp_path: Path):
    if not model.model_path().exists():
        pytest.fail("no trained model: `make test` trains it before pytest (run `bijli train`)")
    ports = {
        name: free_port() for name in ("web", "rasa", "actions", "twilio", "redis", "razorpay")
    }
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "REDIS_URL",
            "DATABASE_URL",
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "TWILIO_API_BASE_URL",
            "RAZORPAY_KEY_ID",
            "RAZORPAY_API_BASE_URL",
        }
    }
    env.update(
        BIJLI_VAR_DIR=str(tmp_path / "var"),
        WEB_PORT=str(ports["web"]),
        WEB_CONCURRENCY="1",
        RASA_URL=f"http://127.0.0.1:{ports['rasa']}",
        ACTIONS_PORT=str(ports["actions"]),
        FAKE_TWILIO_PORT=str(ports["twilio"]),
        EMBEDDED_REDIS_PORT=str(ports["redis"]),
        FAKE_RAZORPAY_PORT=str(ports["razorpay"]),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{ports['web']}",
    )
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            bijli("run", "--demo-consumers", "50"),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        urls = {
            "web": f"http://127.0.0.1:{ports['web']}/healthz",
            # Rasa's root route; its HTTP API is off without RASA_AUTH_TOKEN.
            "rasa": f"http://127.0.0.1:{ports['rasa']}/",
            "actions": f"http://127.0.0.1:{ports['actions']}/health",
            "razorpay": f"http://127.0.0.1:{ports['razorpay']}/_fake/health",
        }
        up: dict[str, int] = {}
        deadline = time.monotonic() + 240
        while len(up) < len(urls) and time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
            for name, url in urls.items():
                if name in up:
                    continue
                try:
                    up[name] = requests.get(url, timeout=2).status_code
                except requests.RequestException:
                    pass
            time.sleep(1)
        output = log_path.read_text(errors="replace")
        assert up == {"web": 200, "rasa": 200, "actions": 200, "razorpay": 200}, output[-3000:]
        # Without RASA_AUTH_TOKEN Rasa's HTTP API is off, not open.
        rasa = f"http://127.0.0.1:{ports['rasa']}"
        assert requests.get(f"{rasa}/status", timeout=5).status_code == 404
        assert requests.get(f"{rasa}/conversations/x/tracker", timeout=5).status_code == 404
        assert "dev console" in output and f":{ports['web']}/console" in output
        assert "worker" in output  # honcho prefixes each line with the process name
        redis_url = next(
            line.split(": ", 1)[1].strip()
            for line in output.splitlines()
            if line.startswith("embedded redis-server:")
        )
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        finally:
            stop(proc)
    import redis

    assert redis_url == f"redis://127.0.0.1:{ports['redis']}/0"
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    # What it held is in var/redis/, for the next `bijli run`.
    assert (tmp_path / "var" / "redis" / "appendonly.aof").stat().st_size > 0
