"""``/admin/rq``: RQ's own dashboard behind the operator login: roles, CSRF, script policy."""

from __future__ import annotations

import time

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from bot import connections, create_app
from bot.admin import queues
from tests.operators import sign_in

QUEUE = "notifications"


def _failed_job(redis_conn, job_id: str = "job-1") -> Job:
    """A job in the notifications queue's failed registry, as a worker leaves one."""
    job = Queue(QUEUE, connection=redis_conn).enqueue("bot.jobs.no_such_job", job_id=job_id)
    Queue(QUEUE, connection=redis_conn).remove(job)
    job.set_status(JobStatus.FAILED)
    FailedJobRegistry(QUEUE, connection=redis_conn).add(job, ttl=600, exc_string="boom")
    return job


def _signed_in(app, make_operator, role: str):
    make_operator(role, role, role.title())
    client = app.test_client()
    assert sign_in(client, role).status_code == 302
    return client


def _token(client) -> str:
    """The CSRF cookie a dashboard page hands its JavaScript."""
    assert client.get("/admin/rq/").status_code == 200
    cookie = client.get_cookie(queues.CSRF_COOKIE, path=queues.PREFIX)
    assert cookie is not None, "the dashboard pages set the token cookie"
    return cookie.value


def test_the_dashboard_needs_a_signed_in_operator(app, client, redis_conn):
    for path in ("/admin/rq/", "/admin/rq/0/data/queues.json", "/admin/rq/static/css/main.css"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/admin/login?next=/admin/rq/")
    assert client.post(f"/admin/rq/queue/{QUEUE}/queued/empty").status_code == 400


def test_officers_see_the_queues_of_the_apps_own_redis_and_agents_do_not(
    app, make_operator, redis_conn
):
    Queue(QUEUE, connection=redis_conn).enqueue("bot.jobs.no_such_job", job_id="waiting-1")
    officer = _signed_in(app, make_operator, "officer")
    page = officer.get("/admin/rq/")
    assert page.status_code == 200 and "RQ dashboard" in page.get_data(as_text=True)
    data = officer.get("/admin/rq/0/data/queues.json").get_json()
    assert {q["name"]: q["count"] for q in data["queues"]}[QUEUE] == 1
    jobs = officer.get(f"/admin/rq/0/data/jobs/{QUEUE}/queued/8/asc/1.json").get_json()
    assert [j["id"] for j in jobs["jobs"]] == ["waiting-1"]
    assert ">Queues</a>" in officer.get("/admin/").get_data(as_text=True)

    agent = _signed_in(app, make_operator, "agent")
    assert agent.get("/admin/rq/").status_code == 403
    assert agent.get("/admin/rq/0/data/queues.json").status_code == 403
    assert ">Queues</a>" not in agent.get("/admin/").get_data(as_text=True)


def test_an_admin_requeues_with_the_token_the_page_gives_and_a_forged_post_fails(
    app, make_operator, redis_conn
):
    _failed_job(redis_conn)
    admin = _signed_in(app, make_operator, "admin")
    url = "/admin/rq/job/job-1/requeue"
    # Forged: no token, or a token from another session (what a cross-site form could send).
    assert admin.post(url).status_code == 400
    other = _signed_in(app, make_operator, "officer")
    stolen = _token(other)
    assert admin.post(url, headers={"X-CSRFToken": stolen}).status_code == 400
    assert FailedJobRegistry(QUEUE, connection=redis_conn).get_job_ids() == ["job-1"]
    # The dashboard's own way: the cookie's token in the X-CSRFToken header.
    done = admin.post(url, headers={"X-CSRFToken": _token(admin)})
    assert (done.status_code, done.get_json()) == (200, {"status": "OK"})
    assert FailedJobRegistry(QUEUE, connection=redis_conn).get_job_ids() == []
    assert Queue(QUEUE, connection=redis_conn).job_ids == ["job-1"]


def test_only_admins_change_queues_and_never_by_a_get(app, make_operator, redis_conn):
    _failed_job(redis_conn)
    officer = _signed_in(app, make_operator, "officer")
    token = _token(officer)
    for path in (f"/admin/rq/queue/{QUEUE}/failed/empty", "/admin/rq/job/job-1/delete"):
        assert officer.post(path, headers={"X-CSRFToken": token}).status_code == 403, path
    admin = _signed_in(app, make_operator, "admin")
    # A link on another site would be a GET: the dashboard's requeue-all answers only POST.
    assert admin.get(f"/admin/rq/requeue/{QUEUE}").status_code == 405
    assert FailedJobRegistry(QUEUE, connection=redis_conn).get_job_ids() == ["job-1"]
    emptied = admin.post(
        f"/admin/rq/queue/{QUEUE}/failed/empty", headers={"X-CSRFToken": _token(admin)}
    )
    assert emptied.status_code == 200
    assert FailedJobRegistry(QUEUE, connection=redis_conn).get_job_ids() == []


def test_a_crafted_queue_name_or_instance_is_refused(app, make_operator, redis_conn):
    admin = _signed_in(app, make_operator, "admin")
    # The dashboard writes the queue name into its inline script unescaped; the page's script
    # policy allows that script by hash, so a name with a quote must never be rendered.
    crafted = "/admin/rq/0/view/jobs/x');alert(1);('/queued/8/asc/1"
    assert admin.get(crafted).status_code == 404
    assert admin.get(f"/admin/rq/0/view/jobs/{QUEUE}/queued/8/asc/1").status_code == 200
    assert admin.get("/admin/rq/1/view/queues").status_code == 404


def test_dashboard_pages_allow_their_own_inline_scripts_only(app, make_operator, redis_conn):
    admin = _signed_in(app, make_operator, "admin")
    page = admin.get("/admin/rq/0/view/workers")
    policy = page.headers["Content-Security-Policy"]
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert "'sha256-" in script_src and "'unsafe-inline'" not in script_src
    assert "frame-ancestors 'none'" in policy and page.headers["X-Frame-Options"] == "DENY"
    assert queues.page_policy(page.get_data(as_text=True)) == policy, "hashes the page it serves"
    assert "'sha256-" not in queues.page_policy('<script type="text/template">x</script>')


def test_the_dashboards_polling_keeps_no_session_alive(settings, engine, redis_conn, make_operator):
    app = create_app(settings.with_overrides(admin_idle_seconds=2))
    admin = _signed_in(app, make_operator, "admin")
    time.sleep(1.2)
    assert admin.get("/admin/rq/0/data/queues.json").status_code == 200
    time.sleep(1.2)
    assert admin.get("/admin/rq/").status_code == 302, "2.4 s since the operator did anything"


@pytest.mark.parametrize("role", ["officer", "admin"])
def test_the_dashboard_serves_its_own_files(app, make_operator, redis_conn, role):
    client = _signed_in(app, make_operator, role)
    assert client.get("/admin/rq/static/js/jquery-3.5.1.min.js").status_code == 200
    assert 'href="/admin/rq/favicon.ico"' in client.get("/admin/rq/").get_data(as_text=True)


def test_the_dashboard_uses_the_apps_redis_client_not_its_own(
    app, make_operator, redis_conn, monkeypatch
):
    import rq_dashboard.web

    def dial(*args, **kwargs):
        raise AssertionError("rq-dashboard opened a connection of its own")

    monkeypatch.setattr(rq_dashboard.web, "from_url", dial)
    Queue(QUEUE, connection=redis_conn).enqueue("bot.jobs.no_such_job", job_id="waiting-1")
    admin = _signed_in(app, make_operator, "admin")
    for path in ("/admin/rq/", "/admin/rq/0/view/workers", "/admin/rq/0/data/queues.json"):
        assert admin.get(path).status_code == 200, path
    data = admin.get("/admin/rq/0/data/workers.json").get_json()
    assert data == {"workers": []}
    assert app.redis_conn is connections.redis(app.extensions["bijli"])
