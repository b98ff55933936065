"""The console pages no other browser test opens, in Chromium (Playwright, Debian's
/usr/bin/chromium): the alerts list and one alert, the reports page, the API docs page and a
campaign's call length and cost, each read as a signed-in viewer and scanned with axe-core
(no serious or critical violation); and the two downloads that take a while (a period report,
a campaign's export) showing their progress while the page stays usable, with and without
JavaScript."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from ivr_service.persistence.models import Alert, Campaign

from .conftest import Call, phones
from .test_access import cheap_hashing  # noqa: F401  (a fixture)
from .test_console_browser import accessible, base_url, desk, sign_in, user  # noqa: F401  (desk: a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cheap_hashing")]


@pytest.fixture
def unit(live_server: Any, make_agency: Callable[..., int], make_campaign: Callable[..., int],
         claim: Any) -> dict[str, Any]:
    """A district with a running campaign of five contacts, two of whom answered (calls of
    95 s), and a recorded alert on C01 for November 2026; a viewer and a manager there."""
    app = live_server
    agency = make_agency("DN-N", "Huyện Cư Jút", app=app)
    campaign = make_campaign(phones(5), agency=agency, name="Quý 4 Cư Jút", period_start=date(2026, 10, 1),
                             period_end=date(2026, 12, 31), app=app)
    for claimed in claim(app=app)[:2]:
        call = Call(app.test_client(), claimed)
        call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "2"})
        call.status("completed", CallDuration="95")
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        # Recorded as services/alerts.py records one (its rule is tested in test_alerts.py):
        # this test is about the pages that show it.
        alert = Alert(agency_id=agency, item_id="C01", period="2026-11",
                      questionnaire_key=session.get(Campaign, campaign).questionnaire_key,
                      n=40, n_dissatisfied=11, share=11 / 40, created_at=svc.clock())
        session.add(alert)
        session.flush()
        alert_id = alert.id
    user(app, "xem", "viewer", agency)
    user(app, "quan-ly", "manager", agency)
    return {"app": app, "agency": agency, "campaign": campaign, "alert": alert_id}


def test_alerts_list_and_one_alert(unit: dict[str, Any], desk: Page) -> None:
    app, page = unit["app"], desk
    sign_in(page, app, "xem", "/alerts", scan=False)
    expect(page.locator("h1")).to_have_text("Cảnh báo")
    row = page.locator(f'tr[data-alert="{unit["alert"]}"]')
    expect(row).to_contain_text("Huyện Cư Jút")
    expect(row).to_contain_text("27,5%")
    accessible(page)
    row.get_by_role("link").click()
    expect(page).to_have_url(f"{base_url(app)}/alerts/{unit['alert']}")
    expect(page.locator("h1")).to_have_text("27,5% không hài lòng: C01")
    expect(page.get_by_role("link", name="Quý 4 Cư Jút")).to_be_visible()
    accessible(page)


def test_reports_page(unit: dict[str, Any], desk: Page) -> None:
    app, page = unit["app"], desk
    sign_in(page, app, "xem", "/reports", scan=False)
    expect(page.locator("h1")).to_have_text("Báo cáo")
    expect(page.get_by_label("Cơ quan")).to_contain_text("Huyện Cư Jút")
    accessible(page)


def test_api_docs_page(unit: dict[str, Any], desk: Page) -> None:
    app, page = unit["app"], desk
    sign_in(page, app, "xem", "/api/v1/docs", scan=False)
    expect(page).to_have_url(base_url(app) + "/api/v1/docs")
    # Swagger UI renders the spec it fetched: its title and the operations.
    expect(page.get_by_role("heading", level=1)).to_contain_text("SIPAS survey service")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.get_by_label("Servers")).to_be_visible()        # labelled once Swagger UI has rendered
    accessible(page)


def test_call_length_and_cost_page(unit: dict[str, Any], desk: Page) -> None:
    app, page = unit["app"], desk
    sign_in(page, app, "xem", f"/campaigns/{unit['campaign']}/calls", scan=False)
    expect(page.locator("h1")).to_have_text("Quý 4 Cư Jút")
    expect(page.locator("h2#call-figures-title")).to_have_text("Thời lượng và chi phí cuộc gọi")
    figures = page.get_by_role("table", name="Cuộc gọi kết nối được, thời lượng và chi phí")
    expect(figures.get_by_role("row").first).to_contain_text("2")
    accessible(page)


def watch_download(page: Page) -> None:
    """Note, when a download form starts its request, whether its progress line shows and
    its button waits; and mark the page, to tell later that it was never left."""
    page.evaluate("""() => { window.notReloaded = true;
        document.addEventListener('sipas:download-start', (event) => {
            const progress = event.target.querySelector('.progress');
            window.seenProgress = [getComputedStyle(progress).display, progress.getAttribute('role'),
                                   event.target.querySelector('button').disabled,
                                   event.target.getAttribute('aria-busy')]; }); }""")


def test_the_export_shows_its_progress_and_arrives(unit: dict[str, Any], desk: Page) -> None:
    app, page = unit["app"], desk
    path = f"/campaigns/{unit['campaign']}/scores"
    sign_in(page, app, "quan-ly", path, scan=False)
    progress = page.locator("#export-progress")
    expect(progress).to_have_attribute("role", "status")
    expect(progress).to_be_hidden()
    watch_download(page)
    with page.expect_download() as started:
        page.get_by_role("button", name="Tải tệp kết quả (XLSX)").click()
    download = started.value
    assert download.suggested_filename.endswith(".xlsx")
    assert Path(download.path()).read_bytes()[:2] == b"PK"                 # a workbook (a zip)
    assert page.evaluate("window.seenProgress") == ["block", "status", True, "true"]
    assert page.evaluate("window.notReloaded") is True
    expect(page).to_have_url(base_url(app) + path)
    expect(progress).to_be_hidden()
    expect(page.get_by_role("button", name="Tải tệp kết quả (XLSX)")).to_be_enabled()
    expect(page.locator("form[data-download][aria-busy]")).to_have_count(0)
    accessible(page)
    # The campaign's report, on the same page, the same way.
    expect(page.locator("#campaign-report-progress")).to_have_attribute("role", "status")
    with page.expect_download() as started:
        page.get_by_role("button", name="Tải báo cáo (XLSX)").click()
    assert started.value.suggested_filename.endswith(".xlsx")
    assert page.evaluate("window.notReloaded") is True


def test_the_report_shows_its_progress_and_arrives_or_says_what_to_fix(unit: dict[str, Any], desk: Page) -> None:
    app, page = unit["app"], desk
    sign_in(page, app, "xem", "/reports", scan=False)
    progress = page.locator("#report-progress")
    expect(progress).to_have_attribute("role", "status")
    expect(progress).to_be_hidden()
    page.get_by_label("Cơ quan").select_option(str(unit["agency"]))
    # A wrong period: the page says so beside the field, in place.
    page.get_by_label("Kỳ báo cáo").fill("2026-13")
    watch_download(page)
    page.get_by_role("button", name="Tải báo cáo (XLSX)").click()
    expect(page.locator("#period-error")).to_be_visible()
    assert page.evaluate("window.seenProgress") == ["block", "status", True, "true"]
    assert page.evaluate("window.notReloaded") is True
    expect(page).to_have_url(base_url(app) + "/reports")
    accessible(page)
    # Fixed: the workbook arrives.
    page.get_by_label("Kỳ báo cáo").fill("2026-11")
    with page.expect_download() as started:
        page.get_by_role("button", name="Tải báo cáo (XLSX)").click()
    download = started.value
    assert download.suggested_filename.endswith(".xlsx")
    assert Path(download.path()).read_bytes()[:2] == b"PK"
    assert page.evaluate("window.notReloaded") is True
    expect(progress).to_be_hidden()


def test_the_downloads_work_without_javascript(unit: dict[str, Any], browser: Browser) -> None:
    app = unit["app"]
    context = browser.new_context(java_script_enabled=False, locale="vi-VN", accept_downloads=True)
    page = context.new_page()
    try:
        sign_in(page, app, "quan-ly", f"/campaigns/{unit['campaign']}/scores", scan=False)
        expect(page.locator("#export-progress")).to_be_hidden()
        with page.expect_download() as started:
            page.get_by_role("button", name="Tải tệp kết quả (XLSX)").click()
        assert started.value.suggested_filename.endswith(".xlsx")
        page.goto(base_url(app) + "/reports")
        page.get_by_label("Cơ quan").select_option(str(unit["agency"]))
        page.get_by_label("Kỳ báo cáo").fill("2026-11")
        with page.expect_download() as started:
            page.get_by_role("button", name="Tải báo cáo (XLSX)").click()
        assert started.value.suggested_filename.endswith(".xlsx")
    finally:
        context.close()
