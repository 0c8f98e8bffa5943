"""Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by Playwright.

``playwright install`` is never run: Playwright drives the system Chromium. A test that needs a
browser asks for :func:`chromium_page`; it is skipped, with the reason, when either is missing,
and fails instead where ``BIJLI_REQUIRE_BROWSER`` is set (CI sets it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_missing() -> str | None:
    """Why no browser test can run here, or None."""
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A fresh page in its own browser context (its own cookies)."""
    reason = chromium_missing()
    if reason and os.environ.get("BIJLI_REQUIRE_BROWSER"):
        # CI (.ci/run) sets it: there a skipped browser test would pass for one that never ran.
        pytest.fail(f"the browser tests must run here: {reason}")
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser.new_context().new_page()
        finally:
            browser.close()


def artifact_path(name: str) -> str:
    """Where a browser test keeps a screenshot: ``$BIJLI_SCREENSHOTS`` or ``var/test-artifacts/``.

    ``var/`` is git-ignored; CI keeps the folder as the run's artifacts.
    """
    from bot.settings import ROOT

    folder = os.environ.get("BIJLI_SCREENSHOTS") or os.path.join(ROOT, "var", "test-artifacts")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name)
