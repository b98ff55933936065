"""The console's opt-outs and administration pages without a browser: looking a number up
in any Vietnamese format, adding and removing (with a reason, audited), masked numbers for
viewers; users with roles on the agency tree, tokens shown once, the audit log with
filters and pages; each with the API's permissions and scope rules (404 outside the
admin's part of the tree). The same pages in Chromium are in test_console_admin_browser.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from ivr_service.persistence.models import ApiToken, AuditEntry, OptOut, RoleGrant, User
from ivr_service.services import access, audit, contacts
from ivr_service.services.audit import Actor

from .conftest import count, fetch, phones, row, scalars
from .test_access import PASSWORD, Bearer, Browser, audit_rows, cheap_hashing, make_user, signed_in  # noqa: F401
from .test_console import text_of, tree  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("cheap_hashing")

NUMBER = "+84912345678"
MASKED = "+84******678"
TYPED = ["0912 345 678", "+84 912 345 678", "84912345678", "0912.345.678", "(+84) 912-345-678", "0084912345678"]


def csrf_of(page: Any) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found is not None
    return found.group(1)


def post_form(person: Browser, path: str, **form: Any) -> Any:
    """A form as the page submits it: urlencoded, with the page's CSRF token in the body."""
    token = csrf_of(person.get("/campaigns"))
    return person.client.post(path, data={"csrf_token": token, **form}, auth=False)


def value_of(response: Any, input_id: str) -> str | None:
    """The value the page's input ``input_id`` holds."""
    found = re.search(r'<input id="%s"[^>]* value="([^"]*)"' % input_id, response.get_data(as_text=True))
    return found.group(1) if found else None


def field_error(response: Any, field: str) -> str | None:
    """The message shown beside ``field`` (the element the input's aria-describedby names)."""
    found = re.search(r'<p class="field-error" id="(?:[a-z]+-)?%s-error">(.*?)</p>' % field,
                      response.get_data(as_text=True))
    return found.group(1) if found else None


# ============================================================================ opt-outs

def test_a_number_typed_any_way_finds_the_same_opt_out(app: Flask, tree: dict[str, int], make_user: Any) -> None:
    make_user("tong-dai", ("operator", tree["north"]))
    operator = signed_in(app, "tong-dai")
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:      # the citizen pressed 9 on a call of the running campaign
        contacts.opt_out(session, NUMBER, source="ivr", now=svc.clock(), campaign_id=tree["running"])
    for typed in TYPED:
        found = post_form(operator, "/opt-outs/search", phone=typed)
        page = text_of(found)
        assert found.status_code == 200, typed
        assert f"{NUMBER} có trong danh sách không liên lạc" in page, typed
        assert "Phím 9 trong cuộc gọi" in page and "Quý 4 Cư Jút" in page and "17/11/2026 09:00" in page
        assert value_of(found, "phone") == typed                                 # what was typed is kept
    # The number never goes into a URL: looking up is a POST, and the page links nowhere with it.
    assert operator.get("/opt-outs?phone=0912345678").status_code == 200
    other = post_form(operator, "/opt-outs/search", phone="0912 345 679")
    assert "+84912345679 không có trong danh sách không liên lạc" in text_of(other)
    bad = post_form(operator, "/opt-outs/search", phone="12345")
    assert bad.status_code == 400 and "Không phải số điện thoại Việt Nam" in (field_error(bad, "phone") or "")
    assert value_of(bad, "phone") == "12345"


def test_a_campaign_of_another_agency_is_not_named(app: Flask, tree: dict[str, int], make_user: Any) -> None:
    make_user("nam", ("operator", tree["south"]))
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        contacts.opt_out(session, NUMBER, source="sms", now=svc.clock(), campaign_id=tree["running"])
    found = text_of(post_form(signed_in(app, "nam"), "/opt-outs/search", phone="0912345678"))
    assert "một chiến dịch của cơ quan khác" in found and "Quý 4 Cư Jút" not in found
    assert "Quý 4 Cư Jút" not in text_of(signed_in(app, "nam").get("/opt-outs"))


