"""The connections a process holds: one database engine, one Redis client, one HTTP client.

The web process, the worker, the action server and the CLI all take them from here. Each is made
on first use and cached for the process; after a ``fork()`` the child drops what it inherited
(SQLAlchemy's recipe: ``dispose(close=False)``) and makes its own, so gunicorn's and Sanic's forked
workers never share a socket with their parent.

Every Redis client has connect and socket timeouts, so an unresponsive Redis fails a request in
seconds instead of hanging it. RQ's worker is the exception: it blocks on ``BLPOP`` for minutes on
purpose and sets its own socket timeout, so it gets a client of its own (``blocking=True``).
"""

from __future__ import annotations

import os
import threading
import urllib.request
from typing import TYPE_CHECKING

import redis as redis_lib

from bot import settings as settings_mod

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import urllib3
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

#: Seconds to wait for Redis to accept a connection.
REDIS_CONNECT_TIMEOUT = 2.0
#: Seconds to wait for Redis to answer a command (none of ours blocks longer).
REDIS_SOCKET_TIMEOUT = 5.0
#: Seconds between PINGs on a connection that sat idle (drops dead ones before use).
REDIS_HEALTH_CHECK_INTERVAL = 30


class MissingSetting(RuntimeError):
    """A setting this process needs is not set; the message names the variable."""


class RedisNotConfigured(MissingSetting):
    """REDIS_URL is unset (``bijli run`` starts an embedded Redis and sets it)."""


_lock = threading.Lock()
_settings: settings_mod.Settings | None = None
_engines: dict[str, Engine] = {}
_redis: dict[tuple[str, bool], redis_lib.Redis] = {}
_rasa_http: urllib3.PoolManager | None = None


def settings() -> settings_mod.Settings:
    """This process's settings, read from the environment once."""
    global _settings
    with _lock:
        if _settings is None:
            _settings = settings_mod.load()
        return _settings


def engine(cfg: settings_mod.Settings | None = None) -> Engine:
    """The process's engine for ``cfg``'s DATABASE_URL (default: this process's settings)."""
    return engine_for((cfg or settings()).database_url)


def engine_for(url: str) -> Engine:
    """The process's engine for a database URL."""
    with _lock:
        found = _engines.get(url)
        if found is None:
            from bot.store import make_engine

            found = _engines[url] = make_engine(url)
        return found


def session(cfg: settings_mod.Settings | None = None) -> AbstractContextManager[Session]:
    """A store session (commit on success, roll back on error) on the process's engine."""
    from bot.store import session_scope

    return session_scope(engine(cfg))


def redis_url(cfg: settings_mod.Settings | None = None) -> str:
    """REDIS_URL, or :class:`RedisNotConfigured`."""
    url = (cfg or settings()).redis_url
    if not url:
        raise RedisNotConfigured("REDIS_URL is not set (`bijli run` starts an embedded Redis)")
    return url


def redis_client(url: str, *, blocking: bool = False) -> redis_lib.Redis:
    """A new client for ``url`` with timeouts; ``blocking`` leaves the socket timeout to RQ."""
    return redis_lib.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=None if blocking else REDIS_SOCKET_TIMEOUT,
        health_check_interval=REDIS_HEALTH_CHECK_INTERVAL,
    )


def redis(cfg: settings_mod.Settings | None = None, *, blocking: bool = False) -> redis_lib.Redis:
    """The process's Redis client for ``cfg``'s REDIS_URL (its pool outlives one request)."""
    key = (redis_url(cfg), blocking)
    with _lock:
        found = _redis.get(key)
        if found is None:
            found = _redis[key] = redis_client(key[0], blocking=blocking)
        return found


def environment_read_per_request(cfg: settings_mod.Settings) -> bool:
    """Whether ``requests`` reads something in this environment that depends on the request.

    A ``requests`` session looks, on every request, for proxy variables (and ``no_proxy``, per
    URL), a netrc file and a CA bundle variable. Where there is no proxy variable and no netrc
    file, only the CA bundle is left (:func:`ca_bundle`), and a client that does not use
    ``requests`` sends exactly what ``requests`` would.
    """
    if urllib.request.getproxies() or cfg.netrc:
        return True
    from requests.utils import NETRC_FILES

    return any(os.path.exists(os.path.expanduser(f"~/{name}")) for name in NETRC_FILES)


def ca_bundle(cfg: settings_mod.Settings) -> str:
    """The CA bundle ``requests`` verifies HTTPS against: REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE,
    else certifi's."""
    if cfg.requests_ca_bundle:
        return cfg.requests_ca_bundle
    import certifi

    return str(certifi.where())


def rasa_http(cfg: settings_mod.Settings | None = None) -> urllib3.PoolManager:
    """The process's HTTP client for Rasa's channel: urllib3, without ``requests``.

    A worker posts to Rasa once a message, and ``requests``' preparation of a call (hooks,
    cookies, merging settings) cost twice urllib3's whole request. Rasa is a service of this
    stack, so no proxy variable applies to it; an ``https`` RASA_URL is verified against the
    bundle ``requests`` would use (:func:`ca_bundle`; the settings of the first call, or the
    process's). Nothing is retried here: a failed post fails the job, which RQ retries.
    """
    global _rasa_http
    found = _rasa_http
    if found is not None:
        return found
    bundle = ca_bundle(cfg or settings())  # (settings() takes the lock)
    with _lock:
        if _rasa_http is None:
            import urllib3

            _rasa_http = urllib3.PoolManager(
                retries=False, cert_reqs="CERT_REQUIRED", ca_certs=bundle
            )
        return _rasa_http


def _forget_after_fork() -> None:
    # The child must open its own connections and must not close its parent's.
    global _rasa_http
    for eng in _engines.values():
        eng.dispose(close=False)
    # (redis-py's pools notice the new pid and reconnect by themselves.)
    _rasa_http = None


os.register_at_fork(after_in_child=_forget_after_fork)


def reset() -> None:
    """Close everything and forget the settings, so the next call reads the environment again."""
    global _settings, _rasa_http
    with _lock:
        for eng in _engines.values():
            eng.dispose()
        for client in _redis.values():
            client.close()
        if _rasa_http is not None:
            _rasa_http.clear()
        _engines.clear()
        _redis.clear()
        _settings = None
        _rasa_http = None


__all__ = [
    "MissingSetting",
    "RedisNotConfigured",
    "engine",
    "engine_for",
    "ca_bundle",
    "environment_read_per_request",
    "rasa_http",
    "redis",
    "redis_client",
    "redis_url",
    "reset",
    "session",
    "settings",
]
