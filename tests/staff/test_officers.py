"""Officers: the report (CLI, CSV, /admin/verification), approving mobile changes, deactivating."""

from __future__ import annotations

import csv
import json
import re

from sqlalchemy import select

from bot import store, verification
from bot.cli import main
from bot.importers import import_file
from tests.operators import csrf_from
from tests.staff.conftest import AREA, NEW_MOBILE, OFFICER, OLD_MOBILE, READER


def _mobile(engine, account: str = "1234567890") -> str | None:
    with store.session_scope(engine) as session:
        consumer = store.consumer_by_account(session, account)
        return consumer.mobile if consumer else None


def test_the_cli_report_lists_each_area_and_writes_csv(cli, visited, tmp_path) -> None:
    out = tmp_path / "report.csv"
    result = cli.invoke(main, ["report", "verification", "--area", AREA, "--csv", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{AREA}: informed 1/3 (33%), mobiles confirmed 1, pending changes 1" in result.output
    assert "Suresh Yadav: 2 visits, 1 informed, 1 mobile changes" in result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert [(r["row"], r["informed"], r["total"]) for r in rows] == [
        ("area", "1", "3"),
        ("reader_day", "1", ""),
    ]
    assert rows[1]["reader"] == "Suresh Yadav" and rows[1]["visits"] == "2"
    unknown = cli.invoke(main, ["report", "verification", "--area", "Nowhere"])
    assert unknown.exit_code != 0 and "no consumers or staff in area Nowhere" in unknown.output


def test_approving_moves_the_mobile_tells_both_numbers_and_is_audited(
    cli, visited, engine, work, fake
) -> None:
    result = cli.invoke(main, ["staff", "approve", str(visited)])
    assert result.exit_code == 0, result.output
    assert _mobile(engine) == NEW_MOBILE
    work()
    old, new = fake.sent(OLD_MOBILE), fake.sent(NEW_MOBILE)
    assert len(old) == 1 and "1234567890" in old[0]["body"] and "1111" in old[0]["body"]
    assert len(new) == 1 and "1234567890" in new[0]["body"]
    with store.session_scope(engine) as session:
        row = session.execute(
            select(store.AuditLog).where(store.AuditLog.action == "mobile_change_approved")
        ).scalar_one()
        assert row.actor == "cli" and row.subject == "1234567890"
        assert json.loads(row.detail)["old_mobile"] == "+91******3210"
    again = cli.invoke(main, ["staff", "approve", str(visited)])
    assert again.exit_code != 0 and "already approved" in again.output
    work()
    assert len(fake.sent(NEW_MOBILE)) == 1  # nothing sent twice


def test_a_rejected_change_leaves_the_mobile(cli, visited, engine, work, fake) -> None:
    result = cli.invoke(main, ["staff", "reject", str(visited)])
    assert result.exit_code == 0, result.output
    work()
    assert _mobile(engine) == OLD_MOBILE and fake.sent(NEW_MOBILE) == []
    assert cli.invoke(main, ["staff", "approve", "999"]).exit_code != 0


def test_deactivate_is_at_once_and_staff_csv_active_is_honoured(cli, area, engine, tmp_path):
    result = cli.invoke(main, ["staff", "deactivate", "098765 11111"])
    assert result.exit_code != 0 and "not in the staff table" in result.output
    result = cli.invoke(main, ["staff", "deactivate", READER[3:]])
    assert result.exit_code == 0, result.output
    with store.session_scope(engine) as session:
        assert verification.active_staff(session, READER) is None
    # A later file without the column leaves the officer's decision; active=yes undoes it.
    path = tmp_path / "staff.csv"
    path.write_text(f"mobile,name,role,area\n{READER},Suresh Yadav,meter_reader,{AREA}\n")
    import_file(engine, "staff", path, progress=False)
    with store.session_scope(engine) as session:
        assert verification.active_staff(session, READER) is None
    path.write_text(
        f"mobile,name,role,area,active\n{READER},Suresh Yadav,meter_reader,{AREA},yes\n"
        f"{OFFICER},Anil Verma,officer,{AREA},no\n+919900000003,New Reader,meter_reader,{AREA},\n"
    )
    import_file(engine, "staff", path, progress=False)
    with store.session_scope(engine) as session:
        assert verification.active_staff(session, READER) is not None
        assert verification.active_staff(session, OFFICER) is None
        assert verification.active_staff(session, "+919900000003") is not None


def test_the_page_needs_a_sign_in_and_shows_the_figures(gw_app, signed_in, visited) -> None:
    anonymous = gw_app.test_client().get("/admin/verification/")
    assert anonymous.status_code == 302 and "/admin/login" in anonymous.headers["Location"]
    agent = signed_in("agent")
    page = agent.get("/admin/verification/").get_data(as_text=True)
    assert re.search(r'data-area="Kidwai Nagar" data-percent="33"', page)
    assert "1 / 3 (33%)" in page and "Approve" not in page
    assert NEW_MOBILE not in page and "+91******1111" in page  # agents see mobiles masked
    detail = agent.get("/admin/verification/?area=Kidwai+Nagar").get_data(as_text=True)
    assert "Suresh Yadav" in detail
    csv_text = agent.get("/admin/verification/report.csv").get_data(as_text=True)
    assert csv_text.startswith("area,row,day,reader")
    token = csrf_from(page)
    refused = agent.post(
        f"/admin/verification/changes/{visited}/approve", data={"csrf_token": token}
    )
    assert refused.status_code == 403


def test_an_officer_approves_on_the_page_with_a_csrf_token(
    signed_in, visited, engine, work, fake
) -> None:
    officer = signed_in("officer")
    page = officer.get("/admin/verification/").get_data(as_text=True)
    assert NEW_MOBILE in page
    forged = officer.post(f"/admin/verification/changes/{visited}/approve", data={})
    assert forged.status_code == 400 and _mobile(engine) == OLD_MOBILE
    done = officer.post(
        f"/admin/verification/changes/{visited}/approve", data={"csrf_token": csrf_from(page)}
    )
    assert done.status_code == 302
    assert _mobile(engine) == NEW_MOBILE
    work()
    assert len(fake.sent(OLD_MOBILE)) == 1 and len(fake.sent(NEW_MOBILE)) == 1
    with store.session_scope(engine) as session:
        row = session.execute(
            select(store.AuditLog).where(store.AuditLog.action == "mobile_change_approved")
        ).scalar_one()
        assert row.actor == "operator:officer"
    after = officer.get("/admin/verification/").get_data(as_text=True)
    assert "No mobile change is waiting." in after and "approved" in after


def test_the_cap_alert_reaches_the_areas_officer(area, engine, gw_settings, work, fake) -> None:
    from bot.actions.staff_card import _enqueue_cap_alert

    _enqueue_cap_alert(area["reader"], "2026-12-04")
    _enqueue_cap_alert(area["reader"], "2026-12-04")  # one job id per reader and day
    work()
    [alert] = fake.sent(OFFICER)
    assert "Suresh Yadav" in alert["body"] and "300" in alert["body"]
