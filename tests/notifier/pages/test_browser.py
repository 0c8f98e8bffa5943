"""The campaign pages in headless Chromium: run one from the page, watch its funnel, buttons."""

from __future__ import annotations

import re

import pytest

from bot import store
from notifier import campaigns, states
from tests.browser import artifact_path, chromium_page
from tests.gateway_stack import ServerThread
from tests.notifier.conftest import add_consumers
from tests.notifier.pages.conftest import VALID_UNTIL, make_campaign, run_one_task, settle
from tests.operators import PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(page, base: str) -> None:
    page.goto(f"{base}/admin/campaigns/")
    page.fill("#username", "officer")
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(re.compile(r"/admin/campaigns/$"))


def test_a_campaign_runs_from_the_page(app, engine, redis_conn, make_operator):
    make_operator("officer", "officer", "Officer")
    add_consumers(engine, 6)
    with store.session_scope(engine) as session:
        store.set_opt_out(session, "+919700000001", "sms", True)
    with ServerThread(app) as server, chromium_page() as page:
        _sign_in(page, server.url)
        page.click("#new-campaign")
        page.select_option("#kind", "new-account-number")
        page.fill("#name", "Kanpur new numbers")
        page.fill("#valid_until", VALID_UNTIL)
        page.click("#dry-run")
        page.wait_for_selector("#task-waiting")
        run_one_task(redis_conn)  # the worker
        page.reload()
        assert "5 consumers would get a message" in page.inner_text("#preview h2")
        assert page.input_value("#name") == "Kanpur new numbers", "the form keeps its values"
        page.screenshot(path=artifact_path("campaign-dry-run.png"), full_page=True)
        page.click("#create-draft")
        page.wait_for_selector("#task-waiting")
        run_one_task(redis_conn)
        page.reload()
        page.wait_for_url(re.compile(r"/admin/campaigns/\d+$"))
        assert page.inner_text("#campaign-state") == "draft"
        page.click("#start")
        page.wait_for_selector("p.flash >> text=Start requested")
        run_one_task(redis_conn)
        # No reload: the page's own poll (every 5 s) sees the new state and redraws.
        page.wait_for_selector("#campaign-state >> text=running", timeout=12_000)
        assert page.locator("#pause").is_visible()
    [status] = campaigns.list_campaigns(engine)
    assert (status.state, status.selected, status.queued) == ("running", 5, 5)


def test_a_campaign_page_with_real_figures_and_a_refused_forged_button(
    app, engine, redis_conn, make_operator
):
    make_operator("officer", "officer", "Officer")
    cid = make_campaign(engine, count=14)  # two still waiting
    settle(
        engine,
        cid,
        [("read", None)] * 4
        + [("delivered", None)] * 3
        + [("sent", None)] * 2
        + [("undelivered", 30003)] * 2
        + [("failed", 63016)],
    )
    with ServerThread(app) as server, chromium_page() as page:
        blocked: list[str] = []
        page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else 0)
        _sign_in(page, server.url)
        page.click(f"a[href='/admin/campaigns/{cid}']")
        page.wait_for_selector("#funnel")
        widths = {
            stage: page.locator(f"#funnel g.{stage} rect").bounding_box()["width"]
            for stage in ("selected", "sent", "delivered", "read", "failed")
        }
        assert widths["selected"] > widths["sent"] > widths["delivered"] > widths["read"] > 0
        assert widths["failed"] == pytest.approx(widths["selected"] * 3 / 14, rel=0.05)
        assert page.locator("#progress").get_attribute("value") == "85.7"
        assert page.inner_text("#failures tbody tr:first-child td:first-child") == "30003"
        page.screenshot(path=artifact_path("campaign-page.png"), full_page=True)
        assert blocked == [], "the page runs under the admin pages' script policy"

        # The Cancel button with its token tampered with in the page: refused, nothing changes.
        page.evaluate(
            "document.querySelector('#cancel').form.querySelector('[name=csrf_token]').value='x'"
        )
        page.click("#cancel")
        page.wait_for_selector("h1 >> text=Form refused")
        assert campaigns.status(engine, cid).state == states.RUNNING
        # The real one works.
        page.goto(f"{server.url}/admin/campaigns/{cid}")
        page.click("#pause")
        page.wait_for_selector("p.flash >> text=Paused")
        assert page.inner_text("#campaign-state") == "paused"
    assert campaigns.status(engine, cid).state == states.PAUSED
