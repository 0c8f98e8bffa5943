"""``/admin/campaigns``: roles, CSRF, dry run → create → start from the page, buttons, funnel."""

from __future__ import annotations

import re

from rq import Queue
from sqlalchemy import select

from bot import store
from bot.queues import CAMPAIGNS, INBOUND
from notifier import campaigns, states
from tests.notifier.conftest import add_consumers
from tests.notifier.pages.conftest import VALID_UNTIL, make_campaign, run_one_task, settle
from tests.operators import csrf_from

_FORM_TOKEN = re.compile(r'name="form_token"[^>]*value="([^"]+)"')


def _form(client, **fields) -> dict[str, str]:
    html = client.get("/admin/campaigns/new").get_data(as_text=True)
    data = {"csrf_token": csrf_from(html), "form_token": _FORM_TOKEN.search(html).group(1)}
    data.update(fields)
    return data


def _press(client, campaign_id: int, button: str):
    html = client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    return client.post(
        f"/admin/campaigns/{campaign_id}/{button}", data={"csrf_token": csrf_from(html)}
    )


def test_an_officer_dry_runs_creates_and_starts_a_campaign_from_the_page(
    officer, engine, redis_conn
):
    add_consumers(engine, 6)
    with store.session_scope(engine) as session:
        store.set_opt_out(session, "+919700000001", "sms", True)
    fields = {
        "kind": "new-account-number",
        "valid_until": VALID_UNTIL,
        "name": "Kanpur new numbers",
    }

    # Dry run: handed to a worker; the page waits, then shows the preview. Nothing is stored.
    asked = officer.post("/admin/campaigns/new", data=_form(officer, action="preview", **fields))
    assert asked.status_code == 302 and "/admin/campaigns/new?preview=" in asked.location
    assert 'id="task-waiting"' in officer.get(asked.location).get_data(as_text=True)
    run_one_task(redis_conn)
    preview = officer.get(asked.location).get_data(as_text=True)
    assert "Dry run: 5 consumers would get a message" in preview
    assert re.search(r"<td>opted out</td><td>1</td>", preview)
    assert 'id="cost">₹' in preview and ("UCS-2" in preview or "GSM-7" in preview)
    assert 'value="2027-05-31"' in preview, "the form keeps what was asked"
    assert campaigns.list_campaigns(engine) == []

    # Create: one draft, even when the form is posted twice.
    form = _form(officer, action="create", **fields)
    created = officer.post("/admin/campaigns/new", data=form)
    again = officer.post("/admin/campaigns/new", data=form)
    assert created.location == again.location and "/admin/campaigns/tasks/" in created.location
    assert 'id="task-waiting"' in officer.get(created.location).get_data(as_text=True)
    run_one_task(redis_conn)
    assert Queue(CAMPAIGNS, connection=redis_conn).count == 0, "one creation job, run once"
    [status] = campaigns.list_campaigns(engine)
    assert (status.name, status.state, status.selected) == ("Kanpur new numbers", "draft", 5)
    landed = officer.get(created.location)
    assert landed.location == f"/admin/campaigns/{status.id}"

    # Start: a worker queues the recipients in send batches.
    assert _press(officer, status.id, "start").status_code == 302
    assert "Start requested" in officer.get(f"/admin/campaigns/{status.id}").get_data(as_text=True)
    run_one_task(redis_conn)
    assert campaigns.status(engine, status.id).state == "running"
    assert Queue(CAMPAIGNS, connection=redis_conn).job_ids, "send batches queued"
    with store.session_scope(engine) as session:
        rows = set(session.execute(select(store.AuditLog.actor, store.AuditLog.action)))
    for action in ("campaign_created", "campaign_start_requested", "campaign_started"):
        assert ("operator:officer", action) in rows, action


def test_bad_filters_and_a_missing_option_are_answered_on_the_page(officer, redis_conn):
    bad = officer.post(
        "/admin/campaigns/new",
        data=_form(
            officer, action="preview", kind="disconnection-warning", min_dues="-5", accounts="12345"
        ),
    )
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert "10-digit account numbers." in text and "Number must be" in text
    # No "until when" for a new-account-number campaign (and none in the settings): the
    # worker's answer is shown, not a traceback.
    asked = officer.post(
        "/admin/campaigns/new", data=_form(officer, action="preview", kind="new-account-number")
    )
    run_one_task(redis_conn)
    page = officer.get(asked.location).get_data(as_text=True)
    assert 'id="task-error"' in page and "old account numbers work" in page


def test_pause_resume_and_cancel_buttons(officer, engine, redis_conn):
    cid = make_campaign(engine)
    page = officer.get(f"/admin/campaigns/{cid}").get_data(as_text=True)
    assert 'id="pause"' in page and 'id="resume"' not in page and 'id="start"' not in page
    _press(officer, cid, "pause")
    assert campaigns.status(engine, cid).state == states.PAUSED
    assert 'id="resume"' in officer.get(f"/admin/campaigns/{cid}").get_data(as_text=True)
    _press(officer, cid, "resume")
    run_one_task(redis_conn)
    assert campaigns.status(engine, cid).state == states.RUNNING
    _press(officer, cid, "cancel")
    status = campaigns.status(engine, cid)
    assert status.state == states.CANCELLED and status.skipped == {"cancelled": 4}
    page = officer.get(f"/admin/campaigns/{cid}").get_data(as_text=True)
    assert "Cancelled: 4 consumers" in page and 'id="pause"' not in page
    # A button from a stale page: refused with the reason, nothing changes.
    stale = officer.post(
        f"/admin/campaigns/{cid}/pause", data={"csrf_token": csrf_from(page)}, follow_redirects=True
    )
    assert "is cancelled" in stale.get_data(as_text=True)
    assert campaigns.status(engine, cid).state == states.CANCELLED
    with store.session_scope(engine) as session:
        rows = session.execute(
            select(store.AuditLog.actor, store.AuditLog.action).where(
                store.AuditLog.action.in_(
                    ["campaign_paused", "campaign_resumed", "campaign_cancelled"]
                )
            )
        ).all()
    assert sorted(rows) == [
        ("operator:officer", "campaign_cancelled"),
        ("operator:officer", "campaign_paused"),
        ("operator:officer", "campaign_resumed"),
    ]


