"""The field flow end to end: a meter reader verifies an account and records a visit with a
changed mobile on WhatsApp (the signed webhook, the worker, Rasa, the action server); the
officer sees it on /admin/verification in headless Chromium and approves it; the consumer is
told on the old and the new number, and the registered mobile has moved. The visit's questions
come with WhatsApp buttons (quick-reply Content templates): one reader types the digits, another
taps the buttons.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from bot import store
from tests.browser import chromium_page
from tests.e2e.conftest import Stack, wait_for
from tests.processes import bijli

pytestmark = [pytest.mark.rasa, pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

READER = "+919700000601"
CONSUMER_OLD = "+919700000621"
CONSUMER_NEW = "+919700000622"
AREA = "E2E Nagar"
ACCOUNT, OLD_NO = "2399000601", "9906011"
PASSWORD = "a long officer passphrase"


def _replies(stack: Stack) -> list[str]:
    return [m["body"] for m in stack.sent(f"whatsapp:{READER}")]


def _say(stack: Stack, text: str, expect: str) -> str:
    """Send as the reader; wait for a reply containing ``expect``; return all new replies."""
    before = len(_replies(stack))
    assert stack.post_message(text, READER).status_code == 200
    wait_for(lambda: any(expect in r for r in _replies(stack)[before:]), timeout=120)
    return "\n".join(_replies(stack)[before:])


def _mobile(stack: Stack) -> str | None:
    with store.session_scope(stack.engine) as session:
        consumer = store.consumer_by_account(session, ACCOUNT)
        return consumer.mobile if consumer else None


def test_a_reader_records_a_changed_mobile_and_the_officer_approves_it(stack: Stack) -> None:
    with store.session_scope(stack.engine) as session:
        session.add(
            store.Consumer(
                discom="KESCO", new_account_no=ACCOUNT, old_account_no=OLD_NO,
                name="Kamla Devi", mobile=CONSUMER_OLD, category="domestic",
                meter_type="postpaid", area=AREA, language="hi",
            )
        )  # fmt: skip
        session.add(store.Staff(mobile=READER, name="E2E Reader", role="meter_reader", area=AREA))
    result = subprocess.run(
        [*bijli("operator", "add", "verma", "--role", "officer", "--name", "Verma")]
        + ["--password-stdin"],
        input=PASSWORD + "\n",
        env={**os.environ, "DATABASE_URL": stack.cfg.database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]

    card = _say(stack, f"verify {OLD_NO}", "Kamla Devi")
    assert ACCOUNT in card and "+91******0621" in card and CONSUMER_OLD not in card
    asked = _say(stack, "visit darj karo", "naya account number")
    assert ACCOUNT in asked
    question = [m for m in stack.sent(f"whatsapp:{READER}") if ACCOUNT in m["body"]][-1]
    assert [b["title"] for b in question["buttons"]] == ["Haan", "Nahi"]  # buttons; typing works
    _say(stack, "1", "+91******0621")
    _say(stack, "2", "10")
    done = _say(stack, "97000 00622", "adhikari")
    assert "+91******0622" in done

    with chromium_page() as page:
        page.goto(f"{stack.web}/admin/verification/")
        assert "/admin/login" in page.url
        page.fill("#username", "verma")
        page.fill("#password", PASSWORD)
        page.click("#sign-in")
        page.wait_for_url(re.compile(r"/admin/verification/$"))
        bar = page.locator(f"#coverage-chart g.bar[data-area='{AREA}']")
        assert bar.get_attribute("data-percent") == "100"
        assert page.locator(f"#areas tr[data-area='{AREA}'] td.pending").inner_text() == "1"
        row = page.locator("tr.change", has_text=ACCOUNT)
        assert CONSUMER_NEW in row.inner_text()  # an officer sees it in full
        row.locator("button.approve").click()
        page.wait_for_selector("p.flash >> text=approved")
        assert row.count() == 0  # decided: no longer waiting

    assert _mobile(stack) == CONSUMER_NEW
    old = wait_for(lambda: stack.sent(CONSUMER_OLD), timeout=60)
    new = wait_for(lambda: stack.sent(CONSUMER_NEW), timeout=60)
    assert ACCOUNT in old[0]["body"] and "+91******0622" in old[0]["body"]
    assert ACCOUNT in new[0]["body"]


TAPPER = "+919700001401"
TAPPED_OLD = "+919700001421"
TAPPED_NEW = "+919700001422"
TAPPED_ACCOUNT, TAPPED_OLD_NO = "2399001401", "9914011"


def _sent_to(stack: Stack, mobile: str) -> list[dict]:
    return stack.sent(f"whatsapp:{mobile}")


def _tap(stack: Stack, mobile: str, title: str, expect: str) -> dict:
    """Tap the button ``title`` of the reader's latest message; wait for a reply holding
    ``expect``, and return it."""
    messages = _sent_to(stack, mobile)
    (button,) = [b for b in messages[-1]["buttons"] or [] if b["title"] == title]
    extra = {"ButtonText": title, "ButtonPayload": button["id"]}
    assert stack.post_message(title, mobile, extra=extra).status_code == 200
    return wait_for(
        lambda: next(
            (m for m in _sent_to(stack, mobile)[len(messages) :] if expect in m["body"]), None
        ),
        timeout=120,
    )


def test_a_reader_records_a_visit_by_tapping_buttons(stack: Stack) -> None:
    with store.session_scope(stack.engine) as session:
        session.add(
            store.Consumer(
                discom="KESCO", new_account_no=TAPPED_ACCOUNT, old_account_no=TAPPED_OLD_NO,
                name="Shanti Devi", mobile=TAPPED_OLD, category="domestic",
                meter_type="postpaid", area="E2E Tap Nagar", language="hi",
            )
        )  # fmt: skip
        session.add(
            store.Staff(mobile=TAPPER, name="E2E Tapper", role="meter_reader", area="E2E Tap Nagar")
        )
    before = len(_sent_to(stack, TAPPER))
    assert stack.post_message(f"verify {TAPPED_OLD_NO}", TAPPER).status_code == 200
    wait_for(lambda: any("Shanti Devi" in m["body"] for m in _sent_to(stack, TAPPER)[before:]), 120)
    assert stack.post_message("visit darj karo", TAPPER).status_code == 200
    asked = wait_for(
        lambda: next((m for m in _sent_to(stack, TAPPER) if m["buttons"]), None), timeout=120
    )
    assert TAPPED_ACCOUNT in asked["body"] and asked["content_sid"].startswith("HX")
    assert [b["title"] for b in asked["buttons"]] == ["Haan", "Nahi"]
    assert "1. Haan" not in asked["body"], "the options are buttons, not numbered lines"

    mobile_question = _tap(stack, TAPPER, "Haan", "+91******1421")
    assert [b["title"] for b in mobile_question["buttons"]] == [
        "Haan, sahi hai",
        "Nahi, badalna hai",
    ]
    _tap(stack, TAPPER, "Nahi, badalna hai", "10")
    assert stack.post_message("97000 01422", TAPPER).status_code == 200
    done = wait_for(
        lambda: next((m for m in _sent_to(stack, TAPPER) if "adhikari" in m["body"]), None), 120
    )
    assert "+91******1422" in done["body"]

    with store.session_scope(stack.engine) as session:
        (visit,) = session.query(store.StaffVisit).filter_by(new_account_no=TAPPED_ACCOUNT).all()
        assert (visit.informed, visit.mobile_confirmed) == (True, False)
        (change,) = session.query(store.MobileChange).filter_by(new_account_no=TAPPED_ACCOUNT).all()
        assert (change.old_mobile, change.new_mobile, change.status) == (
            TAPPED_OLD,
            TAPPED_NEW,
            "pending",
        )
        taps = [
            (m.body, m.button_payload)
            for m in session.query(store.InboundMessage).filter_by(from_number=TAPPER)
            if m.button_payload
        ]
    assert taps == [("Haan", "1"), ("Nahi, badalna hai", "2")]
