"""What the HTTP clients read from the environment, and when."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bot import connections, twilio_client
from bot import settings as settings_mod
from tests.gateway_stack import ServerThread

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


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    """Answers every request with 200 and keeps its target as sent (a proxy's is the whole URL)."""
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["REQUEST_URI"])
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with ServerThread(app) as server:
        yield server.url, seen


def bare_settings() -> settings_mod.Settings:
    """Settings read from the environment as the test left it."""
    return settings_mod.load()


def test_a_bare_environment_has_nothing_read_per_request(bare_environment):
    assert not connections.environment_read_per_request(bare_settings())
    assert connections.ca_bundle(bare_settings()) == __import__("certifi").where()


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_the_ca_bundle_is_the_one_requests_would_verify_against(
    bare_environment, monkeypatch, variable
):
    monkeypatch.setenv(variable, "/etc/ssl/bundle.pem")
    assert connections.ca_bundle(bare_settings()) == "/etc/ssl/bundle.pem"
    settings = requests.Session().merge_environment_settings(
        "https://api.twilio.com/", {}, None, None, None
    )
    assert settings["verify"] == connections.ca_bundle(bare_settings())


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "http_proxy", "NO_PROXY", "NETRC"])
def test_proxy_variables_and_netrc_are_read_per_request(bare_environment, monkeypatch, variable):
    monkeypatch.setenv(variable, "http://127.0.0.1:9" if "PROXY" in variable.upper() else "/x")
    assert connections.environment_read_per_request(bare_settings())


def test_a_netrc_file_is_read_per_request(bare_environment):
    (bare_environment / ".netrc").write_text("machine 127.0.0.1 login a password b\n")
    assert connections.environment_read_per_request(bare_settings())


def test_twilio_calls_go_through_urllib3_unless_requests_must_read_the_environment(
    bare_environment, gw_settings, monkeypatch
):
    from twilio.http.http_client import TwilioHttpClient

    from bot.twilio_http import Urllib3HttpClient

    ours = twilio_client.make_client(gw_settings.with_overrides(requests_ca_bundle="/etc/x.pem"))
    assert isinstance(ours.http_client, Urllib3HttpClient)
    assert ours.http_client.pool.connection_pool_kw["ca_certs"] == "/etc/x.pem"
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert isinstance(twilio_client.make_client(gw_settings).http_client, TwilioHttpClient)


def test_with_a_proxy_variable_twilio_calls_go_through_the_proxy(
    bare_environment, gw_settings, monkeypatch, recorder
):
    proxy, seen = recorder
    monkeypatch.setenv("http_proxy", proxy)
    client = twilio_client.make_client(
        gw_settings.with_overrides(twilio_api_base_url="http://twilio.invalid")
    )
    client.request("GET", "http://twilio.invalid/2010-04-01/Accounts.json")
    assert seen == ["http://twilio.invalid/2010-04-01/Accounts.json"]


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