def test_adding_then_removing_with_a_reason_is_audited(app: Flask, tree: dict[str, int], make_user: Any,
                                                       clock: Any) -> None:
    operator_id = make_user("tong-dai", ("operator", tree["north"]))
    operator = signed_in(app, "tong-dai")
    looked = post_form(operator, "/opt-outs/search", phone="0912 345 678")
    assert 'action="/opt-outs"' in looked.get_data(as_text=True)             # the add form, for this number
    assert f'name="phone" value="{NUMBER}"' in looked.get_data(as_text=True)
    added = post_form(operator, "/opt-outs", phone=NUMBER)
    assert added.status_code == 303 and added.headers["Location"] == "/opt-outs"
    listed = text_of(operator.get("/opt-outs"))
    assert f"{NUMBER} đã vào danh sách không liên lạc" in listed              # the flash message
    assert re.search(r'<th scope="row" class="phone">\+84912345678</th><td>17/11/2026 09:00</td>'
                     r"<td>Điều hành viên \(bảng điều khiển hoặc API\)</td>", listed)
    assert scalars(app, select(OptOut.phone_e164)) == [NUMBER]
    assert post_form(operator, "/opt-outs", phone="0912345678").status_code == 303      # twice: still one entry
    assert count(app, OptOut) == 1

    clock.advance(days=2)
    found = post_form(operator, "/opt-outs/search", phone="0912345678")
    page = text_of(found)
    assert 'action="/opt-outs/remove"' in found.get_data(as_text=True)
    assert "Nghị định 91/2020" in page and "chưa đầy một năm, vào ngày 17/11/2026" in page
    for blank in ("", "   "):
        refused = post_form(operator, "/opt-outs/remove", phone=NUMBER, reason=blank)
        assert refused.status_code == 400
        assert "Ghi rõ ai đã đề nghị" in (field_error(refused, "reason") or "")
        assert 'aria-describedby="reason-error"' in refused.get_data(as_text=True)
    too_long = post_form(operator, "/opt-outs/remove", phone=NUMBER, reason="x" * 501)
    assert too_long.status_code == 400 and field_error(too_long, "reason") == "Tối đa 500 ký tự."
    missing_number = post_form(operator, "/opt-outs/remove", reason="Công dân gọi lại")
    assert missing_number.status_code == 400 and field_error(missing_number, "phone")
    assert count(app, OptOut) == 1
    reason = "Công dân gọi đường dây nóng ngày 19/11, đồng ý khảo sát lại"
    removed = post_form(operator, "/opt-outs/remove", phone=NUMBER, reason=f"  {reason} ")
    assert removed.status_code == 303
    assert "đã ra khỏi danh sách không liên lạc" in text_of(operator.get("/opt-outs"))
    assert count(app, OptOut) == 0
    again = post_form(operator, "/opt-outs/remove", phone=NUMBER, reason=reason)
    assert again.status_code == 404 and "không có trong danh sách" in (field_error(again, "phone") or "")

    entries = audit_rows(app, "opt_out_added", "opt_out_removed")
    assert [(e.actor, e.action, e.agency_id) for e in entries] == [
        (f"user:{operator_id} tong-dai", "opt_out_added", None)] * 2 + [
        (f"user:{operator_id} tong-dai", "opt_out_removed", None)]
    assert entries[0].detail == {"phone": MASKED}
    assert entries[2].detail == {"phone": MASKED, "reason": reason, "since": "2026-11-17T02:00:00+00:00",
                                 "source": "operator"}
    assert NUMBER not in repr([e.detail for e in audit_rows(app)])


def test_a_viewer_sees_masked_numbers_and_no_forms(app: Flask, tree: dict[str, int], make_user: Any) -> None:
    make_user("xem", ("viewer", tree["province"]))
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        contacts.opt_out(session, NUMBER, source="web", now=svc.clock(), campaign_id=tree["running"])
    viewer = signed_in(app, "xem")
    page = viewer.get("/opt-outs").get_data(as_text=True)
    assert MASKED in page and NUMBER not in page
    assert 'href="/opt-outs"' in page                                          # in the main menu
    found = post_form(viewer, "/opt-outs/search", phone="+84912345678")
    body = found.get_data(as_text=True)
    assert found.status_code == 200 and f"{MASKED} có trong danh sách không liên lạc" in text_of(found)
    assert value_of(found, "phone") == NUMBER and body.count(NUMBER) == 1      # only in the viewer's own input
    assert 'action="/opt-outs/remove"' not in body and 'action="/opt-outs"' not in body
    assert "Quý 4 Cư Jút" in body                                              # a campaign it may see
    not_listed = post_form(viewer, "/opt-outs/search", phone="0987654321")
    assert "+84******321 không có trong danh sách" in text_of(not_listed)
    assert 'action="/opt-outs"' not in not_listed.get_data(as_text=True)
    for path, form in (("/opt-outs", {"phone": "0987654321"}), ("/opt-outs/remove", {"phone": NUMBER, "reason": "x"})):
        assert post_form(viewer, path, **form).status_code == 403
    assert count(app, OptOut) == 1


