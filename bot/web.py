"""What the web process's blueprints share: the app's settings, stored by ``create_app()``."""

from __future__ import annotations

from flask import Flask, current_app

from bot.settings import Settings

#: Key under ``app.extensions`` that holds the app's :class:`~bot.settings.Settings`.
EXTENSION = "bijli"


def init_app(app: Flask, cfg: Settings) -> None:
    """Attach ``cfg`` to ``app``."""
    app.extensions[EXTENSION] = cfg


def app_settings() -> Settings:
    """The Settings of the Flask app handling the current request."""
    cfg: Settings = current_app.extensions[EXTENSION]
    return cfg
