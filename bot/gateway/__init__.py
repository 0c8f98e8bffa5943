"""The Twilio gateway: webhooks in, per-sender ordering, the inbound job, dead letters, health.

Flask is imported only by the blueprint modules (:mod:`~bot.gateway.webhooks`,
:mod:`~bot.gateway.health`); the worker reaches the job by its dotted name.
"""