def test_the_newest_entries_page_back(app: Flask, make_user: Any, clock: Any) -> None:
    make_user("tong-dai", ("operator", None))
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        for number in phones(55):
            contacts.opt_out(session, "+84" + number[1:], source="sms", now=clock.advance(minutes=1))
    operator = signed_in(app, "tong-dai")
    first = operator.get("/opt-outs").get_data(as_text=True)
    shown = re.findall(r'class="phone">(\+84\d+)<', first)
    assert len(shown) == 50 and shown[0] == "+84910000054" and shown[-1] == "+84910000005"
    older = re.search(r'href="(/opt-outs\?before=\d+)"', first)
    assert older is not None
    second = operator.get(older.group(1)).get_data(as_text=True)
    assert re.findall(r'class="phone">(\+84\d+)<', second) == [f"+8491000000{i}" for i in range(4, -1, -1)]
    assert 'href="/opt-outs?before=' not in second


# ============================================================================ users

def admin_page(person: Browser, path: str = "/admin/users") -> str:
    response = person.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_data(as_text=True)


def options(page: str, select_id: str) -> list[str]:
    found = re.search(r'<select id="%s"[^>]*>(.*?)</select>' % select_id, page, re.S)
    assert found is not None
    return [re.sub(r"\s+", " ", label.replace("\u00a0", "·")).strip()
            for label in re.findall(r'<option value="[^"]+"[^>]*>(.*?)</option>', found.group(1))]


def test_an_admin_creates_a_user_with_a_role_on_a_district_who_sees_only_that_district(
        app: Flask, tree: dict[str, int], make_user: Any) -> None:
    admin_id = make_user("quan-tri", ("admin", None))
    admin = signed_in(app, "quan-tri")
    page = admin_page(admin)
    assert options(page, "agency_id") == ["Toàn hệ thống", "Tỉnh Đắk Nông", "··Huyện Cư Jút", "··Huyện Krông Nô"]
    assert options(page, "role") == ["Quản trị", "Quản lý", "Điều hành viên", "Người xem"]

    # Errors beside their field, what was typed kept (never the password).
    short = post_form(admin, "/admin/users", username="Bac-CJ", display_name="Nguyễn Thị Bắc",
                      password="ngan", role="operator", agency_id=str(tree["north"]))
    assert short.status_code == 400 and "10 đến 1.000 ký tự" in (field_error(short, "password") or "")
    body = short.get_data(as_text=True)
    assert value_of(short, "username") == "Bac-CJ" and value_of(short, "display_name") == "Nguyễn Thị Bắc"
    assert "ngan" not in body and value_of(short, "password") is None
    assert re.search(r'<option value="%d" selected>' % tree["north"], body)
    assert re.search(r'<option value="operator" selected>', body)
    bad_name = post_form(admin, "/admin/users", username="bắc cj", password=PASSWORD, role="operator",
                         agency_id=str(tree["north"]))
    assert bad_name.status_code == 400 and field_error(bad_name, "username")
    no_role = post_form(admin, "/admin/users", username="bac-cj", password=PASSWORD, agency_id=str(tree["north"]))
    assert no_role.status_code == 400 and field_error(no_role, "role") == "Chọn một vai trò."
    no_agency = post_form(admin, "/admin/users", username="bac-cj", password=PASSWORD, role="operator")
    assert no_agency.status_code == 400 and field_error(no_agency, "agency_id") == "Chọn một cơ quan."
    taken = post_form(admin, "/admin/users", username="QUAN-TRI", password=PASSWORD, role="viewer",
                      agency_id="all")
    assert taken.status_code == 409 and field_error(taken, "username") == "Tên đăng nhập này đã có người dùng."
    assert value_of(taken, "username") == "QUAN-TRI"
    assert scalars(app, select(User.username).order_by(User.id)) == ["quan-tri"]

    created = post_form(admin, "/admin/users", username="Bac-CJ", display_name="Nguyễn Thị Bắc",
                        password=PASSWORD, role="operator", agency_id=str(tree["north"]))
    assert created.status_code == 303
    user_id = row(app, User, username="bac-cj").id
    assert created.headers["Location"] == f"/admin/users/{user_id}"
    detail = text_of(admin.get(created.headers["Location"]))
    assert "Đã tạo người dùng bac-cj." in detail and "Huyện Cư Jút" in detail and "Điều hành viên" in detail
    listed = admin_page(admin)
    assert re.search(r'<a href="/admin/users/%d">bac-cj</a>.*?Điều hành viên trên Huyện Cư Jút' % user_id,
                     listed, re.S)
    assert [(e.action, e.target, e.agency_id) for e in audit_rows(app, "user_created", "role_granted")] == [
        ("user_created", f"user:{user_id}", None), ("role_granted", f"user:{user_id}", tree["north"])]
    assert all(e.actor == f"user:{admin_id} quan-tri" for e in audit_rows(app, "user_created", "role_granted"))

    # The new user signs in and sees only its district.
    north = text_of(signed_in(app, "bac-cj").get("/campaigns"))
    assert "Quý 4 Cư Jút" in north and "Quý 4 Krông Nô" not in north and "Huyện Krông Nô" not in north
    assert signed_in(app, "bac-cj").get("/admin/users").status_code == 403


