"""HTTP sessions read the environment once when nothing in it depends on the request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from bot import connections, twilio_client

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def bare_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No proxy, CA bundle or netrc variable, and a home without a netrc file."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


class Recorder(BaseHTTPRequestHandler):
    """Answers every GET with 200 and keeps the request line (a proxy sees the whole URL)."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_bare_environment_is_read_once(bare_environment):
    session = connections.read_environment_once(requests.Session())
    assert session.trust_env is False
    assert session.verify is True


def test_a_ca_bundle_variable_is_kept_on_the_session(bare_environment, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    session = connections.read_environment_once(requests.Session())
    assert session.trust_env is False
    # What requests would have used for a request that names no verify of its own.
    settings = session.merge_environment_settings("https://api.twilio.com/", {}, None, None, None)
    assert settings["verify"] == "/etc/ssl/bundle.pem"
    trusting = requests.Session()
    assert (
        trusting.merge_environment_settings("https://api.twilio.com/", {}, None, None, None)
        == settings
    )


def test_curl_ca_bundle_counts_when_requests_own_is_unset(bare_environment, monkeypatch):
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/curl.pem")
    assert connections.read_environment_once(requests.Session()).verify == "/etc/ssl/curl.pem"


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "http_proxy", "NO_PROXY", "NETRC"])
def test_variables_read_per_request_leave_the_session_trusting(
    bare_environment, monkeypatch, variable
):
    monkeypatch.setenv(variable, "http://127.0.0.1:9" if "PROXY" in variable.upper() else "/x")
    assert connections.environment_read_per_request()
    assert connections.read_environment_once(requests.Session()).trust_env is True


def test_a_netrc_file_leaves_the_session_trusting(bare_environment):
    (bare_environment / ".netrc").write_text("machine 127.0.0.1 login a password b\n")
    assert connections.read_environment_once(requests.Session()).trust_env is True


def test_a_proxy_in_the_environment_is_still_used(bare_environment, monkeypatch, recorder):
    proxy, seen = recorder
    monkeypatch.setenv("http_proxy", proxy)
    session = connections.read_environment_once(requests.Session())
    response = session.get("http://bijli.invalid/through-the-proxy", timeout=5)
    assert response.status_code == 200
    assert seen == ["http://bijli.invalid/through-the-proxy"]


def test_without_a_proxy_requests_go_straight_to_the_server(bare_environment, recorder):
    url, seen = recorder
    session = connections.read_environment_once(requests.Session())
    assert session.get(f"{url}/direct", timeout=5).status_code == 200
    assert seen == ["/direct"]


def test_the_twilio_client_reads_the_environment_once(bare_environment, gw_settings):
    client = twilio_client.make_client(gw_settings)
    assert client.http_client.session.trust_env is False


def test_the_rasa_client_verifies_https_against_the_bundle_requests_would_use(
    bare_environment, monkeypatch
):
    import certifi

    connections.reset()
    try:
        pools = connections.rasa_http()
        assert pools.connection_pool_kw["ca_certs"] == certifi.where()
        assert pools.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
        connections.reset()
        assert connections.rasa_http().connection_pool_kw["ca_certs"] == "/etc/ssl/bundle.pem"
    finally:
        connections.reset()
