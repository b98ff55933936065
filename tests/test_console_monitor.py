"""The monitor of one campaign in the console, without a browser: what it shows for a
campaign with a mix of outcomes, the polled fragment, the pace and forecast as time
moves, agency scope and roles, steering through the confirmation page (reasons, audit
entries, the API's code path), and the settings form (the API's messages beside the
field at fault, nothing changed on error, only what changed sent). The same pages in a
real browser are in test_console_monitor_browser.py; the forecast's arithmetic in
test_monitor_forecast.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from ivr_service.persistence.models import Campaign, CampaignStatus
from ivr_service.services import buckets, monitor

from .conftest import Call, phones, row
from .test_access import Browser, audit_rows, cheap_hashing, make_user, signed_in  # noqa: F401  (fixtures)
from .test_console import text_of

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def tree(make_agency: Callable[..., int], make_campaign: Callable[..., int]) -> dict[str, int]:
    """A province with two districts: a running campaign of six contacts in the north (target
    10), a draft in the south."""
    province = make_agency("DN", "Tỉnh Đắk Nông")
    north = make_agency("DN-N", "Huyện Cư Jút", parent_id=province)
    south = make_agency("DN-S", "Huyện Krông Nô", parent_id=province)
    running = make_campaign(phones(6), agency=north, name="Quý 4 Cư Jút", target_completes=10)
    draft = make_campaign(agency=south, name="Quý 4 Krông Nô")
    return {"province": province, "north": north, "south": south, "running": running, "draft": draft}


def play(app: Flask, claimed: Any, outcome: str) -> None:
    """One call through the signed webhooks, ending as ``outcome``."""
    call = Call(app.test_client(), claimed)
    if outcome == "complete":
        call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "2"})
        call.status("completed", CallDuration="95")
    elif outcome == "refused":
        call.answer()
        call.press("CONSENT", "9")
        call.status("completed", CallDuration="12")
    elif outcome == "live":
        call.answer()
    elif outcome == "failed":
        call.status("failed", ErrorCode="31005")
    else:
        call.status(outcome)


def section(page: str, heading_id: str) -> str:
    """The text of the <section> whose heading has ``heading_id``."""
    found = re.search(rf'<section[^>]*aria-labelledby="{heading_id}".*?</section>', page)
    assert found is not None, heading_id
    return found.group(0)


def rows(page: str, table_id: str) -> list[list[str]]:
    """The cells (th and td, tags stripped) of each body row of the table ``table_id``."""
    found = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page)
    assert found is not None, table_id
    body = re.search(r"<tbody>(.*?)</tbody>", found.group(0))
    assert body is not None
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr)]
            for tr in re.findall(r"<tr>(.*?)</tr>", body.group(1))]


def csrf_of(page: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    return token.group(1)


# ============================================================================ what it shows

def test_the_monitor_shows_a_mix_of_outcomes(app: Flask, tree: dict[str, int], make_user: Any, claim: Any,
                                             clock: Any) -> None:
    make_user("tinh", ("viewer", tree["province"]))
    claimed = claim()
    assert len(claimed) == 6
    for item, outcome in zip(claimed, ["complete", "refused", "busy", "no-answer", "failed", "live"], strict=True):
        play(app, item, outcome)
    page = text_of(signed_in(app, "tinh").get(f"/campaigns/{tree['running']}"))

    assert "<h1>Quý 4 Cư Jút</h1>" in page and "Huyện Cư Jút" in page
    assert '<span class="status status-running">Đang chạy</span>' in page
    assert 'Cập nhật lúc <time datetime="2026-11-17T02:00:00+00:00">09:00:00</time>' in page
    completes = section(page, "completes-title")
    assert '<p class="big">1/10</p>' in completes
    assert "1 trong 24 giờ qua, 1 trong 7 ngày qua." in completes
    assert "Chưa đủ dữ liệu để dự báo" in completes        # less than an open hour since the start
    now = section(page, "now-title")
    assert '<p class="big">1</p>' in now                   # the call still on the line
    assert "Lượt liên hệ: 6 trong giờ qua, tổng cộng 6." in now
    window = section(page, "window-title")                 # Tuesday 09:00 in Hà Nội
    assert "Mở" in window and "Đến 17:00." in window and "Mở lại lúc 08:00 Thứ Tư 18/11." in window
    contacts = section(page, "contacts-title")
    assert re.search(r"Đang chờ liên hệ</th><td class=\"num\">3<", contacts)   # busy, no answer, failed
    assert re.search(r"Đang liên hệ</th><td class=\"num\">1<", contacts)
    assert re.search(r"Đã có kết quả</th><td class=\"num\">2<", contacts)
    assert re.search(r"Tất cả</th><td class=\"num\">6<", contacts)
    assert rows(page, "dispositions") == [["1.1", "Hoàn thành", "1"], ["2.11", "Từ chối", "1"]]
    rates = dict((r[0].split()[0], r[1]) for r in rows(page, "rates"))
    assert rates == {"RR1": "50,0%", "RR2": "50,0%", "COOP1": "50,0%", "REF1": "50,0%", "CON1": "100,0%"}
    assert rows(page, "errors") == [["31005", "1", "09:00:00"]]
    # The charts: an SVG for the eye, the same numbers in a table for screen readers.
    assert re.search(r'<svg [^>]*aria-hidden="true"', page)
    per_hour = re.search(r'id="per-hour-numbers">.*?</details>', page)
    assert per_hour is not None
    hours = re.findall(r'<th scope="row">(\d\d:\d\d)</th><td class="num">(\d+)</td>', per_hour.group(0))
    assert len(hours) == 24 and hours[0] == ("10:00", "0") and hours[-1] == ("09:00", "6")
    per_day = re.search(r'id="per-day-numbers">.*?</details>', page)
    assert per_day is not None
    days = re.findall(r'<th scope="row">([\d/]+)</th><td class="num">(\d+)</td>', per_day.group(0))
    assert len(days) == 14 and days[0] == ("04/11/2026", "0") and days[-1] == ("17/11/2026", "1")
    # Polled every 5 s while visible; the call figures are loaded once, not polled.
    assert (f'hx-get="/campaigns/{tree["running"]}/live" hx-trigger="every 5s [visible()], refresh" data-live'
            in page)
    assert f'hx-get="/campaigns/{tree["running"]}/calls" hx-trigger="load"' in page
    assert f'<a href="/campaigns/{tree["running"]}/calls">' in page   # without JavaScript, a link


def test_the_polled_fragment_has_no_layout_and_follows_the_clock(app: Flask, tree: dict[str, int], make_user: Any,
                                                                  claim: Any, clock: Any) -> None:
    make_user("tinh", ("viewer", tree["province"]))
    person = signed_in(app, "tinh")
    live = f"/campaigns/{tree['running']}/live"
    fragment = text_of(person.get(live))
    assert "<html" not in fragment and "<nav" not in fragment and "Đăng xuất" not in fragment
    assert "09:00:00" in fragment and '<p class="big">0/10</p>' in fragment
    [first, *others] = claim()
    play(app, first, "complete")
    clock.advance(minutes=3, seconds=7)
    fragment = text_of(person.get(live))
    assert "09:03:07" in fragment and '<p class="big">1/10</p>' in fragment
    assert '<p class="big">5</p>' in fragment                # the other five are queued for a call
    # After 17:00 the window is closed until Wednesday morning.
    clock.advance(hours=8)
    fragment = text_of(person.get(live))
    assert "Đóng" in section(fragment, "window-title") and "Mở lúc 08:00 Thứ Tư 18/11." in fragment
    # In English on request, with English dates and numbers.
    person.get("/lang/en?next=/")
    english = text_of(person.get(live))
    assert "Updated at <time" in english and "17:03:07" in english and "Opens 08:00 Wednesday 18/11." in english
    assert '<p class="big">1 of 10</p>' in english and "Closed" in english


def test_pace_and_forecast_as_time_passes(app: Flask, make_campaign: Any, make_user: Any, claim: Any,
                                          clock: Any) -> None:
    make_user("van", ("viewer", None))
    campaign = make_campaign(phones(6), target_completes=6, ends_at=clock() + timedelta(days=30))
    person = signed_in(app, "van")
    for item in claim()[:2]:
        play(app, item, "complete")
    clock.advance(hours=2)                                  # 11:00: two completes in two open hours
    page = text_of(person.get(f"/campaigns/{campaign}/live"))
    forecast = section(page, "completes-title")
    assert "Tốc độ 7 ngày qua: 1,0 phiếu hoàn thành mỗi giờ mở của khung giờ gọi." in forecast
    # Four more at one an open hour: 11:00 → 15:00 the same day, before the end date.
    assert "chỉ tiêu sẽ đạt vào khoảng 15:00 Thứ Ba 17/11/2026." in forecast
    assert "Tức là trước ngày kết thúc (17/12/2026 09:00)." in forecast
    # The next morning nothing more came in: two completes over the 9 open hours since the
    # start (08–17 on Tuesday from 09:00, 08–09 today); four more take 18 open hours.
    clock.advance(hours=22)                                 # Wednesday 09:00
    page = text_of(person.get(f"/campaigns/{campaign}/live"))
    forecast = section(page, "completes-title")
    assert "2 trong 24 giờ qua" in forecast
    assert "0,2 phiếu hoàn thành mỗi giờ mở" in forecast
    assert "chỉ tiêu sẽ đạt vào khoảng 09:00 Thứ Sáu 20/11/2026." in forecast
    # Paused: the forecast says what it assumes.
    with app.extensions["sipas"].db.begin() as session:
        session.get(Campaign, campaign).status = CampaignStatus.PAUSED
    page = text_of(person.get(f"/campaigns/{campaign}/live"))
    assert "Chiến dịch đang tạm dừng: dự báo giả định chiến dịch tiếp tục ngay bây giờ." in page


def test_the_end_date_comes_first_at_a_slow_pace(app: Flask, make_campaign: Any, make_user: Any, claim: Any,
                                                 clock: Any) -> None:
    make_user("van", ("viewer", None))
    campaign = make_campaign(phones(3), target_completes=100, ends_at=clock() + timedelta(days=1))
    [first, *_] = claim()
    play(app, first, "complete")
    clock.advance(hours=1)                                  # one complete in the first open hour
    page = text_of(signed_in(app, "van").get(f"/campaigns/{campaign}/live"))
    # 10:00 → 17:00 today and 08:00 → 09:00 tomorrow: 8 open hours, 8 more completes.
    assert "ngày kết thúc (18/11/2026 09:00) sẽ đến trước, khi đó có khoảng 9 phiếu hoàn thành." in page


def test_call_length_and_cost_load_once_as_a_fragment_or_a_page(app: Flask, tree: dict[str, int],
                                                                 make_user: Any, claim: Any) -> None:
    make_user("tinh", ("viewer", tree["province"]))
    person = signed_in(app, "tinh")
    [first, *_] = claim()
    play(app, first, "complete")
    path = f"/campaigns/{tree['running']}/calls"
    fragment = text_of(person.get(path, headers={"HX-Request": "true"}))
    assert "<html" not in fragment
    assert rows(fragment, "call-costs")[:3] == [["Cuộc gọi kết nối được", "1"], ["Số phút tính cước", "2"],
                                                ["Thời lượng trung bình một cuộc gọi", "95,0 giây"]]
    page = text_of(person.get(path))
    assert "<html" in page and "Quay lại trang theo dõi" in page and 'id="call-costs"' in page


# ============================================================================ scope and roles

def test_another_districts_campaign_is_not_found(app: Flask, tree: dict[str, int], make_user: Any) -> None:
    make_user("bac", ("manager", tree["north"]))
    person = signed_in(app, "bac")
    assert person.get(f"/campaigns/{tree['running']}").status_code == 200
    for path in ("", "/live", "/calls", "/settings", "/steer?action=cancel"):
        response = person.get(f"/campaigns/{tree['draft']}{path}")
        assert response.status_code == 404, path
        assert "Krông Nô" not in response.get_data(as_text=True)
    refused = person.post(f"/campaigns/{tree['draft']}/steer", data={"action": "cancel", "reason": "thử"})
    assert refused.status_code == 404
    assert row(app, Campaign, id=tree["draft"]).status == CampaignStatus.DRAFT
    assert person.get("/campaigns/999999").status_code == 404


def test_a_viewer_sees_no_steering_and_may_not_steer(app: Flask, tree: dict[str, int], make_user: Any) -> None:
    make_user("tinh", ("viewer", tree["province"]))
    person = signed_in(app, "tinh")
    page = text_of(person.get(f"/campaigns/{tree['running']}"))
    assert 'class="steering"' not in page and "/steer" not in page and "/settings" not in page
    assert person.get(f"/campaigns/{tree['running']}/steer?action=pause").status_code == 403
    assert person.post(f"/campaigns/{tree['running']}/steer", data={"action": "pause", "reason": "x"}
                       ).status_code == 403
    assert person.get(f"/campaigns/{tree['running']}/settings").status_code == 403
    assert row(app, Campaign, id=tree["running"]).status == CampaignStatus.RUNNING


def test_buttons_follow_the_role_and_the_state(app: Flask, tree: dict[str, int], make_user: Any) -> None:
    make_user("bac-op", ("operator", tree["north"]))
    make_user("bac-ql", ("manager", tree["north"]))
    make_user("nam-ql", ("manager", tree["south"]))
    operator = text_of(signed_in(app, "bac-op").get(f"/campaigns/{tree['running']}"))
    assert re.findall(r'id="steer-(\w+)"', operator) == ["pause"] and "/settings" not in operator
    manager = text_of(signed_in(app, "bac-ql").get(f"/campaigns/{tree['running']}"))
    assert re.findall(r'id="steer-(\w+)"', manager) == ["pause", "cancel"]
    assert f'href="/campaigns/{tree["running"]}/settings"' in manager
    draft = text_of(signed_in(app, "nam-ql").get(f"/campaigns/{tree['draft']}"))
    assert re.findall(r'id="steer-(\w+)"', draft) == ["start", "cancel"]
    # An operator may not start or cancel, even by typing the address.
    operator_browser = signed_in(app, "bac-op")
    assert operator_browser.get(f"/campaigns/{tree['running']}/steer?action=cancel").status_code == 403
    assert operator_browser.post(f"/campaigns/{tree['running']}/steer",
                                 data={"action": "cancel", "reason": "thử"}).status_code == 403
    # An action the state does not allow goes back to the monitor with a message.
    asked = operator_browser.get(f"/campaigns/{tree['running']}/steer?action=resume")
    assert asked.status_code == 302 and asked.headers["Location"] == f"/campaigns/{tree['running']}"
    assert "Trạng thái hiện tại của chiến dịch không cho phép thao tác này." in text_of(
        operator_browser.get(asked.headers["Location"]))


# ============================================================================ steering

def test_pause_needs_a_reason_then_pause_and_resume_are_audited(app: Flask, tree: dict[str, int],
                                                                make_user: Any) -> None:
    user_id = make_user("bac", ("operator", tree["north"]))
    person = signed_in(app, "bac")
    campaign = tree["running"]
    confirm = text_of(person.get(f"/campaigns/{campaign}/steer?action=pause"))
    assert "Xác nhận: Tạm dừng" in confirm and "Lý do (bắt buộc, được ghi vào nhật ký kiểm tra)" in confirm
    assert re.search(r'<textarea id="reason" name="reason"[^>]* required aria-required="true"', confirm)
    # The form as a browser without JavaScript sends it: its own CSRF token, no header.
    form = {"csrf_token": csrf_of(confirm), "action": "pause"}
    missing = person.client.post(f"/campaigns/{campaign}/steer", data={**form, "reason": "   "}, auth=False)
    assert missing.status_code == 400
    again = text_of(missing)
    assert ('<span class="field-error" id="reason-error"><span lang="en">reason: required to pause a campaign'
            '</span></span>') in again
    assert re.search(r'<textarea id="reason"[^>]*aria-invalid="true" aria-describedby="reason-error"', again)
    assert row(app, Campaign, id=campaign).status == CampaignStatus.RUNNING
    assert audit_rows(app, "campaign_pause") == []

    paused = person.client.post(f"/campaigns/{campaign}/steer", auth=False,
                                data={**form, "csrf_token": csrf_of(again), "reason": "Tổng đài bảo trì"})
    assert paused.status_code == 303 and paused.headers["Location"] == f"/campaigns/{campaign}"
    monitor = text_of(person.get(paused.headers["Location"]))
    assert '<p class="flash success" role="status">Đã tạm dừng chiến dịch.</p>' in monitor
    assert re.findall(r'id="steer-(\w+)"', monitor) == ["resume"]
    assert row(app, Campaign, id=campaign).status == CampaignStatus.PAUSED
    [entry] = audit_rows(app, "campaign_pause")
    assert (entry.actor, entry.target, entry.agency_id, entry.detail) == (
        f"user:{user_id} bac", f"campaign:{campaign}", tree["north"], {"reason": "Tổng đài bảo trì"})

    confirm = text_of(person.get(f"/campaigns/{campaign}/steer?action=resume"))
    assert "Lý do (không bắt buộc" in confirm and " required" not in confirm
    resumed = person.client.post(f"/campaigns/{campaign}/steer", auth=False,
                                 data={"csrf_token": csrf_of(confirm), "action": "resume", "reason": ""})
    assert resumed.status_code == 303
    assert row(app, Campaign, id=campaign).status == CampaignStatus.RUNNING
    [entry] = audit_rows(app, "campaign_resume")
    assert entry.actor == f"user:{user_id} bac" and entry.detail is None


def test_a_form_without_its_csrf_token_changes_nothing(app: Flask, tree: dict[str, int], make_user: Any) -> None:
    make_user("bac", ("operator", tree["north"]))
    person = signed_in(app, "bac")
    refused = person.client.post(f"/campaigns/{tree['running']}/steer", auth=False,
                                 data={"action": "pause", "reason": "không có mã"})
    assert refused.status_code == 400
    assert row(app, Campaign, id=tree["running"]).status == CampaignStatus.RUNNING


def test_cancel_by_a_manager_and_a_conflict_shown_on_the_form(app: Flask, tree: dict[str, int],
                                                              make_user: Any) -> None:
    make_user("nam", ("manager", tree["south"]))
    person = signed_in(app, "nam")
    draft = tree["draft"]
    # A draft without a sample cannot start: the service's message, on the confirmation page.
    started = person.post(f"/campaigns/{draft}/steer", data={"action": "start", "reason": ""})
    assert started.status_code == 409
    assert (f'<p class="error" role="alert" id="steer-error"><span lang="en">cannot start campaign {draft}: '
            f'it has no sampled contacts yet</span></p>') in text_of(started)
    no_reason = person.post(f"/campaigns/{draft}/steer", data={"action": "cancel", "reason": ""})
    assert no_reason.status_code == 400 and "reason: required to cancel a campaign" in text_of(no_reason)
    cancelled = person.post(f"/campaigns/{draft}/steer", data={"action": "cancel", "reason": "Trùng kỳ khảo sát"})
    assert cancelled.status_code == 303
    assert row(app, Campaign, id=draft).status == CampaignStatus.CANCELLED
    assert [e.detail for e in audit_rows(app, "campaign_cancel")] == [{"reason": "Trùng kỳ khảo sát"}]
    monitor = text_of(person.get(f"/campaigns/{draft}"))
    assert "Đã hủy chiến dịch." in monitor and 'class="steering"' not in monitor
    # Nothing changes any more: the page does not poll, and a page still polling is told to stop.
    assert 'hx-trigger="every' not in monitor and '<div id="monitor-live">' in monitor
    assert person.get(f"/campaigns/{draft}/live").status_code == 286
    # Unknown actions go back to the monitor.
    unknown = person.post(f"/campaigns/{draft}/steer", data={"action": "explode"})
    assert unknown.status_code == 303


# ============================================================================ settings

SETTINGS_ERRORS = [
    # (form values, the same change through the API, the control the message is beside)
    ({"hotline": "abc"}, {"hotline": "abc"}, "hotline"),
    ({"closed_dates": "2027-02-11\n2027-02-30"}, {"window": {"closed_dates": ["2027-02-11", "2027-02-30"]}},
     "closed_dates"),
    ({"part1_start": "17:00", "part1_end": "08:00"}, {"window": {"parts": [["17:00", "08:00"]]}}, "parts"),
    ({"max_attempts": "50"}, {"retry": {"max_attempts": 50}}, "max_attempts"),
    ({"delay_busy": "-5"}, {"retry": {"delays": {"busy": -5}}}, "delays"),
    ({"plan1_channel": "voice", "plan1_attempts": "25"}, {"channel_plan": [{"channel": "voice", "max_attempts": 25}]},
     "channel_plan"),
]


def form_of(page: str) -> dict[str, Any]:
    """The values the settings form shows, as a browser would send them."""
    values: dict[str, Any] = {"weekdays": re.findall(r'name="weekdays" value="(\d)" checked', page)}
    for name, value in re.findall(r'<input type="(?:number|time|text|datetime-local)" id="[^"]+" name="([^"]+)"'
                                  r' value="([^"]*)"', page):
        values[name] = value
    for name, value in re.findall(r'<input id="([^"]+)" name="[^"]+" type="[^"]+" value="([^"]*)"', page):
        values[name] = value
    for name, body in re.findall(r'<select id="([^"]+)" name="[^"]+">(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        values[name] = chosen.group(1) if chosen else ""
    closed = re.search(r'<textarea id="closed_dates"[^>]*>(.*?)</textarea>', page, re.S)
    assert closed is not None
    values["closed_dates"] = closed.group(1)
    if re.search(r'name="speech_input" value="on" checked', page):
        values["speech_input"] = "on"
    values["csrf_token"] = csrf_of(page)
    return values


@pytest.mark.parametrize(("typed", "api", "control"), SETTINGS_ERRORS, ids=[c for _, _, c in SETTINGS_ERRORS])
def test_an_invalid_setting_shows_the_apis_message_beside_its_field_and_changes_nothing(
        app: Flask, client: Any, tree: dict[str, int], make_user: Any, typed: dict[str, str],
        api: dict[str, Any], control: str) -> None:
    make_user("bac", ("manager", tree["north"]))
    person = signed_in(app, "bac")
    campaign = tree["running"]
    path = f"/campaigns/{campaign}/settings"
    before = row(app, Campaign, id=campaign)
    shown = form_of(person.get(path).get_data(as_text=True))
    assert shown["weekdays"] == ["0", "1", "2", "3", "4", "5"] and shown["part1_start"] == "08:00"
    assert shown["delay_busy"] == "900" and shown["min_gap_s"] == "86400" and shown["target_completes"] == "10"
    # A valid change (the target) with the invalid one: neither is stored.
    answer = person.client.post(path, data={**shown, "target_completes": "20", **typed}, auth=False)
    expected = client.patch(f"/api/v1/campaigns/{campaign}", json=api)
    assert expected.status_code == 400
    message = expected.json["message"]
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert (f'<span class="field-error" id="{control}-error"><span lang="en">'
            f'{message.replace("&", "&amp;").replace(chr(39), "&#39;")}</span></span>') in page
    assert re.search(rf'aria-describedby="[^"]*\b{control}-error\b', page)
    assert '<a href="#' in page and "Chưa lưu gì." in page        # the summary above the form links to it
    kept = form_of(page)
    assert all(kept[name] == value for name, value in typed.items())   # what was typed, kept
    assert kept["target_completes"] == "20"
    after = row(app, Campaign, id=campaign)
    assert (after.hotline, after.window, after.retry, after.calls_per_second, after.channel_plan, after.ends_at,
            after.target_completes) == (before.hotline, before.window, before.retry, before.calls_per_second,
                                        before.channel_plan, before.ends_at, before.target_completes)
    assert audit_rows(app, "campaign_configured") == []


def test_saving_settings_sends_only_what_changed_and_is_audited(app: Flask, make_agency: Any,
                                                                make_campaign: Any, make_user: Any,
                                                                clock: Any) -> None:
    agency = make_agency()
    # Running since 08:00 with a start date: unchanged, it must not trip "pause first".
    campaign = make_campaign(phones(3), agency=agency, starts_at=clock() - timedelta(hours=1),
                             window={"weekdays": [0, 1, 2, 3, 4], "parts": [["08:00", "11:30"], ["13:30", "17:00"]]})
    user_id = make_user("ql", ("manager", agency))
    person = signed_in(app, "ql")
    path = f"/campaigns/{campaign}/settings"
    shown = form_of(person.get(path).get_data(as_text=True))
    assert shown["starts_at"] == "2026-11-17T08:00" and shown["part2_start"] == "13:30" and shown["part3_start"] == ""
    unchanged = person.client.post(path, data=shown, auth=False)
    assert unchanged.status_code == 303
    assert "Không có gì thay đổi." in text_of(person.get(unchanged.headers["Location"]))
    assert audit_rows(app, "campaign_configured") == []

    changed = {**shown, "hotline": "1022", "closed_dates": "2026-11-20\r\n2026-11-21", "weekdays": ["0", "1", "2"],
               "plan1_channel": "voice", "plan1_attempts": "2", "plan2_channel": "sms", "plan2_attempts": "1",
               "speech_input": "on"}
    saved = person.client.post(path, data={**changed, "csrf_token": shown["csrf_token"]}, auth=False)
    assert saved.status_code == 303 and saved.headers["Location"] == f"/campaigns/{campaign}"
    assert "Đã lưu thiết lập." in text_of(person.get(saved.headers["Location"]))
    stored = row(app, Campaign, id=campaign)
    assert stored.hotline == "1022" and stored.speech_input is True
    assert stored.window["weekdays"] == [0, 1, 2] and stored.window["closed_dates"] == ["2026-11-20", "2026-11-21"]
    assert stored.window["parts"] == [["08:00", "11:30"], ["13:30", "17:00"]]
    assert stored.channel_plan == [{"channel": "voice", "max_attempts": 2}, {"channel": "sms", "max_attempts": 1}]
    assert stored.starts_at == clock() - timedelta(hours=1) and stored.status == CampaignStatus.RUNNING
    [entry] = audit_rows(app, "campaign_configured")
    assert entry.actor == f"user:{user_id} ql" and entry.target == f"campaign:{campaign}"
    assert entry.detail == {"changed": ["channel_plan", "hotline", "speech_input", "window"]}

    # Changing the start date of a running campaign: the service's conflict, beside the field.
    moved = form_of(person.get(path).get_data(as_text=True))
    conflict = person.client.post(path, data={**moved, "starts_at": "2026-11-18T08:00"}, auth=False)
    assert conflict.status_code == 409
    assert ('<span class="field-error" id="starts_at-error"><span lang="en">starts_at: pause the campaign first; '
            'it is running</span></span>') in conflict.get_data(as_text=True)
    assert row(app, Campaign, id=campaign).starts_at == clock() - timedelta(hours=1)
    assert len(audit_rows(app, "campaign_configured")) == 1


def test_a_finished_campaign_shows_its_settings_without_a_save_button(app: Flask, tree: dict[str, int],
                                                                      make_user: Any) -> None:
    make_user("ql", ("manager", tree["south"]))
    person = signed_in(app, "ql")
    assert person.post(f"/campaigns/{tree['draft']}/steer", data={"action": "cancel", "reason": "x"}
                       ).status_code == 303
    page = text_of(person.get(f"/campaigns/{tree['draft']}/settings"))
    assert "Chiến dịch đã kết thúc: không thay đổi thiết lập được nữa." in page
    assert "Lưu thiết lập" not in page


# ============================================================================ what a poll reads

def test_closed_periods_are_read_once_and_only_the_new_one_after_a_boundary() -> None:
    hours = [datetime(2026, 11, 17, h, tzinfo=UTC) for h in range(0, 24)]
    asked: list[list[datetime]] = []

    def count(starts: list[datetime]) -> list[int]:
        asked.append(starts)
        return [start.hour for start in starts[:-1]]     # a stand-in: the hour as its count

    closed = buckets.Closed()
    assert closed.counts("s", hours[0:5], count) == [0, 1, 2, 3]
    assert closed.counts("s", hours[0:5], count) == [0, 1, 2, 3]          # the same hour: nothing read
    assert closed.counts("s", hours[1:6], count) == [1, 2, 3, 4]          # one hour on: only 04–05 read
    assert closed.counts("s", hours[4:9], count) == [4, 5, 6, 7]          # three on: 05–08 in one range
    assert asked == [hours[0:5], hours[4:6], hours[5:9]]
    assert closed.counts("s", hours[0:5], count) == [0, 1, 2, 3]          # back in time: all again
    assert closed.counts("other", hours[4:9], count) == [4, 5, 6, 7]      # each series on its own
    assert asked[-2:] == [hours[0:5], hours[4:9]]


def test_a_polling_monitor_counts_as_one_that_reads_everything(app: Flask, tree: dict[str, int], claim: Any,
                                                               clock: Any) -> None:
    svc = app.extensions["sipas"]
    closed = buckets.Closed()
    claimed = claim()
    for step, item in enumerate(claimed):
        play(app, item, "complete" if step % 2 == 0 else "busy")
        for _ in range(2):
            with svc.db.begin() as session:
                polled = monitor.monitor(session, tree["running"], clock(), closed)
                fresh = monitor.monitor(session, tree["running"], clock())
            assert polled == fresh
            clock.advance(hours=7, minutes=13)        # across hours, days and closed windows
        claim()                                       # the busy contacts' retries, when due
    assert polled.completes == 3 and sum(n for _, n in polled.completes_per_day) == 3
