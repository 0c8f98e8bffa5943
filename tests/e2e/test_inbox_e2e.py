"""A human who really answers, end to end: real Rasa, action server, workers, web, a real browser.

A consumer asks for a person on WhatsApp; an agent signs in to /admin in headless Chromium and
answers from the page; the consumer's next message reaches the agent and not the bot; the agent
closes; the bot answers again. Then a held conversation left idle goes back to the bot by itself,
with a message saying so, and repeated wrong passwords lock an account in the browser too.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.actions.formatting import format_moment
from bot.clock import to_ist
from bot.inbox import texts
from bot.store import Handoff, InboundMessage, OutboundMessage, session_scope
from tests.browser import chromium_page
from tests.e2e.conftest import Stack, wait_for
from tests.processes import bijli

pytestmark = [pytest.mark.rasa, pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

PASSWORD = "a long agent passphrase"


@pytest.fixture(scope="module")
def agent_account(stack: Stack) -> str:
    """Priya, an agent, made with the real ``bijli operator add`` (password on stdin)."""
    result = subprocess.run(
        [*bijli("operator", "add", "priya", "--role", "agent", "--name", "Priya")]
        + ["--password-stdin"],
        input=PASSWORD + "\n",
        env={**os.environ, "DATABASE_URL": stack.cfg.database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return "priya"


@pytest.fixture()
def page(tmp_path: Path) -> Iterator[Any]:
    with chromium_page() as browser_page:
        yield browser_page
        browser_page.screenshot(path=str(tmp_path / "last-page.png"), full_page=True)


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#sign-in")


def _handoff(stack: Stack, mobile: str) -> Handoff | None:
    with session_scope(stack.engine) as session:
        return (
            session.execute(
                select(Handoff).where(Handoff.mobile == mobile).order_by(Handoff.id.desc())
            )
            .scalars()
            .first()
        )


def _bodies(stack: Stack, mobile: str) -> list[str]:
    return [m["body"] for m in stack.sent(f"whatsapp:{mobile}")]


def _answered_by_bot(stack: Stack, body: str, mobile: str) -> list[OutboundMessage] | None:
    """The bot's replies to the consumer's message ``body``, once that message is processed."""
    with session_scope(stack.engine) as session:
        row = session.execute(
            select(InboundMessage).where(
                InboundMessage.from_number == mobile, InboundMessage.body == body
            )
        ).scalar_one_or_none()
        if row is None or row.processed_at is None:
            return None
        return list(
            session.execute(
                select(OutboundMessage).where(
                    OutboundMessage.idempotency_key.like(f"reply:{row.id}:%")
                )
            ).scalars()
        )


def ask_for_a_person(stack: Stack, mobile: str) -> Handoff:
    assert stack.post_message("kisi insaan se baat karao", mobile).status_code == 200
    handoff = wait_for(lambda: _handoff(stack, mobile), timeout=120)
    [promise] = wait_for(lambda: _bodies(stack, mobile), timeout=60)
    # Who answers and by when: the KESCO helpdesk, by the time stored for the inbox. The office
    # is open all day here, so that is today, unless the promise falls after midnight (IST).
    assert "KESCO helpdesk" in promise and "1912" in promise
    promised = to_ist(handoff.promised_by)
    if promised.date() == to_ist(handoff.opened_at).date():
        assert f"aaj {promised:%H:%M} tak" in promise
        assert "Daftar abhi khula hai" in promise
    else:
        assert f"{format_moment(promised)} tak" in promise and "aaj" not in promise
    return handoff


def answer_from_the_page(page: Any, stack: Stack, handoff_id: int, mobile: str, text: str) -> None:
    page.goto(f"{stack.web}/admin/inbox/")
    page.click(f"tr.handoff[data-id='{handoff_id}'] a.open")
    page.wait_for_selector("li.msg.in >> text=kisi insaan se baat karao")
    page.fill("#body", text)
    page.click("#send")
    page.wait_for_selector("#state.held")
    wait_for(lambda: f"Priya (KESCO helpdesk): {text}" in _bodies(stack, mobile), timeout=60)


def test_a_consumer_asks_for_a_person_and_an_agent_answers_from_the_page(
    stack: Stack, agent_account: str, page: Any, tmp_path: Path
) -> None:
    consumer = "+919700000301"  # the e2e stack is shared: a mobile no other test uses
    handoff = ask_for_a_person(stack, consumer)

    # Signing in is required: the inbox sends the browser to the login page, then back.
    page.goto(f"{stack.web}/admin/inbox/")
    assert "/admin/login" in page.url
    sign_in(page, agent_account)
    page.wait_for_url(re.compile(r"/admin/inbox/$"))
    row = page.locator(f"tr.handoff[data-id='{handoff.id}']")
    assert "+91******0301" in row.inner_text(), "an agent sees the mobile masked"
    assert consumer not in page.content()

    answer_from_the_page(page, stack, handoff.id, consumer, "Namaste, main Priya. Batayiye?")
    page.wait_for_selector("li.msg.out.agent >> text=Namaste, main Priya. Batayiye?")

    # A form posted without its CSRF token (from another site, say) changes nothing.
    forged = page.request.post(f"{stack.web}/admin/inbox/{handoff.id}/close")
    assert forged.status == 400
    assert _handoff(stack, consumer).state == "held"

    # The consumer's next message goes to the agent's page, and the bot says nothing.
    sent_before = len(_bodies(stack, consumer))
    stack.post_message("mera bill galat aaya hai, 2000 zyada", consumer)
    page.wait_for_selector("li.msg.in >> text=mera bill galat aaya hai, 2000 zyada", timeout=30_000)
    assert wait_for(
        lambda: _answered_by_bot(stack, "mera bill galat aaya hai, 2000 zyada", consumer) == []
    )
    assert len(_bodies(stack, consumer)) == sent_before
    page.screenshot(path=str(tmp_path / "inbox-conversation.png"), full_page=True)

    # The agent closes: the consumer is told, and the bot answers again.
    page.click("#close")
    page.wait_for_url(re.compile(r"/admin/inbox/$"))
    closed = texts.text("closed", "hinglish", agent="Priya")
    wait_for(lambda: closed in _bodies(stack, consumer), timeout=60)
    assert _handoff(stack, consumer).close_reason == "agent"
    stack.post_message("mera bill kitna hai", consumer)
    replies = wait_for(
        lambda: _answered_by_bot(stack, "mera bill kitna hai", consumer), timeout=120
    )
    assert replies and all(r.body for r in replies)


def test_a_held_conversation_left_idle_goes_back_to_the_bot_with_a_message(
    stack: Stack, agent_account: str, page: Any
) -> None:
    consumer = "+919700000302"  # the e2e stack is shared: a mobile no other test uses
    handoff = ask_for_a_person(stack, consumer)
    page.goto(f"{stack.web}/admin/login")
    sign_in(page, agent_account)
    page.wait_for_url(re.compile(r"/admin/$"))
    answer_from_the_page(page, stack, handoff.id, consumer, "Main dekh rahi hoon")

    # Nobody writes for 30 seconds: the scheduled job ends the hold and tells the consumer.
    timed_out = texts.text("timeout", "hinglish", agent="Priya", minutes=1)
    wait_for(lambda: timed_out in _bodies(stack, consumer), timeout=120, interval=1)
    assert _handoff(stack, consumer).close_reason == "timeout"
    page.wait_for_selector("#state.closed", timeout=15_000)  # the open page notices by itself

    stack.post_message("mera bill kitna hai", consumer)
    replies = wait_for(
        lambda: _answered_by_bot(stack, "mera bill kitna hai", consumer), timeout=120
    )
    assert replies, "the bot answers again"


def test_repeated_wrong_passwords_lock_the_account_in_the_browser(
    stack: Stack, agent_account: str, page: Any
) -> None:
    result = subprocess.run(
        [*bijli("operator", "add", "ravi", "--name", "Ravi", "--password-stdin")],
        input=PASSWORD + "\n",
        env={**os.environ, "DATABASE_URL": stack.cfg.database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    page.goto(f"{stack.web}/admin/login")
    for attempt in range(5):
        sign_in(page, "ravi", f"wrong password number {attempt}")
        page.wait_for_selector("p.flash >> text=Sign-in failed")
    sign_in(page, "ravi")  # the right password, too late
    page.wait_for_selector("p.flash >> text=locked for 15 minutes")
    assert "/admin/login" in page.url
    page.goto(f"{stack.web}/admin/inbox/")
    assert "/admin/login" in page.url, "still signed out"
