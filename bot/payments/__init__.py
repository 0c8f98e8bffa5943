"""Payments: pay pages and QR codes, gateway webhooks, receipts, reconciliation, billing state.

The action server never imports this package: it makes pay links through :mod:`bot.paylinks`
(core), and everything here reaches the bot's conversation only by RQ job dotted names.
"""
