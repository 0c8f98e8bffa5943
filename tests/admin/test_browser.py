"""The login in a real browser (headless Chromium): expiry, lockout, CSRF refusal, the queues."""

from __future__ import annotations

import os
import re
import time

import pytest
from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry

from bot import create_app
from bot.admin import accounts
from tests.browser import artifact_path, chromium_page
from tests.gateway_stack import ServerThread
from tests.operators import PASSWORD

pytestmark = pytest.mark.browser


def test_an_idle_session_sends_the_browser_back_to_the_login_page(
    settings, engine, redis_conn, make_operator
):
    make_operator()
    app = create_app(settings.with_overrides(admin_idle_seconds=2))
    with ServerThread(app) as server, chromium_page() as page:
        page.goto(f"{server.url}/admin/inbox/")
        assert "/admin/login" in page.url, "signing in is required"
        page.fill("#username", "priya")
        page.fill("#password", PASSWORD)
        page.click("#sign-in")
        page.wait_for_url(re.compile(r"/admin/inbox/$"))
        page.click("nav >> text=Inbox")  # the operator at work: still signed in
        page.wait_for_url(re.compile(r"/admin/inbox/$"))
        time.sleep(2.5)
        page.click("nav >> text=Inbox")
        page.wait_for_selector("p.flash >> text=Your session expired")
        assert re.search(r"/admin/login\?next=/admin/inbox/$", page.url)


def _sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(re.compile(r"/admin/$"))


def test_sign_in_lockout_and_a_forged_form_refused(settings, engine, redis_conn, make_operator):
    make_operator("meera", "admin", "Meera")
    make_operator("verma", "officer", "Verma")
    app = create_app(settings)
    with ServerThread(app) as server, chromium_page() as page:
        # A wrong password five times locks the account: the right one is refused too.
        page.goto(f"{server.url}/admin/login")
        for n in range(accounts.MAX_FAILED_LOGINS):
            page.fill("#username", "verma")
            page.fill("#password", f"wrong password {n}")
            page.click("#sign-in")
            page.wait_for_selector("p.flash >> text=Sign-in failed")
        page.fill("#username", "verma")
        page.fill("#password", PASSWORD)
        page.click("#sign-in")
        page.wait_for_selector("p.flash >> text=locked for 15 minutes")
        assert "/admin/login" in page.url

        _sign_in(page, server.url, "meera")
        assert page.inner_text("#operator") == "Meera (admin)"
        # Another site posts a form that would sign the operator out: it has no token (and
        # the browser sends no Lax cookie with it), so it is refused; the operator stays in.
        attacker = "http://attacker.example/"
        page.route(
            attacker,
            lambda route: route.fulfill(
                content_type="text/html",
                body=f'<form id="f" method="post" action="{server.url}/admin/logout"></form>'
                "<script>document.getElementById('f').submit()</script>",
            ),
        )
        page.goto(attacker)
        page.wait_for_selector("h1 >> text=Form refused")
        page.goto(f"{server.url}/admin/")
        assert page.inner_text("#operator") == "Meera (admin)", "still signed in"
        # The real button, with its token stripped out in the page, is refused the same way.
        page.evaluate("document.querySelector('form.who input[name=csrf_token]').value = 'x'")
        page.click("#logout")
        page.wait_for_selector("h1 >> text=Form refused")
        page.goto(f"{server.url}/admin/")
        assert page.inner_text("#operator") == "Meera (admin)"


def test_the_queue_dashboard_runs_its_scripts_and_requeues_with_its_token(
    settings, engine, redis_conn, make_operator
):
    make_operator("meera", "admin", "Meera")
    queue = Queue("notifications", connection=redis_conn)
    # A job that fails in a real worker, described with HTML an attacker might smuggle in.
    queue.enqueue(
        os.path.join, 1, 2, job_id="j-1", description="<img src=x onerror=window.pwned=1>"
    )
    SimpleWorker([queue], connection=redis_conn).work(burst=True)
    failed = FailedJobRegistry("notifications", connection=redis_conn)
    assert failed.get_job_ids() == ["j-1"]
    app = create_app(settings)
    with ServerThread(app) as server, chromium_page() as page:
        blocked: list[str] = []
        page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else 0)
        _sign_in(page, server.url, "meera")
        page.click("nav >> text=Queues")
        page.wait_for_selector("td >> text=notifications")  # drawn by its scripts from JSON
        page.goto(f"{server.url}/admin/rq/0/view/jobs/notifications/failed/8/asc/1")
        row = page.wait_for_selector("tr[data-job-id='j-1']")
        assert blocked == [], "none of the dashboard's own scripts was blocked"
        page.screenshot(path=artifact_path("rq-dashboard-failed.png"), full_page=True)
        # The job page shows the description as HTML: the browser may draw the image, but
        # the page's policy stops its handler.
        page.goto(f"{server.url}/admin/rq/0/view/job/j-1")
        page.wait_for_selector(".description-scroll img")
        page.wait_for_timeout(300)
        assert page.evaluate("window.pwned") is None
        assert any("inline event handler" in m or "script-src" in m for m in blocked), blocked
        # Requeue from the list, with the token the dashboard's script sends from its cookie.
        page.goto(f"{server.url}/admin/rq/0/view/jobs/notifications/failed/8/asc/1")
        row = page.wait_for_selector("tr[data-job-id='j-1']")
        row.query_selector("[data-role=requeue-job-btn]").click()
        # RQ's requeue takes the job off the failed registry first and queues it in a second
        # step: wait for the second.
        deadline = time.monotonic() + 10
        while queue.job_ids != ["j-1"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert queue.job_ids == ["j-1"], "the dashboard's own requeue button went through"
        assert failed.get_job_ids() == []
