"""The project's domain (bot/intents), loaded once per test process and shared by the tests."""

from __future__ import annotations

import warnings
from functools import lru_cache

from rasa.shared.core.domain import Domain

from bot.settings import ROOT


@lru_cache(maxsize=1)
def project_domain() -> Domain:
    """The domain as Rasa loads it. Shared: a test must not change it."""
    with warnings.catch_warnings():
        # Rasa warns on every domain load that slot auto-fill is gone (it lists it as expected).
        warnings.filterwarnings("ignore", message="Slot auto-fill has been removed")
        return Domain.load(str(ROOT / "bot" / "intents"))
