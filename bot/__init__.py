"""Bijli Sahayak's web gateway: ``create_app`` builds the Flask application."""

from __future__ import annotations

from typing import Any

from flask import Flask

from bot import settings as settings_mod
from bot.services import Services


def create_app(config: settings_mod.Settings | dict[str, Any] | None = None) -> Flask:
    """Build the Flask app; ``config`` may be Settings or overrides for the loaded ones."""
    from bot import logfmt

    logfmt.configure()
    app = Flask(__name__)
    if isinstance(config, settings_mod.Settings):
        cfg = config
    else:
        cfg = settings_mod.load()
        if config:
            cfg = cfg.with_overrides(**config)
    app.extensions["bijli"] = Services(cfg)

    from bot import health

    app.register_blueprint(health.bp)

    from bot import console, gateway

    app.register_blueprint(gateway.bp)
    app.register_blueprint(console.bp)
    return app
