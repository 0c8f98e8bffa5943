"""The /admin frame: sign-in and sign-out, the guard on every /admin path, and its headers.

``init_app`` sets the app up for operators: Flask-Login loads the signed-in operator from the
session, Flask-WTF checks a CSRF token on every unsafe request under ``/admin`` (the Twilio and
payment webhooks, signed by their senders, are left alone), and a guard in ``before_request``
sends anyone not signed in to the login page, whatever blueprint serves the path. Sessions end
after ``BIJLI_ADMIN_IDLE_MINUTES`` without a page the operator asked for (a page's background
polling does not count: requests with :data:`POLL_HEADER`, and the endpoints a feature names with
:func:`add_poll_endpoints`) and :data:`MAX_SESSION` after sign-in, whichever comes first. A
feature's navigation entry may be for some roles only (:func:`add_section`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from bot import connections
from bot.admin import accounts
from bot.connections import MissingSetting
from bot.logfmt import kv
from bot.settings import DEV_SECRET_KEY, Settings
from bot.store import Operator, session_scope
from bot.web import app_settings

log = logging.getLogger(__name__)

#: Everything under this path is for signed-in operators.
PREFIX = "/admin"
#: The longest a session lasts after sign-in, however busy the operator.
MAX_SESSION = dt.timedelta(hours=12)
#: Shortest secret key accepted with real Twilio credentials, in characters.
MIN_SECRET_KEY = 32
#: A request with this header is the page refreshing itself, not the operator: it does not
#: keep the session alive.
POLL_HEADER = "X-Admin-Poll"
#: Endpoints anyone may reach: the login page and the CSS it needs.
PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.static"})
#: Where to go after sign-in: only a path under /admin (no scheme, host, ``//``, ``..`` or ``\``).
_SAFE_NEXT = re.compile(r"^/admin(?:/[A-Za-z0-9_\-./?=&%]*)?$")
#: Under ``/admin`` no page is cached, framed, or allowed scripts from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

bp = Blueprint(
    "admin",
    __name__,
    url_prefix=PREFIX,
    template_folder="templates",
    static_folder="static",
)
login_manager = LoginManager()
csrf = CSRFProtect()


class SecretKeyMissing(MissingSetting):
    """BIJLI_SECRET_KEY is unset (or too short) while real Twilio credentials are in use."""


class OperatorUser(UserMixin):
    """The signed-in operator, as pages see it through ``current_user``."""

    def __init__(self, operator: Operator) -> None:
        self.id = int(operator.id)
        self.username = str(operator.username)
        self.display_name = str(operator.display_name)
        self.role = str(operator.role)
        self.epoch = int(operator.session_epoch)

    def get_id(self) -> str:
        # The epoch changes with the password or when the account is disabled: older sessions
        # name an epoch that no longer matches, and end.
        return f"{self.id}.{self.epoch}"


class LoginForm(FlaskForm):
    """Username and password, with Flask-WTF's CSRF token."""

    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=accounts.MAX_PASSWORD_LENGTH)]
    )


def check_secret_key(cfg: Settings) -> None:
    """Refuse the development secret key, or a short one, with real Twilio credentials."""
    if cfg.twilio_is_dev:
        return
    if cfg.secret_key == DEV_SECRET_KEY or len(cfg.secret_key) < MIN_SECRET_KEY:
        raise SecretKeyMissing(
            f"BIJLI_SECRET_KEY must be set to a random value of at least {MIN_SECRET_KEY} "
            "characters when real Twilio credentials are in use (it signs the operator pages' "
            "sessions): python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )


def init_app(app: Flask, cfg: Settings) -> None:
    """Set ``app`` up for operators and register the /admin shell."""
    check_secret_key(cfg)
    app.secret_key = cfg.secret_key
    app.config.update(
        # The app's one session cookie (other blueprints' forms may need it too, so its path
        # stays "/"); only the /admin pages look at who is signed in.
        SESSION_COOKIE_NAME="bijli_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.public_base_url.startswith("https://"),
        # Flask refuses a session cookie signed longer ago than this, whatever the browser
        # keeps; the guard below ends sessions earlier.
        PERMANENT_SESSION_LIFETIME=MAX_SESSION,
        # Protect /admin only, from the guard: webhooks are signed by Twilio and the gateway.
        WTF_CSRF_CHECK_DEFAULT=False,
        # A token lives as long as the session that holds it (the guard ends that).
        WTF_CSRF_TIME_LIMIT=None,
        # Flask-Login: a session used from another address or browser is dropped.
        SESSION_PROTECTION="strong",
        REMEMBER_COOKIE_DURATION=dt.timedelta(0),
    )
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_message = "Please sign in to see that page."
    login_manager.user_loader(_load_operator)
    app.before_request(_guard)
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _csrf_refused)
    app.extensions["bijli_admin_sections"] = []
    app.extensions["bijli_admin_poll_endpoints"] = set()
    app.context_processor(_shell_context)
    app.register_blueprint(bp)


