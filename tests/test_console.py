"""The operator console without a browser: sign-in redirects, the campaigns list per role
and agency scope, filters, htmx fragments, languages and number formats, and the
translation catalogs. The same pages in a real browser are in test_console_browser.py."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from ivr_service.services import campaigns

from .conftest import ROOT, phones
from .test_access import Browser, cheap_hashing, make_user, signed_in  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def tree(app: Flask, make_agency: Callable[..., int], make_campaign: Callable[..., int]) -> dict[str, int]:
    """A province with two districts; a running campaign in one, a draft in the other."""
    province = make_agency("DN", "Tỉnh Đắk Nông")
    north = make_agency("DN-N", "Huyện Cư Jút", parent_id=province)
    south = make_agency("DN-S", "Huyện Krông Nô", parent_id=province)
    running = make_campaign(phones(12), agency=north, name="Quý 4 Cư Jút", target_completes=10)
    draft = make_campaign(agency=south, name="Quý 4 Krông Nô")
    return {"province": province, "north": north, "south": south, "running": running, "draft": draft}


def text_of(response: Any) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_a_page_sends_anonymous_people_to_sign_in_and_back(app: Flask, make_user: Any) -> None:
    make_user("van", ("viewer", None))
    person = Browser(app)
    asked = person.client.get("/campaigns?status=running", auth=False)
    assert asked.status_code == 302
    assert asked.headers["Location"] == "/auth/login?next=%2Fcampaigns%3Fstatus%3Drunning"
    page = person.client.get(asked.headers["Location"], auth=False)
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and '<html lang="vi">' in body and "Đăng nhập SIPAS" in body
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', body)
    assert csrf is not None and 'name="next" value="/campaigns?status=running"' in body
    signed = person.client.post("/auth/login", auth=False, data={
        "username": "van", "password": "mat-khau-du-dai-1", "csrf_token": csrf.group(1),
        "next": "/campaigns?status=running"})
    assert signed.status_code == 302 and signed.headers["Location"] == "/campaigns?status=running"
    assert person.client.get("/campaigns", auth=False).status_code == 200
    # htmx requests are told where to sign in instead of getting the page.
    anonymous = Browser(app).client.get("/campaigns", auth=False, headers={"HX-Request": "true"})
    assert anonymous.status_code == 401 and anonymous.headers["HX-Redirect"].startswith("/auth/login?next=")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_sign_in_and_language_switch_only_return_to_this_site(app: Flask, make_user: Any, target: str) -> None:
    make_user("van", ("viewer", None))
    person = Browser(app)
    body = person.client.get("/auth/login", auth=False).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', body)
    assert csrf is not None
    signed = person.client.post("/auth/login", auth=False, data={
        "username": "van", "password": "mat-khau-du-dai-1", "csrf_token": csrf.group(1), "next": target})
    assert signed.headers["Location"] == "/"
    switched = person.client.get(f"/lang/en?next={target}", auth=False)
    assert switched.status_code == 302 and switched.headers["Location"] == "/"


def test_the_list_shows_each_role_only_its_part_of_the_tree(app: Flask, tree: dict[str, int],
                                                            make_user: Any) -> None:
    make_user("tinh", ("viewer", tree["province"]))
    make_user("bac", ("operator", tree["north"]))
    province = text_of(signed_in(app, "tinh").get("/campaigns"))
    assert "Quý 4 Cư Jút" in province and "Quý 4 Krông Nô" in province
    # The province first, its districts below it, indented.
    assert province.index("Tỉnh Đắk Nông") < province.index("Huyện Cư Jút") < province.index("Quý 4 Cư Jút")
    assert re.search(r'padding-left: 1\.75rem">Huyện Cư Jút', province)
    north = text_of(signed_in(app, "bac").get("/campaigns"))
    assert "Quý 4 Cư Jút" in north and "Quý 4 Krông Nô" not in north and "Huyện Krông Nô" not in north
    assert re.search(r'padding-left: 0\.5rem">Huyện Cư Jút', north)     # its own root


def test_each_row_shows_status_progress_completes_today_rate_and_activity(
        app: Flask, tree: dict[str, int], make_user: Any, make_call: Any, claim: Any, clock: Any) -> None:
    make_user("tinh", ("viewer", tree["province"]))
    page = text_of(signed_in(app, "tinh").get("/campaigns"))
    row = re.search(r'<tr data-campaign="%d">(.*?)</tr>' % tree["running"], page)
    assert row is not None
    assert "Đang chạy" in row.group(1) and "0/10 phiếu hoàn thành" in row.group(1) and "–" in row.group(1)
    # One complete interview today.
    [claimed, *_] = claim()
    from .conftest import Call
    call = Call(app.test_client(), claimed)
    call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "2"})
    call.status("completed", CallDuration="120")
    page = text_of(signed_in(app, "tinh").get("/campaigns"))
    row = re.search(r'<tr data-campaign="%d">(.*?)</tr>' % tree["running"], page)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert "1/10 phiếu hoàn thành" in cells[1]
    assert cells[2].strip() == "1"                                   # completes today
    assert cells[3].strip() == "100,0%"                              # RR1, Vietnamese decimal comma
    local = clock().astimezone(__import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh"))
    assert cells[4].strip() == local.strftime("%d/%m/%Y %H:%M")      # last activity, local time


def test_filters_and_search_and_the_htmx_fragment(app: Flask, tree: dict[str, int], make_user: Any) -> None:
    make_user("tinh", ("viewer", tree["province"]))
    person = signed_in(app, "tinh")
    running = text_of(person.get("/campaigns?status=running"))
    assert "Quý 4 Cư Jút" in running and "Quý 4 Krông Nô" not in running
    found = text_of(person.get("/campaigns?q=krông"))
    assert "Quý 4 Krông Nô" in found and "Quý 4 Cư Jút" not in found
    none = text_of(person.get("/campaigns?q=100%25_"))                 # LIKE wildcards are literal
    assert "Không có chiến dịch nào phù hợp." in none
    fragment = person.get("/campaigns?q=krông", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "Quý 4 Krông Nô" in fragment
    ignored = text_of(person.get("/campaigns?status=bogus"))           # an unknown status filters nothing
    assert "Quý 4 Cư Jút" in ignored and "Quý 4 Krông Nô" in ignored


def test_english_on_request_with_english_number_formats(app: Flask, tree: dict[str, int],
                                                        make_user: Any) -> None:
    make_user("tinh", ("viewer", tree["province"]))
    person = signed_in(app, "tinh")
    vietnamese = text_of(person.get("/campaigns"))
    assert '<html lang="vi">' in vietnamese and "Chiến dịch" in vietnamese and "Đăng xuất" in vietnamese
    assert person.get("/lang/en?next=/campaigns").headers["Location"] == "/campaigns"
    english = text_of(person.get("/campaigns"))
    assert '<html lang="en">' in english and "Campaigns" in english and "Sign out" in english
    assert "0 of 10 completes" in english and "Đăng xuất" not in english
    assert 'href="/lang/vi?next=' in english


def test_signing_out_from_the_console_returns_to_the_sign_in_page(app: Flask, make_user: Any) -> None:
    make_user("van", ("viewer", None))
    person = signed_in(app, "van")
    page = person.get("/campaigns").get_data(as_text=True)
    token = re.search(r'<input type="hidden" name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    out = person.client.post("/auth/logout", data={"csrf_token": token.group(1)}, auth=False)
    assert out.status_code == 302 and out.headers["Location"] == "/auth/login"
    assert person.client.get("/campaigns", auth=False).status_code == 302


def test_every_console_message_has_a_vietnamese_translation_and_the_catalogs_are_compiled() -> None:
    checked = subprocess.run([sys.executable, str(ROOT / "scripts" / "i18n.py"), "check"],
                             capture_output=True, text=True, cwd=ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_empty_installation_lists_nothing_without_failing(app: Flask, make_user: Any) -> None:
    make_user("van", ("admin", None))
    page = text_of(signed_in(app, "van").get("/campaigns"))
    assert "Không có chiến dịch nào phù hợp." in page
    with app.extensions["sipas"].db.begin() as session:
        assert campaigns.list_campaigns(session) == []
