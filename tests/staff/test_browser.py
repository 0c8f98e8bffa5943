"""The officer page in headless Chromium: the coverage chart, and deciding a change by a click."""

from __future__ import annotations

import re

import pytest

from bot import create_app, store
from tests.browser import chromium_page
from tests.gateway_stack import ServerThread
from tests.operators import PASSWORD
from tests.staff.conftest import AREA, OLD_MOBILE

pytestmark = pytest.mark.browser


def test_an_officer_sees_the_chart_and_rejects_a_change(
    gw_settings, engine, redis_conn, make_operator, visited
) -> None:
    make_operator("verma", "officer", "Verma")
    with ServerThread(create_app(gw_settings)) as server, chromium_page() as page:
        page.goto(f"{server.url}/admin/verification/")
        page.fill("#username", "verma")
        page.fill("#password", PASSWORD)
        page.click("#sign-in")
        page.wait_for_url(re.compile(r"/admin/verification/$"))
        bars = page.locator("#coverage-chart g.bar")
        assert bars.count() == 2  # Govind Nagar and Kidwai Nagar
        informed = page.locator(f"#coverage-chart g.bar[data-area='{AREA}'] rect.informed")
        assert informed.bounding_box()["width"] > 0
        other = page.locator("#coverage-chart g.bar[data-area='Govind Nagar'] rect.informed")
        assert other.get_attribute("width") == "0"
        page.locator(f"#areas a >> text={AREA}").click()
        page.wait_for_selector("#reader-days >> text=Suresh Yadav")
        page.locator(f"tr.change[data-id='{visited}'] button.reject").click()
        page.wait_for_selector("p.flash >> text=rejected")
        assert page.locator("tr.change").count() == 0
    with store.session_scope(engine) as session:
        assert store.consumer_by_account(session, "1234567890").mobile == OLD_MOBILE
