"""The urllib3 transport sends what twilio-python's own client sends, and fails as it does."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from werkzeug.datastructures import EnvironHeaders

from bot import twilio_client
from bot.dev.embedded_redis import free_port
from bot.twilio_http import Urllib3HttpClient, encode_form
from tests.gateway_stack import ServerThread

ACCOUNT = "AC" + "1" * 32
TOKEN = "t" * 32
#: Headers a transport adds by itself: requests asks for compressed answers and keeps the
#: connection open; neither changes what Twilio is asked.
TRANSPORT_HEADERS = {"accept-encoding", "connection"}
MESSAGE = {"sid": "SM" + "2" * 32, "status": "queued", "body": "ok"}
PAGE = {"messages": [MESSAGE], "next_page_uri": None, "page": 0, "page_size": 2}


def request_headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers as sent, lower-cased, less the transport's own."""
    headers = {key.lower(): value for key, value in EnvironHeaders(environ).items()}
    return {k: v for k, v in headers.items() if k not in TRANSPORT_HEADERS}


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Keeps every request (method, target, headers, body) and answers as Twilio would."""
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        seen.append(
            {
                "method": method,
                "target": environ["REQUEST_URI"],
                "headers": request_headers(environ),
                "body": environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)),
            }
        )
        answer = json.dumps(PAGE if method == "GET" else MESSAGE).encode()
        start_response(
            "200 OK" if method == "GET" else "201 Created",
            [
                ("Content-Type", "application/json; charset=utf-8"),
                ("Content-Length", str(len(answer))),
            ],
        )
        return [answer]

    # The project's threaded server keeps connections open (HTTP/1.1), as Twilio's API does.
    with ServerThread(app) as server:
        yield server.url, seen


def client_with(http_client: Any, base: str) -> Client:
    client = Client(ACCOUNT, TOKEN, http_client=http_client)
    client.api.base_url = base
    client.content.base_url = base
    return client


CALLS: dict[str, Callable[[Client], Any]] = {
    "create": lambda c: c.messages.create(
        to="whatsapp:+919876500001",
        from_="whatsapp:+14155238886",
        body="बिल ₹1,234 & ?=#; देय",
        media_url=["http://127.0.0.1:9/qr/1.png", "http://127.0.0.1:9/qr/2.png"],
        status_callback="http://127.0.0.1:8000/twilio/status?key=reply%3A1%3A0%3A0",
    ),
    "template": lambda c: c.messages.create(
        to="whatsapp:+919876500001",
        from_="whatsapp:+14155238886",
        content_sid="HX" + "3" * 32,
        content_variables=json.dumps({"1": "नमस्ते"}, ensure_ascii=False),
    ),
    "list": lambda c: c.messages.list(
        to="whatsapp:+919876500001", from_="whatsapp:+14155238886", limit=1, page_size=2
    ),
    "content": lambda c: c.request(
        "POST",
        c.content.absolute_url("/v1/Content"),
        data=json.dumps({"friendly_name": "हाँ/नहीं"}, ensure_ascii=False),
        headers={"Content-Type": "application/json"},
    ),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_both_transports_send_twilio_the_same_request(recorder, call):
    base, seen = recorder
    answers = []
    for transport in (TwilioHttpClient(timeout=5), Urllib3HttpClient(timeout=5)):
        answers.append(CALLS[call](client_with(transport, base)))
    stock, ours = seen
    assert ours == stock
    assert ours["headers"]["authorization"].startswith("Basic ")
    if call == "list":
        assert [m.sid for m in answers[0]] == [m.sid for m in answers[1]] == [MESSAGE["sid"]]
    elif call == "content":
        assert answers[0].status_code == answers[1].status_code == 201
        assert answers[0].text == answers[1].text
    else:
        assert answers[0].sid == answers[1].sid == MESSAGE["sid"]


def test_a_query_already_in_the_url_is_kept_and_extended(recorder):
    base, seen = recorder
    for transport in (TwilioHttpClient(timeout=5), Urllib3HttpClient(timeout=5)):
        transport.request("GET", f"{base}/Messages.json?Page=1", params={"PageSize": 50})
    assert seen[0]["target"] == seen[1]["target"] == "/Messages.json?Page=1&PageSize=50"


def test_forms_are_encoded_as_requests_encodes_them():
    fields = {"To": "+91 98765", "MediaUrl": ["a b", "c&d"], "Skip": None, "N": 3, "Empty": ""}
    prepared = requests.Request("POST", "http://x/", data=fields).prepare()
    assert encode_form(fields) == prepared.body
    assert encode_form({}) == encode_form(None) == ""


def test_eight_sending_threads_share_one_client_without_dropping_connections(recorder, caplog):
    base, seen = recorder
    client = client_with(Urllib3HttpClient(timeout=5), base)
    barrier = threading.Barrier(8)

    def sender(n: int) -> None:
        barrier.wait()
        for i in range(5):
            client.messages.create(to=f"+9198765{n:05d}", from_="+15005550006", body=f"{n}/{i}")

    with caplog.at_level(logging.WARNING, logger="urllib3"):
        threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(seen) == 40
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.mark.parametrize("transport", [TwilioHttpClient, Urllib3HttpClient])
def test_no_answer_in_time_may_have_reached_twilio(silent_port, transport):
    http = transport(timeout=0.3)
    with pytest.raises(requests.ReadTimeout) as caught:
        http.request("POST", f"http://127.0.0.1:{silent_port}/Messages.json", data={"To": "x"})
    assert twilio_client._may_have_reached_twilio(caught.value)


@pytest.mark.parametrize("transport", [TwilioHttpClient, Urllib3HttpClient])
def test_a_refused_connection_never_reached_twilio(transport):
    http = transport(timeout=2)
    with pytest.raises(requests.ConnectionError) as caught:
        http.request("POST", f"http://127.0.0.1:{free_port()}/Messages.json", data={"To": "x"})
    assert not isinstance(caught.value, requests.Timeout)
    assert not twilio_client._may_have_reached_twilio(caught.value)


@pytest.mark.parametrize("transport", [TwilioHttpClient, Urllib3HttpClient])
def test_a_timeout_of_zero_is_refused_as_twilio_refuses_it(transport):
    with pytest.raises(ValueError):
        transport(timeout=5).request("GET", "http://127.0.0.1:9/", timeout=0)
