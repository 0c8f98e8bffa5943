"""The /admin shell: sign-in required everywhere, CSRF, lockout, expiry, headers, secret key."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from bot import create_app
from bot.admin import accounts, shell
from bot.store import session_scope
from tests.operators import PASSWORD, csrf_from, sign_in

#: Values for the URL variables of /admin routes.
SAMPLE_ARGS = {
    "handoff_id": 1,
    "reply_id": 1,
    "filename": "admin.css",
    "campaign_id": 1,
    "change_id": 1,
    # rq-dashboard's (/admin/rq)
    "instance_number": 0,
    "queue_name": "notifications",
    "registry_name": "failed",
    "job_id": "job-1",
    "per_page": 8,
    "order": "asc",
    "page": 1,
}


def _admin_routes(app):
    """(method, path) of every route under /admin, with sample values for its variables."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:\w+:)?{name}>", str(SAMPLE_ARGS[name]), path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path, rule.endpoint))
    return found


def test_every_admin_page_needs_a_signed_in_operator(app, client):
    routes = _admin_routes(app)
    endpoints = {endpoint for _, _, endpoint in routes}
    assert {"admin.home", "inbox.index", "inbox.show", "inbox.reply", "inbox.close"} <= endpoints
    assert {"verification.index", "verification.approve", "verification.reject"} <= endpoints
    assert {"rq_dashboard.queues_overview", "rq_dashboard.requeue_job_view"} <= endpoints
    # A token from the login page, so that POSTs get past CSRF and meet the sign-in check.
    token = csrf_from(client.get("/admin/login").get_data(as_text=True))
    for method, path, endpoint in routes:
        if endpoint in shell.PUBLIC_ENDPOINTS:
            continue
        response = client.open(path, method=method, data={"csrf_token": token})
        assert response.status_code == 302, (method, path, response.status_code)
        # Back to the page after signing in; never back to a form's POST.
        want = f"/admin/login?next={path}" if method == "GET" else "/admin/login"
        assert response.headers["Location"] == want, (method, path)
    # Paths no route serves say nothing either.
    assert client.get("/admin/no-such-page").headers["Location"].startswith("/admin/login")


def test_sign_in_and_out(client, make_operator):
    make_operator()
    response = sign_in(client, next_="/admin/inbox/")
    assert (response.status_code, response.headers["Location"]) == (302, "/admin/inbox/")
    page = client.get("/admin/inbox/")
    assert page.status_code == 200 and "Priya (agent)" in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/admin/inbox/").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/admin/../x"])
def test_sign_in_never_redirects_off_the_admin_pages(client, make_operator, target):
    make_operator()
    assert sign_in(client, next_=target).headers["Location"] == "/admin/"


def test_a_form_posted_without_a_token_or_with_anothers_is_refused(app, client, make_operator):
    make_operator()
    client.get("/admin/login")
    response = client.post("/admin/login", data={"username": "priya", "password": PASSWORD})
    assert response.status_code == 400
    assert "Form refused" in response.get_data(as_text=True)
    # A token from the attacker's own session does not work in the victim's.
    attacker = app.test_client()
    stolen = csrf_from(attacker.get("/admin/login").get_data(as_text=True))
    forged = client.post(
        "/admin/login", data={"username": "priya", "password": PASSWORD, "csrf_token": stolen}
    )
    assert forged.status_code == 400
    assert client.get("/admin/").status_code == 302, "still signed out"
    # Signed in, a form without a token changes nothing either.
    assert sign_in(client).status_code == 302
    assert client.post("/admin/logout").status_code == 400
    assert client.get("/admin/").status_code == 200, "still signed in"


def test_repeated_failures_lock_the_account_on_the_web_too(client, engine, make_operator):
    make_operator()
    for n in range(accounts.MAX_FAILED_LOGINS):
        failed = sign_in(client, password=f"wrong password {n}")
        assert failed.status_code == 401
    refused = sign_in(client)  # the right password, while locked
    assert refused.status_code == 401
    text = refused.get_data(as_text=True)
    assert "Sign-in failed" in text and "locked for 15 minutes" in text
    assert client.get("/admin/").status_code == 302
    with session_scope(engine) as session:
        assert accounts.by_username(session, "priya").locked_until is not None
        accounts.unlock(session, "priya")
    assert sign_in(client).status_code == 302


