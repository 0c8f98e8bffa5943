"""Running Rasa: its environment, the servers, training, the tracker store and measured speed-ups.

Nothing here imports Flask or the gateway: the Rasa server and the action server load only this,
:mod:`bot.actions`, :mod:`bot.nlu` and the shared core.
"""
