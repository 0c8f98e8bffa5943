"""The agent inbox: conversations handed to a person, the pages agents answer them on, the jobs.

A package of its own rather than part of :mod:`bot.admin`, because it is a conversation feature
that happens to have operator pages, not part of the login shell: its jobs (send an agent's reply,
tell the consumer the conversation closed or timed out, close it when its time is up) run in the
worker, which never loads Flask, and the gateway and the actions reach them through the shared
core (:mod:`bot.handoffs`), never by importing this package. The pages (:mod:`bot.inbox.pages`)
live under ``/admin/inbox`` and extend the admin shell's template; the shell's guard signs people
in and checks CSRF tokens for them.
"""
