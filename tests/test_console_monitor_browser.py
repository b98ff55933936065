"""The monitor of a campaign in a real browser (Debian's Chromium through Playwright):
the page updating in place while calls complete on the server, pausing with a reason and
resuming, the settings form with an invalid field then fixed, the same steering without
JavaScript, and an axe-core scan of each page with no serious or critical violation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from ivr_service.persistence.models import Campaign, CampaignStatus

from .conftest import Call, phones, row
from .test_access import audit_rows, cheap_hashing  # noqa: F401  (a fixture)
from .test_console_browser import accessible, base_url, desk, sign_in, user  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cheap_hashing")]


@pytest.fixture
def campaign(live_server: Any, make_agency: Callable[..., int], make_campaign: Callable[..., int]) -> int:
    """A running campaign of five contacts (target four) in a district; the monitor polls
    every second."""
    app = live_server
    app.config["CONSOLE_POLL_SECONDS"] = 1
    agency = make_agency("DN-N", "Huyện Cư Jút", app=app)
    user(app, "xem", "viewer", agency)
    user(app, "van-hanh", "operator", agency)
    user(app, "quan-ly", "manager", agency)
    return make_campaign(phones(5), agency=agency, name="Quý 4 Cư Jút", target_completes=4, app=app)


def completes(page: Page) -> Any:
    return page.locator("section[aria-labelledby=completes-title] .big")


def test_the_monitor_updates_while_calls_complete(live_server: Any, campaign: int, desk: Page, claim: Any,
                                                  clock: Any) -> None:
    app = live_server
    page = desk
    sign_in(page, app, "xem", f"/campaigns/{campaign}")
    expect(page.locator("h1")).to_have_text("Quý 4 Cư Jút")
    expect(completes(page)).to_have_text("0/4")
    expect(page.locator(".stamp time")).to_have_text("09:00:00")
    expect(page.get_by_role("button", name="Tạm dừng…")).to_have_count(0)      # a viewer does not steer
    # The call figures are fetched once after the page loads.
    expect(page.locator("#call-figures")).to_contain_text("Chưa có cuộc gọi nào kết nối được.")
    accessible(page)
    page.evaluate("window.notReloaded = true")
    page.locator("#per-day-numbers summary").click()           # the per-day numbers, kept open across polls
    expect(page.locator("#per-day-numbers")).to_have_attribute("open", "")

    # On the server: a dispatch round, then two citizens answer through the signed webhooks.
    claimed = claim(app=app)
    expect(page.locator("section[aria-labelledby=now-title] .big")).to_have_text("5")
    for item in claimed[:2]:
        call = Call(app.test_client(), item)
        call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "2"})
        call.status("completed", CallDuration="95")
    clock.advance(seconds=30)
    expect(completes(page)).to_have_text("2/4")
    expect(page.locator(".stamp time")).to_have_text("09:00:30")
    expect(page.locator("section[aria-labelledby=now-title] .big")).to_have_text("3")
    expect(page.locator("#dispositions")).to_contain_text("Hoàn thành")
    expect(page.locator("#per-day-numbers")).to_have_attribute("open", "")
    expect(page.locator("#per-day-numbers tbody tr").last).to_contain_text("17/11/2026")
    expect(page.locator("#per-day-numbers tbody tr").last).to_contain_text("2")
    assert page.evaluate("window.notReloaded") is True         # updated in place, never reloaded
    accessible(page)


def test_pause_with_a_reason_then_resume(live_server: Any, campaign: int, desk: Page) -> None:
    app = live_server
    page = desk
    sign_in(page, app, "van-hanh", f"/campaigns/{campaign}", scan=False)
    expect(page.get_by_role("button", name="Hủy chiến dịch…")).to_have_count(0)   # managers cancel
    page.get_by_role("button", name="Tạm dừng…").click()
    expect(page.get_by_role("heading", name="Xác nhận: Tạm dừng")).to_be_visible()
    accessible(page)
    page.get_by_role("button", name="Xác nhận: Tạm dừng").click()             # no reason given
    expect(page.locator("#reason-error")).to_have_text("reason: required to pause a campaign")
    expect(page.get_by_label("Lý do (bắt buộc, được ghi vào nhật ký kiểm tra)")).to_have_attribute(
        "aria-describedby", "reason-error")
    accessible(page)
    assert row(app, Campaign, id=campaign).status == CampaignStatus.RUNNING
    page.get_by_label("Lý do (bắt buộc, được ghi vào nhật ký kiểm tra)").fill("Tổng đài bảo trì đến 14:00")
    page.get_by_role("button", name="Xác nhận: Tạm dừng").click()
    expect(page).to_have_url(f"{base_url(app)}/campaigns/{campaign}")
    expect(page.get_by_role("status").filter(has_text="Đã tạm dừng chiến dịch.")).to_be_visible()
    expect(page.locator(".live-head .status")).to_have_text("Tạm dừng")
    accessible(page)

    page.get_by_role("button", name="Tiếp tục…").click()
    page.get_by_role("button", name="Xác nhận: Tiếp tục").click()
    expect(page.get_by_role("status").filter(has_text="Đã tiếp tục chiến dịch.")).to_be_visible()
    expect(page.locator(".live-head .status")).to_have_text("Đang chạy")
    assert row(app, Campaign, id=campaign).status == CampaignStatus.RUNNING
    assert [(e.action, e.detail) for e in audit_rows(app, "campaign_pause", "campaign_resume")] == [
        ("campaign_pause", {"reason": "Tổng đài bảo trì đến 14:00"}), ("campaign_resume", None)]


def test_configuring_a_campaign_with_one_invalid_field(live_server: Any, campaign: int, desk: Page) -> None:
    app = live_server
    page = desk
    sign_in(page, app, "quan-ly", f"/campaigns/{campaign}", scan=False)
    page.get_by_role("link", name="Thiết lập").click()
    expect(page.get_by_role("heading", name="Thiết lập")).to_be_visible()
    accessible(page)
    hotline = page.get_by_label("Số điện thoại của cơ quan, đọc ở cuối cuộc gọi")
    hotline.fill("gọi tổng đài")
    page.get_by_label("Chỉ tiêu phiếu hoàn thành").fill("5")
    page.get_by_role("button", name="Lưu thiết lập").click()
    message = ("hotline: expected a phone number of 3 to 15 digits such as 1022 or 0261 3822 123, "
               "got 'gọi tổng đài'")
    expect(page.locator("#hotline-error")).to_have_text(message)
    expect(hotline).to_have_attribute("aria-invalid", "true")
    expect(hotline).to_have_attribute("aria-describedby", "hotline-hint hotline-error")
    expect(hotline).to_have_value("gọi tổng đài")                            # what was typed, kept
    expect(page.get_by_label("Chỉ tiêu phiếu hoàn thành")).to_have_value("5")
    expect(page.locator("#error-summary")).to_contain_text("Chưa lưu gì.")
    accessible(page)
    assert row(app, Campaign, id=campaign).target_completes == 4             # nothing stored
    # The summary's link takes the operator to the field.
    page.locator("#error-summary a").click()
    expect(page).to_have_url(f"{base_url(app)}/campaigns/{campaign}/settings#hotline")
    hotline.fill("1022")
    page.get_by_role("button", name="Lưu thiết lập").click()
    expect(page).to_have_url(f"{base_url(app)}/campaigns/{campaign}")
    expect(page.get_by_role("status").filter(has_text="Đã lưu thiết lập.")).to_be_visible()
    expect(completes(page)).to_have_text("0/5")
    stored = row(app, Campaign, id=campaign)
    assert (stored.hotline, stored.target_completes) == ("1022", 5)
    assert [e.detail for e in audit_rows(app, "campaign_configured")] == [
        {"changed": ["hotline", "target_completes"]}]


def test_watching_and_pausing_without_javascript(live_server: Any, campaign: int, browser: Browser) -> None:
    app = live_server
    context = browser.new_context(java_script_enabled=False, locale="vi-VN")
    page = context.new_page()
    try:
        sign_in(page, app, "van-hanh", f"/campaigns/{campaign}", scan=False)
        expect(completes(page)).to_have_text("0/4")
        page.get_by_role("link", name="Xem thời lượng và chi phí các cuộc gọi").click()
        expect(page.locator("#call-figures-title")).to_have_text("Thời lượng và chi phí cuộc gọi")
        page.get_by_role("link", name="Quay lại trang theo dõi").click()
        page.get_by_role("button", name="Tạm dừng…").click()
        page.get_by_label("Lý do (bắt buộc, được ghi vào nhật ký kiểm tra)").fill("Mất điện")
        page.get_by_role("button", name="Xác nhận: Tạm dừng").click()
        expect(page.locator(".live-head .status")).to_have_text("Tạm dừng")
        assert row(app, Campaign, id=campaign).status == CampaignStatus.PAUSED
    finally:
        context.close()
