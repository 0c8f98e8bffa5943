"""The login in a real browser (headless Chromium): an idle session ends, and says so."""

from __future__ import annotations

import re
import time

import pytest

from bot import create_app
from tests.browser import chromium_page
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