def test_an_unknown_user_and_a_locked_one_get_the_same_answer(client, make_operator):
    make_operator()
    unknown = sign_in(client, username="nobody").get_data(as_text=True)
    for _ in range(accounts.MAX_FAILED_LOGINS):
        sign_in(client, password="wrong password!")
    locked = sign_in(client).get_data(as_text=True)

    def message(html: str) -> str:
        return html.split('<p class="flash">', 1)[1].split("</p>", 1)[0]

    assert message(unknown) == message(locked)


@pytest.fixture()
def short_sessions(settings, engine, redis_conn):
    """An app whose operators go idle after 2 seconds."""
    app = create_app(settings.with_overrides(admin_idle_seconds=2))
    app.testing = True
    return app


def test_an_idle_session_expires_and_background_polling_does_not_keep_it(
    short_sessions, make_operator
):
    make_operator()
    client = short_sessions.test_client()
    sign_in(client)
    time.sleep(1.2)
    assert client.get("/admin/inbox/", headers={shell.POLL_HEADER: "1"}).status_code == 200
    time.sleep(1.2)  # 2.4 s since the operator last did anything
    expired = client.get("/admin/inbox/")
    assert expired.status_code == 302
    assert expired.headers["Location"] == "/admin/login?next=/admin/inbox/"
    assert "session expired" in client.get("/admin/login").get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_an_operator_at_work_stays_signed_in(short_sessions, make_operator):
    make_operator()
    client = short_sessions.test_client()
    sign_in(client)
    for _ in range(3):
        time.sleep(1.2)
        assert client.get("/admin/inbox/").status_code == 200


def test_a_session_ends_after_the_maximum_however_busy(
    settings, engine, redis_conn, make_operator, monkeypatch
):
    monkeypatch.setattr(shell, "MAX_SESSION", dt.timedelta(seconds=1))
    app = create_app(settings)
    make_operator()
    client = app.test_client()
    sign_in(client)
    assert client.get("/admin/").status_code == 200
    time.sleep(1.2)
    assert client.get("/admin/").status_code == 302


def test_a_new_password_or_a_disabled_account_ends_open_sessions(client, engine, make_operator):
    make_operator()
    sign_in(client)
    assert client.get("/admin/").status_code == 200
    with session_scope(engine) as session:
        accounts.set_password(session, "priya", "another long passphrase")
    assert client.get("/admin/").status_code == 302
    assert sign_in(client, password="another long passphrase").status_code == 302
    with session_scope(engine) as session:
        accounts.set_active(session, "priya", False)
    assert client.get("/admin/").status_code == 302


def test_admin_pages_are_never_cached_framed_or_scripted_from_elsewhere(client):
    response = client.get("/admin/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("bijli_session=")]
    assert "HttpOnly" in cookie and "Path=/;" in cookie
    assert "SameSite=Lax" in cookie


def test_webhooks_keep_no_csrf_and_no_admin_headers(client):
    # Twilio signs its posts; a CSRF token is not asked of it (the signature check answers).
    response = client.post("/twilio/messages", data={"Body": "hi"})
    assert response.status_code == 403
    assert "X-Frame-Options" not in response.headers


def test_a_real_twilio_account_needs_a_real_secret_key(settings, engine, redis_conn):
    real = settings.with_overrides(
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token="a-real-auth-token",
        public_base_url="https://bijli.example.in",
    )
    with pytest.raises(shell.SecretKeyMissing, match="BIJLI_SECRET_KEY"):
        create_app(real)
    with pytest.raises(shell.SecretKeyMissing):
        create_app(real.with_overrides(secret_key="too short"))
    create_app(real.with_overrides(secret_key="k" * 48))