def test_granting_revoking_a_new_password_and_deactivating(app: Flask, tree: dict[str, int], make_user: Any) -> None:
    make_user("quan-tri", ("admin", None))
    user_id = make_user("bac-cj", ("viewer", tree["north"]))
    admin = signed_in(app, "quan-tri")
    bac = signed_in(app, "bac-cj")
    granted = post_form(admin, f"/admin/users/{user_id}/grants", role="manager", agency_id=str(tree["south"]))
    assert granted.status_code == 303
    assert sorted(fetch(app, select(RoleGrant.role, RoleGrant.agency_id).where(RoleGrant.user_id == user_id))) == [
        ("manager", tree["south"]), ("viewer", tree["north"])]
    assert "Quý 4 Krông Nô" in text_of(bac.get("/campaigns"))
    no_role = post_form(admin, f"/admin/users/{user_id}/grants", agency_id=str(tree["south"]))
    assert no_role.status_code == 400 and field_error(no_role, "role") == "Chọn một vai trò."
    revoked = post_form(admin, f"/admin/users/{user_id}/grants/revoke", agency_id=str(tree["south"]))
    assert revoked.status_code == 303
    assert fetch(app, select(RoleGrant.role).where(RoleGrant.user_id == user_id)) == [("viewer",)]
    not_held = post_form(admin, f"/admin/users/{user_id}/grants/revoke", agency_id=str(tree["south"]))
    assert not_held.status_code == 404 and field_error(not_held, "agency_id")

    short = post_form(admin, f"/admin/users/{user_id}/password", password="ngan")
    assert short.status_code == 400 and field_error(short, "password")
    assert post_form(admin, f"/admin/users/{user_id}/password", password="mat-khau-moi-dai").status_code == 303
    assert bac.get("/campaigns").status_code == 302                            # its session ended
    assert post_form(admin, f"/admin/users/{user_id}/active").status_code == 400
    assert post_form(admin, f"/admin/users/{user_id}/active", active="0").status_code == 303
    assert row(app, User, id=user_id).active is False
    assert Browser(app).login("bac-cj", "mat-khau-moi-dai").status_code == 401
    assert "Đã ngừng" in text_of(admin.get("/admin/users"))
    assert post_form(admin, f"/admin/users/{user_id}/active", active="1").status_code == 303
    assert row(app, User, id=user_id).active is True
    assert [e.action for e in audit_rows(app, "role_granted", "role_revoked", "password_set", "user_deactivated",
                                         "user_activated")] == [
        "role_granted", "role_revoked", "password_set", "user_deactivated", "user_activated"]

    # The last installation-wide admin cannot be deactivated: said at the top of the page.
    admin_id = row(app, User, username="quan-tri").id
    last = post_form(admin, f"/admin/users/{admin_id}/active", active="0")
    assert last.status_code == 409
    assert "quản trị toàn hệ thống cuối cùng" in text_of(last)


