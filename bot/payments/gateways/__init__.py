"""Payment gateways behind one small interface: a module per gateway, found by its URL name.

A gateway module verifies a webhook's raw body and turns it into :class:`Captured` payments;
:mod:`bot.payments.ledger` decides what each means for an account. Adding PayU, BillDesk or
Paytm is one module with a ``parse_webhook`` and a line in :data:`GATEWAYS`.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.settings import Settings

#: Gateway name in ``/payments/<name>/webhook`` → the module that speaks its protocol.
GATEWAYS = {"razorpay": "bot.payments.gateways.razorpay"}


class BadWebhookSignature(ValueError):
    """The webhook's signature does not match its body: not from the gateway, or altered."""


class MalformedWebhook(ValueError):
    """The body is signed but is not the JSON the gateway's protocol describes."""


@dataclass(frozen=True)
class Captured:
    """One captured payment as a gateway (or a bank statement) reports it."""

    source: str
    external_id: str  # the gateway's payment id; ``utr:<UTR>`` for a bank statement line
    amount_paise: int
    currency: str
    intent_ref: str | None  # the UPI tr we put in the QR, as reported: untrusted
    utr: str | None
    paid_at: dt.datetime  # naive UTC
    detail: dict[str, Any] = field(default_factory=dict)


class Gateway(Protocol):
    """What a gateway module provides."""

    NAME: str

    def parse_webhook(
        self, cfg: Settings, raw_body: bytes, headers: Mapping[str, Any]
    ) -> list[Captured]:
        """Verify the body's signature and return the captured payments it reports."""
        ...


def gateway(name: str) -> Gateway | None:
    """The gateway module serving ``name``, or None."""
    module = GATEWAYS.get(name)
    return importlib.import_module(module) if module else None


__all__ = ["GATEWAYS", "BadWebhookSignature", "Captured", "Gateway", "MalformedWebhook", "gateway"]
