"""The console pages no other browser test opens, in Chromium (Playwright, Debian's
/usr/bin/chromium): the alerts list and one alert, the reports page, the API docs page and a
campaign's call length and cost, each read as a signed-in viewer and scanned with axe-core
(no serious or critical violation); and the two downloads that take a while (a period report,
a campaign's export) showing their progress while the page stays usable, with and without
JavaScript."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
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