def test_a_district_admin_sees_and_grants_only_inside_its_subtree(app: Flask, tree: dict[str, int],
                                                                 make_user: Any) -> None:
    make_user("quan-tri-bac", ("admin", tree["north"]))
    mine = make_user("bac-1", ("operator", tree["north"]))
    theirs = make_user("nam-1", ("operator", tree["south"]))
    lonely = make_user("chua-co-quyen")
    make_user("xem", ("viewer", tree["north"]))
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        south_token = access.create_token(session, "mot-cua-nam", ["campaigns:read"], tree["south"],
                                          svc.clock()).token
        south_token_id, south_prefix = south_token.id, south_token.prefix
    admin = signed_in(app, "quan-tri-bac")
    page = admin_page(admin)
    assert "bac-1" in page and "nam-1" not in page and "chua-co-quyen" not in page
    assert options(page, "agency_id") == ["Huyện Cư Jút"]                     # no province, no other district
    for user_id in (theirs, lonely):
        assert admin.get(f"/admin/users/{user_id}").status_code == 404
        for path, form in (("grants", {"role": "viewer", "agency_id": str(tree["north"])}),
                           ("active", {"active": "0"}), ("password", {"password": "mat-khau-moi-dai"})):
            assert post_form(admin, f"/admin/users/{user_id}/{path}", **form).status_code == 404
    outside = post_form(admin, f"/admin/users/{mine}/grants", role="admin", agency_id=str(tree["province"]))
    assert outside.status_code == 404 and field_error(outside, "agency_id") == "Không phải cơ quan bạn quản lý."
    whole = post_form(admin, f"/admin/users/{mine}/grants", role="admin", agency_id="all")
    assert whole.status_code == 404
    create = post_form(admin, "/admin/users", username="gian-diep", password=PASSWORD, role="viewer",
                       agency_id=str(tree["south"]))
    assert create.status_code == 404 and field_error(create, "agency_id")
    assert scalars(app, select(User.id).where(User.username == "gian-diep")) == []
    assert fetch(app, select(RoleGrant.role, RoleGrant.agency_id).where(RoleGrant.user_id == mine)) == [
        ("operator", tree["north"])]
    assert row(app, User, id=theirs).active and row(app, User, id=lonely).active

    tokens = admin_page(admin, "/admin/tokens")
    assert south_prefix not in tokens and options(tokens, "agency_id") == ["Huyện Cư Jút"]
    assert post_form(admin, f"/admin/tokens/{south_token_id}/revoke").status_code == 404
    assert row(app, ApiToken, id=south_token_id).revoked_at is None
    south_token_create = post_form(admin, "/admin/tokens", name="x", scopes="campaigns:read",
                                   agency_id=str(tree["south"]))
    assert south_token_create.status_code == 404
    assert count(app, ApiToken) == 2                                           # the tests' token and the south one

    viewer = signed_in(app, "xem")
    for path in ("/admin/users", f"/admin/users/{mine}", "/admin/tokens", "/admin/audit"):
        assert viewer.get(path).status_code == 403, path
    assert 'href="/admin/users"' not in viewer.get("/campaigns").get_data(as_text=True)
    assert 'href="/admin/users"' in admin.get("/campaigns").get_data(as_text=True)


# ============================================================================ tokens

