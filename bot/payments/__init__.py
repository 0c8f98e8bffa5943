"""Payments: pay links and pages, the payment gateway's webhooks, receipts, reconciliation.

Empty for now: the payments issue moves in here, with its own blueprint and jobs.
"""
