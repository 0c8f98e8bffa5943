"""Custom actions for the Rasa action server (``rasa run actions --actions bot.actions``).

One module per conversation area; the server imports every module of this package at start,
so none of them connects to anything at import time (see :mod:`bot.connections`).
"""
