"""Twilio's REST calls over urllib3: the ``http_client`` twilio-python lets a program choose.

twilio-python sends through ``requests`` by default (``TwilioHttpClient``), and ``requests``'
preparation of a call (hooks, cookies, merging the session's settings with the environment's)
cost more CPU than urllib3's whole request; a worker makes one such call for every message.
:class:`Urllib3HttpClient` makes the same request (method, URL with its query, form body, basic
auth, Twilio's headers, timeout, no redirects) through urllib3's public API, and fails as the
default client does, with ``requests``' exceptions, which :mod:`bot.twilio_client` sorts into
"may have reached Twilio" and "never connected".

It is used only where ``requests`` would find nothing to read per request in the environment
(no proxy variable, no netrc file: :func:`bot.connections.environment_read_per_request`);
otherwise twilio-python's own client stays. HTTPS is verified against the bundle ``requests``
would use (:func:`bot.connections.ca_bundle`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import certifi
import requests
import urllib3
from twilio.http import HttpClient
from twilio.http.response import Response
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

#: twilio-python's own client logs here (bot.logfmt keeps only its warnings).
_logger = logging.getLogger("twilio.http_client")
#: requests' defaults (``HTTPAdapter``'s ``pool_connections`` and ``pool_maxsize``).
POOLS = 10


def encode_form(fields: Mapping[str, Any] | None) -> str:
    """Fields as ``requests`` encodes ``params`` and ``data``: a list is a repeated key, and a
    ``None`` is left out."""
    if not fields:
        return ""
    pairs: list[tuple[str, Any]] = []
    for key, values in fields.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            values = [values]
        pairs.extend((key, value) for value in values if value is not None)
    return urlencode(pairs, doseq=True)


def as_requests_error(exc: Exception) -> requests.RequestException:
    """The exception ``requests`` raises for a urllib3 failure (as its HTTPAdapter sorts them)."""
    if isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError):
        return requests.ConnectTimeout(exc)
    if isinstance(exc, ReadTimeoutError):
        return requests.ReadTimeout(exc)
    if isinstance(exc, urllib3.exceptions.SSLError):
        return requests.exceptions.SSLError(exc)
    # NewConnectionError (nothing reached Twilio), ProtocolError, a reset socket: as requests.
    return requests.ConnectionError(exc)


class Urllib3HttpClient(HttpClient):
    """twilio-python's ``HttpClient``, sending with one urllib3 pool manager."""

    def __init__(self, timeout: float | None = None, ca_certs: str | None = None) -> None:
        """``ca_certs``: the bundle HTTPS is verified against (default: certifi's, as
        ``requests``' without REQUESTS_CA_BUNDLE)."""
        super().__init__(_logger, False, timeout)
        # As many pools and connections a pool as requests keeps: a campaign batch sends from
        # several threads at once through one client.
        self.pool = urllib3.PoolManager(
            num_pools=POOLS,
            maxsize=POOLS,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs or certifi.where(),
        )

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send one request; ``requests``' exceptions when Twilio cannot be reached."""
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        method = method.upper()
        self.log_request({"method": method, "url": url, "params": params, "headers": headers})
        query = encode_form(params)
        if query:
            url = f"{url}{'&' if urlsplit(url).query else '?'}{query}"
        fields = dict(headers or {})
        if auth is not None:
            fields.update(urllib3.util.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
        body: str | bytes | None
        if isinstance(data, (str, bytes)):
            body = data  # a JSON document (the Content API), sent as UTF-8
        else:
            body = encode_form(data) or None
        try:
            answer = self.pool.request(
                method,
                url,
                body=body,
                headers=fields,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                redirect=allow_redirects,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise as_requests_error(exc) from exc
        response = Response(
            answer.status, answer.data.decode("utf-8", errors="replace"), answer.headers
        )
        self.log_response(answer.status, response)
        self._test_only_last_response = response
        return response


__all__ = ["Urllib3HttpClient", "as_requests_error", "encode_form"]