def add_section(app: Flask, title: str, endpoint: str, roles: frozenset[str] | None = None) -> None:
    """List a feature's page in the /admin navigation, for ``roles`` only when given."""
    app.extensions["bijli_admin_sections"].append((title, endpoint, roles))


def add_poll_endpoints(app: Flask, endpoints: frozenset[str] | set[str]) -> None:
    """Endpoints a page polls by itself: like :data:`POLL_HEADER`, they keep no session alive."""
    app.extensions["bijli_admin_poll_endpoints"].update(endpoints)


def _shell_context() -> dict[str, Any]:
    role = getattr(current_user, "role", None)
    sections = [
        (title, endpoint)
        for title, endpoint, roles in current_app.extensions.get("bijli_admin_sections", [])
        if roles is None or role in roles
    ]
    return {"admin_sections": sections}


def _load_operator(user_id: str) -> OperatorUser | None:
    raw_id, _, raw_epoch = user_id.partition(".")
    if not (raw_id.isdigit() and raw_epoch.isdigit()):
        return None
    with session_scope(connections.engine(app_settings())) as db:
        operator = db.get(Operator, int(raw_id))
        if operator is None or not operator.active or operator.session_epoch != int(raw_epoch):
            return None
        return OperatorUser(operator)


def _under_admin() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def _guard() -> ResponseReturnValue | None:
    """Before every request under /admin: CSRF on unsafe methods, then a live sign-in."""
    if not _under_admin():
        return None
    # Raises CSRFError (400) on POST/PUT/PATCH/DELETE without a valid token.
    csrf.protect()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return _to_login(login_manager.login_message)
    now = time.time()
    idle = app_settings().admin_idle_seconds
    started, seen = session.get("login_at", 0.0), session.get("seen", 0.0)
    if now - seen > idle or now - started > MAX_SESSION.total_seconds():
        log.info(kv("operator_session_expired", operator=current_user.username))
        logout_user()
        session.clear()
        return _to_login("Your session expired. Please sign in again.")
    polled = request.endpoint in current_app.extensions["bijli_admin_poll_endpoints"]
    if request.headers.get(POLL_HEADER) != "1" and not polled:
        session["seen"] = now
    return None


def _to_login(message: str) -> ResponseReturnValue:
    """To the login page, coming back here afterwards when "here" was a page (a GET)."""
    flash(message)
    back = _next_for(request.full_path) if request.method == "GET" else None
    return redirect(url_for("admin.login", next=back))


def _security_headers(response: Response) -> Response:
    if _under_admin():
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


def _csrf_refused(error: CSRFError) -> ResponseReturnValue:
    log.warning(kv("csrf_refused", path=request.path, reason=error.description))
    return (
        render_template(
            "admin/error.html",
            title="Form refused",
            message="This form was not sent from this site, or has expired. "
            "Go back, reload the page and try again.",
        ),
        400,
    )


def _next_for(path: str) -> str | None:
    path = path.rstrip("?")
    return path if _SAFE_NEXT.match(path) and ".." not in path and "//" not in path else None


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: ``target`` when it is an /admin path, else the home page."""
    if target and _next_for(target):
        return target
    return url_for("admin.home")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The sign-in form."""
    form = LoginForm()
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    if form.validate_on_submit():
        with session_scope(connections.engine(app_settings())) as db:
            result = accounts.authenticate(db, form.username.data or "", form.password.data or "")
            user = OperatorUser(result.operator) if result.operator is not None else None
        if user is not None:
            target = safe_next(request.args.get("next"))
            # A fresh session: nothing from before sign-in (a planted cookie) carries over.
            session.clear()
            login_user(user)
            session["login_at"] = session["seen"] = time.time()
            return redirect(target)
        # The same words for a wrong name, a wrong password and a locked account, so the page
        # tells an attacker nothing about which accounts exist.
        flash(
            "Sign-in failed. Check the username and password. After "
            f"{accounts.MAX_FAILED_LOGINS} failed tries in a row an account is locked for "
            f"{int(accounts.LOCKOUT.total_seconds() // 60)} minutes."
        )
        return render_template("admin/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("admin/login.html", form=form), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Sign out (a POST with a CSRF token, so no link on another site can do it)."""
    log.info(kv("operator_logout", operator=current_user.username))
    logout_user()
    session.clear()
    flash("You have signed out.")
    return redirect(url_for("admin.login"))


@bp.get("/")
def home() -> ResponseReturnValue:
    """The sections an operator can open."""
    return render_template("admin/home.html")


__all__ = [
    "MAX_SESSION",
    "POLL_HEADER",
    "LoginForm",
    "OperatorUser",
    "SecretKeyMissing",
    "add_poll_endpoints",
    "add_section",
    "bp",
    "check_secret_key",
    "init_app",
    "safe_next",
]
