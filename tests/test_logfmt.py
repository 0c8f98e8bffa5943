"""One-line log events, and third-party loggers that would log every request at INFO."""

from __future__ import annotations

import logging

import pytest

from bot import logfmt


def test_kv_quotes_values_with_spaces():
    assert (
        logfmt.kv("sent", to="+91…3210", note="two words")
        == 'event=sent to=+91…3210 note="two words"'
    )


@pytest.fixture()
def info_everywhere():
    root, twilio = logging.getLogger(), logging.getLogger("twilio.http_client")
    saved = root.level, twilio.level
    root.setLevel(logging.INFO)
    twilio.setLevel(logging.NOTSET)
    yield twilio
    root.setLevel(saved[0])
    twilio.setLevel(saved[1])


def test_the_twilio_packages_request_lines_are_held_back(info_everywhere):
    # Each send logged eleven INFO lines, one per request header, in the worker's log.
    assert info_everywhere.isEnabledFor(logging.INFO)
    logfmt.configure()
    assert not info_everywhere.isEnabledFor(logging.INFO)
    assert info_everywhere.isEnabledFor(logging.WARNING)
