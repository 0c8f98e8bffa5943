"""The operator pages' shell: who may sign in (accounts), the login, roles and the /admin frame.

:mod:`bot.admin.accounts` keeps operators and their argon2 password hashes, with no Flask, so the
CLI (``bijli operator add``) uses it too. :mod:`bot.admin.shell` is the web part: Flask-Login,
Flask-WTF's CSRF protection for every form under ``/admin``, sessions that expire, security
headers, and the base template each feature's pages extend (the inbox in :mod:`bot.inbox`, the
campaign pages in the notifier). Features never import this package: ``create_app()`` wires them
in, the guard covers every path under ``/admin`` by itself, and ``current_user.role`` is all a
page needs to decide what an operator may see.
"""