def test_a_token_is_shown_once_works_with_the_api_and_is_refused_once_revoked(
        app: Flask, tree: dict[str, int], make_user: Any, clock: Any) -> None:
    admin_id = make_user("quan-tri", ("admin", None))
    admin = signed_in(app, "quan-tri")
    page = admin_page(admin, "/admin/tokens")
    assert re.findall(r'name="scopes" value="([a-z:]+)"', page) == sorted(
        ["agencies:read", "agencies:write", "audit:read", "campaigns:read", "campaigns:write", "campaigns:steer",
         "frames:write", "exports:write", "optouts:write", "contacts:read", "transactions:write",
         "metrics:read"])
    no_scope = post_form(admin, "/admin/tokens", name="Một cửa Cư Jút", agency_id=str(tree["north"]))
    assert no_scope.status_code == 400 and field_error(no_scope, "scopes") == "Chọn ít nhất một quyền."
    assert value_of(no_scope, "name") == "Một cửa Cư Jút"
    past = post_form(admin, "/admin/tokens", name="Một cửa Cư Jút", agency_id=str(tree["north"]),
                     scopes=["campaigns:read"], expires_at="2026-11-16")
    assert past.status_code == 400 and field_error(past, "expires_at")
    assert 'name="scopes" value="campaigns:read" checked' in past.get_data(as_text=True)
    assert post_form(admin, "/admin/tokens", name="x", agency_id="all", scopes=["users:write"]).status_code == 400
    assert count(app, ApiToken) == 1

    created = post_form(admin, "/admin/tokens", name="Một cửa Cư Jút", agency_id=str(tree["north"]),
                        scopes=["campaigns:read", "exports:write"], expires_at="2026-12-31")
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    body = created.get_data(as_text=True)
    secret = re.search(r'id="secret" class="secret" value="(sipas_([a-z0-9]{8})_[A-Za-z0-9_-]{43})"', body)
    assert secret is not None
    token, prefix = secret.group(1), secret.group(2)
    assert "chỉ hiện một lần" in text_of(created) and "Huyện Cư Jút" in text_of(created)
    stored = row(app, ApiToken, prefix=prefix)
    assert stored.scopes == ["campaigns:read", "exports:write"] and stored.agency_id == tree["north"]
    assert stored.created_by == admin_id
    assert stored.expires_at == datetime(2026, 12, 31, 17, tzinfo=UTC)      # the end of 31/12 in Hà Nội
    listed = admin_page(admin, "/admin/tokens")
    assert token not in listed and token.split("_", 2)[2] not in listed
    assert f"sipas_{prefix}_…" in listed and "Một cửa Cư Jút" in listed and "01/01/2027 00:00" in listed

    system = Bearer(app, token)
    campaigns = system.get("/api/v1/campaigns")
    assert campaigns.status_code == 200 and [c["name"] for c in campaigns.json] == ["Quý 4 Cư Jút"]
    clock.advance(minutes=5)
    assert system.get("/api/v1/campaigns").status_code == 200
    assert "17/11/2026 09:05" in text_of(admin.get("/admin/tokens"))         # its last use

    revoked = post_form(admin, f"/admin/tokens/{stored.id}/revoke")
    assert revoked.status_code == 303
    assert "đã bị thu hồi" in text_of(admin.get("/admin/tokens"))
    refused = system.get("/api/v1/campaigns")
    assert refused.status_code == 401
    assert [(e.action, e.target, e.agency_id, e.detail.get("prefix")) for e in
            audit_rows(app, "token_created", "token_revoked")] == [
        ("token_created", f"token:{stored.id}", tree["north"], prefix),
        ("token_revoked", f"token:{stored.id}", tree["north"], prefix)]
    assert token not in repr([e.detail for e in audit_rows(app)])


# ============================================================================ audit log

