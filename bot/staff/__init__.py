"""Meter readers' and officers' features: verifying accounts in the field, visits, reports.

Empty for now: the meter-readers issue moves in here.
"""
