"""gunicorn's access log as the Procfile configures it: no line for a parked status callback."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from gunicorn.config import Config

from bot.gateway import access_log
from bot.gateway.webhooks import PARKED_ENVIRON


def _environ(path: str, **extra: object) -> dict[str, object]:
    return {
        "REQUEST_METHOD": "POST",
        "RAW_URI": path,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        **extra,
    }


def test_parked_callbacks_leave_no_access_line_and_the_rest_do(tmp_path):
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    logger = access_log.Logger(cfg)
    resp = SimpleNamespace(status="204 NO CONTENT", sent=0, headers=[])
    req = SimpleNamespace(headers=[])
    took = dt.timedelta(milliseconds=2)
    logger.access(resp, req, _environ("/twilio/status", **{PARKED_ENVIRON: True}), took)
    logger.access(resp, req, _environ("/twilio/status"), took)
    logger.access(resp, req, _environ("/twilio/messages"), took)
    for handler in logger.access_log.handlers:
        handler.flush()
    lines = (tmp_path / "access.log").read_text().splitlines()
    assert len(lines) == 2
    assert "/twilio/status" in lines[0] and "/twilio/messages" in lines[1]


def test_the_parking_middleware_marks_what_it_answers(gw_app, post_signed, redis_conn):
    seen: list[dict[str, object]] = []
    inner = gw_app.wsgi_app.wsgi_app

    def spy(environ, start_response):
        seen.append(environ)
        return inner(environ, start_response)

    gw_app.wsgi_app.wsgi_app = spy
    marked: list[bool] = []
    outer = gw_app.wsgi_app

    def record(environ, start_response):
        result = outer(environ, start_response)
        marked.append(bool(environ.get(PARKED_ENVIRON)))
        return result

    gw_app.wsgi_app = record
    form = {"MessageSid": "SM" + "3" * 32, "MessageStatus": "delivered"}
    assert post_signed("/twilio/status", form).status_code == 204
    assert post_signed("/twilio/status", {**form, "MessageStatus": "failed"}).status_code == 204
    assert marked == [True, False]
    assert len(seen) == 1, "only the unparked one reached Flask"
