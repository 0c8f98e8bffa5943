"""``/admin/rq``: RQ's own dashboard (rq-dashboard), behind the operator login.

rq-dashboard is a Flask blueprint with no login of its own ("the responsibility of the hosting
app"). Mounted under ``/admin``, the shell's guard signs operators in and lets no session idle
past its time; this module adds what the blueprint needs to be safe here:

- **Who:** job descriptions carry consumers' mobiles, so only roles that see consumers in full
  (:data:`VIEW_ROLES`) may look; requeueing, deleting and emptying are for :data:`ACTION_ROLES`.
- **CSRF:** the dashboard's JavaScript posts its buttons with jQuery and reads the token from a
  ``_csrf_token`` cookie into an ``X-CSRFToken`` header, which Flask-WTF accepts. We set that
  cookie (a Flask-WTF token, only for ``/admin/rq``, SameSite=Strict), so the buttons work and a
  forged post, which cannot read it, is refused like any other /admin form. Its one state-changing
  GET (``requeue/<queue>``) is refused: a link on another site could otherwise requeue jobs.
- **Redis:** the process's own client (:func:`bot.connections.redis`), instead of the blueprint's
  habit of opening a new connection per request from a URL; only instance 0 exists.
- **Scripts:** its pages run inline scripts and compile underscore templates (``new Function``).
  Their Content-Security-Policy allows exactly the inline scripts the page was rendered with (by
  hash) and eval, nothing else; inline event handlers stay blocked, so HTML that a job's
  arguments smuggle into a description (the dashboard shows some of it unescaped) cannot run.
  Names that the dashboard writes into its scripts unescaped (a queue's) must look like a queue
  name, so a crafted URL cannot get its own script hashed and allowed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from flask import Flask, Response, abort, current_app, has_request_context, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from rq_dashboard.web import blueprint as rq_blueprint

from bot import connections
from bot.admin import shell
from bot.settings import Settings
from bot.web import app_settings

#: Where the dashboard lives.
PREFIX = "/admin/rq"
#: The blueprint's name (its templates call ``url_for('rq_dashboard.…')``).
BLUEPRINT = rq_blueprint.name
#: Roles that may see the queues (job arguments carry consumers' mobiles).
VIEW_ROLES = frozenset({"officer", "admin"})
#: Roles that may requeue, delete, compact or empty.
ACTION_ROLES = frozenset({"admin"})
#: The dashboard's JSON that its pages poll every few seconds: it does not keep a session alive.
POLL_ENDPOINTS = frozenset(
    {
        f"{BLUEPRINT}.list_queues",
        f"{BLUEPRINT}.list_jobs",
        f"{BLUEPRINT}.job_info",
        f"{BLUEPRINT}.list_workers",
    }
)
#: The cookie the dashboard's JavaScript reads its CSRF token from.
CSRF_COOKIE = "_csrf_token"
#: What a queue's name looks like (RQ's and ours); anything else in a URL is refused.
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
#: Refresh every 5 s (the dashboard's default is 2.5 s; each poll is several Redis round trips).
POLL_INTERVAL_MS = 5000
_INLINE_SCRIPT = re.compile(
    r"<script(?P<attrs>(?:\s+[^>]*)?)>(?P<body>.*?)</script>", re.DOTALL | re.IGNORECASE
)
_SCRIPT_TYPE = re.compile(r"""\btype\s*=\s*["']?([^"'\s>]+)""", re.IGNORECASE)
_JS_TYPES = frozenset({"", "text/javascript", "application/javascript", "module"})


def init_app(app: Flask, cfg: Settings) -> None:
    """Mount rq-dashboard at :data:`PREFIX` behind the admin shell (after ``shell.init_app``)."""
    app.config.update(
        # Shown in the dashboard's instance picker (credentials masked by it); never dialled:
        # requests use the process's client, below.
        RQ_DASHBOARD_REDIS_URL=[cfg.redis_url or "redis://(unset)"],
        RQ_DASHBOARD_POLL_INTERVAL=POLL_INTERVAL_MS,
    )
    app.register_blueprint(rq_blueprint, url_prefix=PREFIX)
    # Replace the blueprint's own before_request (a new Redis connection per request from the
    # URL list) with ours; the shell's guard, app-wide, has already run by then.
    app.before_request_funcs[BLUEPRINT] = [_authorise_and_connect]
    app.after_request_funcs.setdefault(BLUEPRINT, []).append(_csrf_cookie_and_policy)
    app.url_build_error_handlers.append(_favicon_url)
    shell.add_poll_endpoints(app, POLL_ENDPOINTS)


def _authorise_and_connect() -> ResponseReturnValue | None:
    """Roles, the forms of the URL the dashboard may be given, then our Redis client."""
    if current_user.role not in VIEW_ROLES:
        abort(403)
    if request.method not in ("GET", "HEAD") and current_user.role not in ACTION_ROLES:
        abort(403)
    if request.endpoint == f"{BLUEPRINT}.requeue_all" and request.method != "POST":
        abort(405)
    args = request.view_args or {}
    if args.get("instance_number", 0) != 0:
        abort(404)
    name = args.get("queue_name")
    if name is not None and not QUEUE_NAME.match(name):
        abort(404)
    current_app.redis_conn = connections.redis(app_settings())  # type: ignore[attr-defined]
    return None


def _csrf_cookie_and_policy(response: Response) -> Response:
    """The token cookie for the dashboard's posts, and a script policy for its pages."""
    response.set_cookie(
        CSRF_COOKIE,
        generate_csrf(),
        path=PREFIX,
        samesite="Strict",
        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
        httponly=False,  # the dashboard's JavaScript reads it, as the header's source
    )
    if response.mimetype == "text/html" and not response.direct_passthrough:
        response.headers["Content-Security-Policy"] = page_policy(response.get_data(as_text=True))
    return response


def page_policy(html: str) -> str:
    """The Content-Security-Policy for a dashboard page: its own inline scripts, by hash."""
    hashes = []
    for match in _INLINE_SCRIPT.finditer(html):
        attrs = match.group("attrs") or ""
        if "src=" in attrs.lower():
            continue
        kind = _SCRIPT_TYPE.search(attrs)
        if (kind.group(1).lower() if kind else "") not in _JS_TYPES:
            continue  # underscore's <script type="text/template"> blocks never run
        digest = hashlib.sha256(match.group("body").encode()).digest()
        hashes.append(f"'sha256-{base64.b64encode(digest).decode()}'")
    return (
        "default-src 'self'; img-src 'self' data:; "
        # underscore's _.template compiles with new Function; inline handlers stay forbidden.
        f"script-src 'self' 'unsafe-eval' {' '.join(sorted(set(hashes)))}; "
        # Bootstrap's markup carries a few style attributes.
        "style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    )


def _favicon_url(error: Exception, endpoint: str, values: dict[str, Any]) -> str:
    # The dashboard's base template asks for the app's "static" endpoint, which this app does
    # not have (each blueprint serves its own files): give it the dashboard's own favicon.
    if endpoint == "static" and has_request_context() and request.blueprint == BLUEPRINT:
        return url_for(f"{BLUEPRINT}.favicon")
    raise error  # not ours: Flask tries its next handler, or raises it


__all__ = [
    "ACTION_ROLES",
    "CSRF_COOKIE",
    "POLL_ENDPOINTS",
    "PREFIX",
    "VIEW_ROLES",
    "init_app",
    "page_policy",
]