def test_agents_watch_but_cannot_act_and_forged_posts_change_nothing(
    agent, officer, engine, redis_conn
):
    cid = make_campaign(engine)
    assert agent.get("/admin/campaigns/").status_code == 200
    page = agent.get(f"/admin/campaigns/{cid}").get_data(as_text=True)
    assert 'id="funnel"' in page and 'id="pause"' not in page and 'id="cancel"' not in page
    assert agent.get("/admin/campaigns/new").status_code == 403
    token = csrf_from(page)
    for button in ("pause", "cancel", "start", "resume"):
        answer = agent.post(f"/admin/campaigns/{cid}/{button}", data={"csrf_token": token})
        assert answer.status_code == 403, button
    # An officer's browser posting a form another site made (no token): refused.
    assert officer.post(f"/admin/campaigns/{cid}/cancel").status_code == 400
    other = officer.application.test_client()
    stolen = csrf_from(other.get("/admin/login").get_data(as_text=True))
    forged = officer.post(f"/admin/campaigns/{cid}/cancel", data={"csrf_token": stolen})
    assert forged.status_code == 400
    assert campaigns.status(engine, cid).state == states.RUNNING
    assert officer.get("/admin/campaigns/999999").status_code == 404
    mine = csrf_from(officer.get(f"/admin/campaigns/{cid}").get_data(as_text=True))
    gone = officer.post("/admin/campaigns/999999/pause", data={"csrf_token": mine})
    assert gone.status_code == 404
    assert _press(officer, cid, "pause").status_code == 302  # the real button works


def test_only_campaign_tasks_can_be_looked_at(officer, redis_conn):
    other = Queue(INBOUND, connection=redis_conn).enqueue("bot.jobs.handle_inbound", 1)
    assert officer.get(f"/admin/campaigns/new?preview={other.id}").status_code == 404
    assert officer.get(f"/admin/campaigns/tasks/{other.id}").status_code == 404
    assert officer.get("/admin/campaigns/tasks/not-a-job-id").status_code == 404


def test_the_funnel_and_failures_by_code_come_from_the_messages_statuses(officer, engine):
    cid = make_campaign(engine, count=10)
    settle(
        engine,
        cid,
        [("read", None)] * 3
        + [("delivered", None)] * 2
        + [("sent", None)]
        + [("undelivered", 30003)] * 2
        + [("failed", 63016)],
    )
    page = officer.get(f"/admin/campaigns/{cid}").get_data(as_text=True)
    counts = dict(re.findall(r'data-stage="(\w+)" data-count="(\d+)"', page))
    assert counts == {
        "selected": "10",
        "sent": "9",
        "delivered": "5",
        "read": "3",
        "failed": "3",
        "skipped": "0",
    }
    widths = [float(w) for w in re.findall(r'<rect x="\d+" y="\d+" width="([\d.]+)"', page)]
    assert widths[0] > widths[1] > widths[2] > widths[3], "bars in proportion to the counts"
    failures = re.findall(r'<tr data-code="(\w+)">.*?<td>(\d+)</td><td>([^<]*)</td></tr>', page)
    assert failures == [
        ("30003", "2", "Unreachable handset (switched off or out of coverage)"),
        ("63016", "1", "Outside WhatsApp&#39;s 24-hour window without an approved template"),
    ]
    assert 'href="https://www.twilio.com/docs/api/errors/30003"' in page
    assert re.search(r'<progress id="progress" max="100" value="90.0">', page)
    listing = officer.get("/admin/campaigns/").get_data(as_text=True)
    assert f'data-id="{cid}"' in listing and "9 / 10" in listing


def test_a_disconnection_warning_runs_from_the_page_with_its_filters(officer, engine, redis_conn):
    add_consumers(engine, 3, meter_type="smart_prepaid", dues_paise=20_000_00)
    add_consumers(engine, 2, start=3, meter_type="smart_prepaid", dues_paise=5_000_00)
    add_consumers(engine, 2, start=5, meter_type="postpaid", dues_paise=50_000_00)
    fields = {
        "kind": "disconnection-warning",
        "meter_type": "smart_prepaid",
        "min_dues": "15000",
        "discom": "KESCO",
    }
    asked = officer.post("/admin/campaigns/new", data=_form(officer, action="preview", **fields))
    run_one_task(redis_conn)
    preview = officer.get(asked.location).get_data(as_text=True)
    assert "Dry run: 3 consumers would get a message" in preview
    assert "min_dues=₹15,000.00" in preview and "meter_type=smart_prepaid" in preview
    created = officer.post("/admin/campaigns/new", data=_form(officer, action="create", **fields))
    run_one_task(redis_conn)
    campaign_id = int(officer.get(created.location).location.rsplit("/", 1)[1])
    _press(officer, campaign_id, "start")
    run_one_task(redis_conn)
    status = campaigns.status(engine, campaign_id)
    assert (status.kind, status.selected) == ("disconnection-warning", 3)
    assert status.state in ("running", "held")
    assert status.filters.min_dues_paise == 15_000_00