def test_the_audit_page_lists_actions_with_filters_and_pages(app: Flask, tree: dict[str, int], make_user: Any,
                                                             clock: Any) -> None:
    make_user("quan-tri", ("admin", None))
    make_user("quan-tri-bac", ("admin", tree["north"]))
    admin = signed_in(app, "quan-tri")
    assert post_form(admin, "/admin/users", username="bac-cj", password=PASSWORD, role="operator",
                     agency_id=str(tree["north"])).status_code == 303
    clock.advance(days=1)
    assert post_form(admin, "/admin/users", username="nam-kn", password=PASSWORD, role="viewer",
                     agency_id=str(tree["south"])).status_code == 303
    assert post_form(signed_in(app, "bac-cj"), "/opt-outs", phone="0912345678").status_code == 303

    page = admin_page(admin, "/admin/audit")
    actions = re.findall(r"<code>([a-z_]+)</code></th>", page)
    assert actions[:5] == ["opt_out_added", "login", "role_granted", "user_created", "role_granted"]
    assert options(page, "action") == ["login", "opt_out_added", "role_granted", "user_created"]
    assert "+84******678" in page and NUMBER not in page
    granted = admin_page(admin, "/admin/audit?action=role_granted")
    assert re.findall(r"<code>([a-z_]+)</code></th>", granted) == ["role_granted", "role_granted"]
    assert "Huyện Krông Nô" in granted and "Huyện Cư Jút" in granted
    by_actor = admin_page(admin, "/admin/audit?actor=BAC-CJ")
    assert set(re.findall(r"<code>([a-z_]+)</code></th>", by_actor)) == {"login", "opt_out_added"}
    first_day = admin_page(admin, "/admin/audit?since=2026-11-17&until=2026-11-17&action=user_created")
    assert len(re.findall(r"<code>user_created</code>", first_day)) == 1 and "bac-cj" in first_day
    assert "nam-kn" not in first_day
    second_day = admin_page(admin, "/admin/audit?since=2026-11-18")
    assert "bac-cj" in second_day and "user_created" in second_day
    assert re.search(r'<input id="since" name="since" type="date" value="2026-11-18"', second_day)
    bad = admin.get("/admin/audit?since=18/11/2026")
    assert bad.status_code == 400 and field_error(bad, "since")

    # The district's admin sees only what is about its district.
    district = admin_page(signed_in(app, "quan-tri-bac"), "/admin/audit")
    assert "Huyện Cư Jút" in district and "Huyện Krông Nô" not in district and "nam-kn" not in district

    # Pages of 50, newest first; "older entries" keeps the filters.
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        for i in range(60):
            audit.record(session, Actor("cli:root"), "export_written", clock.advance(seconds=1),
                         target=f"campaign:{tree['running']}", agency_id=tree["north"], file=f"xuat-{i}.xlsx")
    first = admin_page(admin, "/admin/audit?action=export_written")
    assert re.findall(r"xuat-(\d+)\.xlsx", first) == [str(i) for i in range(59, 9, -1)]
    older = re.search(r'href="(/admin/audit\?action=export_written&amp;before=\d+)"', first)
    assert older is not None
    second = admin_page(admin, older.group(1).replace("&amp;", "&"))
    assert re.findall(r"xuat-(\d+)\.xlsx", second) == [str(i) for i in range(9, -1, -1)]
    assert 'href="/admin/audit?action=export_written"' in second and "before=" not in second.split("</table>")[1]


def test_the_api_filters_the_audit_log_by_actor_and_time_too(app: Flask, make_user: Any, clock: Any) -> None:
    make_user("quan-tri", ("admin", None))
    signed_in(app, "quan-tri")
    clock.advance(hours=2)
    make_user("binh", ("viewer", None))
    signed_in(app, "binh")
    admin = signed_in(app, "quan-tri")
    everything = admin.get("/api/v1/audit").json
    assert [e["actor"].split(" ")[1] for e in everything] == ["quan-tri", "binh", "quan-tri"]
    assert [e["actor"] for e in admin.get("/api/v1/audit?actor=BINH").json] == [everything[1]["actor"]]
    since = admin.get("/api/v1/audit", query_string={"since": "2026-11-17T03:00:00"}).json   # no offset: UTC
    assert len(since) == 2
    until = admin.get("/api/v1/audit", query_string={"until": "2026-11-17T10:00:00+07:00"}).json
    assert len(until) == 1
    # A token's expiry without an offset is UTC too (it used to fail comparing naive and aware times).
    issued = admin.post("/api/v1/tokens", json={"name": "x", "scopes": ["campaigns:read"],
                                                "expires_at": "2027-01-01T00:00:00"})
    assert issued.status_code == 201 and issued.json["expires_at"].startswith("2027-01-01T00:00:00")
    assert row(app, ApiToken, id=issued.json["id"]).expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert timedelta(0) < row(app, ApiToken, id=issued.json["id"]).expires_at - clock()
    assert audit_rows(app, "token_created")[0].detail is not None
    assert count(app, AuditEntry, AuditEntry.action == "login") == 3


def test_the_pages_in_english(app: Flask, tree: dict[str, int], make_user: Any) -> None:
    make_user("quan-tri", ("admin", None))
    admin = signed_in(app, "quan-tri")
    admin.get("/lang/en?next=/opt-outs")
    opt_outs = text_of(admin.get("/opt-outs"))
    assert '<html lang="en">' in opt_outs and "Opt-outs" in opt_outs and "The do-not-contact list is empty." in opt_outs
    looked = text_of(post_form(admin, "/opt-outs/search", phone="0912345678"))
    assert f"{NUMBER} is not on the do-not-contact list" in looked and "Add to the do-not-contact list" in looked
    users = admin_page(admin)
    assert "New user" in users and options(users, "agency_id")[0] == "Whole installation"
    assert options(users, "role") == ["Admin", "Manager", "Operator", "Viewer"]
    assert "Permissions" in admin_page(admin, "/admin/tokens") and "Actor" in admin_page(admin, "/admin/audit")
