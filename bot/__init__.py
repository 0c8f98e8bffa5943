"""Bijli Sahayak: the shared core (settings, store, connections, value rules) and its packages.

``create_app()`` builds the web process. Flask is imported only here, inside the factory, and in
the blueprint modules it registers, so the worker, the CLI, the Rasa server and the action server
never load it (``make lint`` checks this with import-linter, and a test checks ``sys.modules``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot import settings as settings_mod

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: settings_mod.Settings | dict[str, Any] | None = None) -> Flask:
    """Build the Flask app (ConfigurationError if unsafe); ``config``: Settings or overrides."""
    from flask import Flask

    from bot import logfmt, web

    logfmt.configure()
    # No app-wide static folder: each blueprint that has files serves its own.
    app = Flask(__name__, static_folder=None)
    if isinstance(config, settings_mod.Settings):
        cfg = config
    else:
        cfg = settings_mod.load()
        if config:
            cfg = cfg.with_overrides(**config)
    # A half-set Twilio configuration would let anyone sign webhooks: refuse to serve.
    cfg.check()
    web.init_app(app, cfg)

    from bot.admin import shell as admin
    from bot.gateway import health, webhooks
    from bot.inbox import pages as inbox

    app.register_blueprint(health.bp)
    app.register_blueprint(webhooks.bp)
    # The operator pages: the shell (login, CSRF, the /admin guard), then each feature's pages.
    admin.init_app(app, cfg)
    inbox.init_app(app, cfg)
    admin.add_section(app, "Inbox", "inbox.index")
    from bot.staff import pages as verification_pages

    verification_pages.init_app(app, cfg)
    admin.add_section(app, "Verification", "verification.index")
    from bot.admin import queues

    queues.init_app(app, cfg)
    from notifier.web import pages as campaign_pages

    campaign_pages.init_app(app, cfg)
    admin.add_section(app, "Campaigns", "campaigns.index")
    admin.add_section(app, "Queues", "rq_dashboard.queues_overview", queues.VIEW_ROLES)

    from bot.payments import pages as payment_pages
    from bot.payments import webhooks as payment_webhooks

    app.register_blueprint(payment_pages.bp)
    app.register_blueprint(payment_webhooks.bp)
    if cfg.twilio_is_dev:
        # Development only: the console signs messages as any sender would.
        from bot.dev import console

        app.register_blueprint(console.bp)
    return app
