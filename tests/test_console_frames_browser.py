"""A campaign's frame and scores pages in Chromium (Playwright, Debian's /usr/bin/chromium):
uploading a messy frame, mapping a column from the drop-down, importing it with the
progress shown while the request runs, reading the sampling report; the same without
JavaScript; reading scores with n and intervals and filtering them; an axe-core scan of
each page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from ivr_service.persistence.models import Contact

from .conftest import Call, count
from .test_access import cheap_hashing  # noqa: F401  (a fixture)
from .test_console_browser import accessible, base_url, desk, sign_in, user  # noqa: F401  (desk: a fixture)
from .test_console_frames import MESSY, PEOPLE, UNKNOWN_COLUMN

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cheap_hashing")]


@pytest.fixture
def draft(live_server: Any, make_agency: Callable[..., int], make_campaign: Callable[..., int],
          tmp_path: Path) -> dict[str, Any]:
    app = live_server
    app.config["FRAME_UPLOAD_DIR"] = str(tmp_path / "uploads")
    agency = make_agency("DN-N", "Huyện Cư Jút", app=app)
    campaign = make_campaign(agency=agency, name="Tháng 11 Cư Jút", period_start=date(2026, 11, 1),
                             period_end=date(2026, 11, 30), app=app)
    frame = tmp_path / "ds-thang-11.csv"
    frame.write_bytes(MESSY)
    user(app, "quan-ly", "manager", agency)
    return {"app": app, "campaign": campaign, "frame": frame, "uploads": tmp_path / "uploads"}


def test_uploading_a_messy_frame_and_importing_it(draft: dict[str, Any], desk: Page) -> None:
    app, page = draft["app"], desk
    path = f"/campaigns/{draft['campaign']}/frame"
    sign_in(page, app, "quan-ly", path, scan=False)
    expect(page.get_by_role("heading", name="Tải lên danh sách hồ sơ")).to_be_visible()
    accessible(page)

    page.get_by_label("Danh sách hồ sơ (CSV hoặc XLSX)").set_input_files(draft["frame"])
    page.get_by_role("button", name="Xem trước", exact=True).click()
    expect(page.get_by_role("heading", name="Xem trước ds-thang-11.csv")).to_be_visible()
    rejected = page.get_by_role("table", name="Dòng bị từ chối")
    expect(rejected.get_by_role("row")).to_have_count(2)             # the header and row 4
    expect(rejected.get_by_role("row").nth(1)).to_contain_text("0912 34")
    expect(page.locator('dd[data-count="eligible"]')).to_have_text("3")
    assert count(app, Contact) == 0
    accessible(page)

    # The date column was not recognised: say what it is and preview again.
    page.get_by_label(UNKNOWN_COLUMN).select_option("returned_on")
    page.get_by_role("button", name="Xem trước lại").click()
    expect(rejected.get_by_role("row")).to_have_count(3)
    expect(rejected.get_by_role("row").nth(2)).to_contain_text("hôm qua")
    expect(page.locator('dd[data-count="eligible"]')).to_have_text("2")
    expect(page.get_by_label(UNKNOWN_COLUMN)).to_have_value("returned_on")

    # While the import runs, the page says so and the button waits.
    page.evaluate("""() => document.addEventListener('htmx:beforeSend', () => {
        window.seenProgress = getComputedStyle(document.getElementById('import-progress')).display;
        window.buttonDisabled = document.querySelector('form.import button').disabled; })""")
    page.get_by_role("button", name="Nhập và chọn mẫu").click()
    expect(page.get_by_role("heading", name="Báo cáo chọn mẫu")).to_be_visible()
    assert page.evaluate("window.seenProgress") == "block" and page.evaluate("window.buttonDisabled") is True
    expect(page.get_by_text("Đã nhập 6 dòng: chọn 2 người và 0 người dự phòng trong số 2 người đủ điều kiện."))\
        .to_be_visible()
    strata = page.get_by_role("table", name="Các tầng: cơ quan × lĩnh vực")
    expect(strata.get_by_role("row")).to_have_count(4)               # header, two strata, total
    expect(strata.get_by_role("row", name="Tổng cộng")).to_contain_text("2")
    expect(page).to_have_url(base_url(app) + path)
    assert count(app, Contact) == 2 and list(draft["uploads"].iterdir()) == []
    accessible(page)
    # A later visit shows the report again.
    page.reload()
    expect(page.get_by_role("heading", name="Báo cáo chọn mẫu")).to_be_visible()


def test_importing_without_javascript(draft: dict[str, Any], browser: Browser) -> None:
    app = draft["app"]
    context = browser.new_context(java_script_enabled=False, locale="vi-VN")
    page = context.new_page()
    try:
        sign_in(page, app, "quan-ly", f"/campaigns/{draft['campaign']}/frame", scan=False)
        page.get_by_label("Danh sách hồ sơ (CSV hoặc XLSX)").set_input_files(draft["frame"])
        page.get_by_role("button", name="Xem trước", exact=True).click()
        expect(page.get_by_role("heading", name="Xem trước ds-thang-11.csv")).to_be_visible()
        page.get_by_role("button", name="Nhập và chọn mẫu").click()
        expect(page.get_by_role("heading", name="Báo cáo chọn mẫu")).to_be_visible()
        expect(page).to_have_url(base_url(app) + f"/campaigns/{draft['campaign']}/frame")
        assert count(app, Contact) == 3
    finally:
        context.close()


@pytest.fixture
def surveyed(live_server: Any, make_agency: Callable[..., int], make_campaign: Callable[..., int],
             claim: Any) -> dict[str, Any]:
    app = live_server
    agency = make_agency("DN-N", "Huyện Cư Jút", app=app)
    campaign = make_campaign([(field, name, phone) for field, name, phone, _ in PEOPLE], agency=agency,
                             name="Quý 4 Cư Jút", app=app)
    for claimed, (_field, _name, _phone, keys) in zip(sorted(claim(app=app), key=lambda c: c.to), PEOPLE,
                                                      strict=True):
        call = Call(app.test_client(), claimed)
        call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "2", **keys})
        call.status("completed", CallDuration="180")
    user(app, "xem", "viewer", agency)
    return {"app": app, "campaign": campaign}


def test_reading_scores(surveyed: dict[str, Any], desk: Page) -> None:
    app, page = surveyed["app"], desk
    sign_in(page, app, "xem", f"/campaigns/{surveyed['campaign']}/scores", scan=False)
    expect(page.locator('dd[data-figure="respondents"]')).to_have_text("6")
    factors = page.get_by_role("table", name="Chỉ số theo yếu tố")
    factor = factors.get_by_role("row").filter(has=page.locator('[data-figure="index"]')).first
    expect(factor).to_contain_text("I.")
    expect(factor.locator('[data-figure="ci"]')).to_have_text(re.compile(r"\d+,\d% – \d+,\d%"))
    criteria = page.get_by_role("table", name="Chỉ số theo tiêu chí")
    c01 = criteria.locator('tr[data-criterion="C01"]')
    expect(c01.locator('[data-figure="n"]')).to_have_text("6 (ít)")
    expect(c01).to_contain_text("trên 25 %")
    expect(c01).to_have_class("small-cell")
    expect(page.get_by_text("Số liệu màu xám có ghi “(ít)”")).to_be_visible()
    for _field, name, phone, _keys in PEOPLE:
        expect(page.get_by_text(name)).to_have_count(0)
        expect(page.get_by_text(phone)).to_have_count(0)
    accessible(page)
    # Filtering by field narrows n.
    page.get_by_label("Lĩnh vực").select_option("Môi trường")
    page.get_by_role("button", name="Áp dụng").click()
    expect(page.locator('dd[data-figure="respondents"]')).to_have_text("2")
    expect(c01.locator('[data-figure="n"]')).to_have_text("2 (ít)")
    accessible(page)
