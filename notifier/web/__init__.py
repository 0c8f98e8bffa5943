"""The notifier's operator pages (``/admin/campaigns``): the one part of the notifier with Flask.

:mod:`notifier.web.pages` lists campaigns, creates one with a dry-run preview, starts, pauses,
resumes and cancels it through :mod:`notifier.campaigns`, and shows its progress and funnel;
:mod:`notifier.web.chart` lays out the funnel as SVG, with no Flask. ``create_app()`` wires the
pages in behind the admin shell, whose guard signs operators in and checks every form's CSRF token.
"""
