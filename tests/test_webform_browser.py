"""The web form in a real browser: the system Chromium driven by Playwright, JavaScript
switched off (the form must not need it), against the app behind a real HTTP server.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (Debian's
package; ``.ci/run`` installs it when missing) and scripts/test points
PLAYWRIGHT_BROWSERS_PATH at an empty directory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from ivr_service.persistence.models import Contact, OptOut

from .conftest import count, questionnaire, row
from .test_webform import PHONE, new_link, sms_campaign

pytestmark = pytest.mark.slow


@pytest.fixture
def phone_page(browser: Browser) -> Any:
    """A small phone screen with JavaScript off."""
    context = browser.new_context(java_script_enabled=False, viewport={"width": 360, "height": 640},
                                  locale="vi-VN")
    yield context.new_page()
    context.close()


def base_url(app: Any) -> str:
    return str(app.extensions["sipas"].settings.public_base_url)


def check_accessible(page: Page) -> None:
    """lang on the page, a legend per fieldset, every radio named by its own label, and the
    stop-messages link at the end."""
    assert page.locator("html").get_attribute("lang") in ("vi", "en")
    fieldsets = page.locator("fieldset")
    assert fieldsets.count() == 1 and page.locator("fieldset > legend").count() == 1
    radios = page.locator("input[type=radio]")
    assert radios.count() >= 3
    for i in range(radios.count()):
        radio = radios.nth(i)
        labels = page.locator(f"label[for='{radio.get_attribute('id')}']")
        assert labels.count() == 1
        name = labels.inner_text().strip()
        # The accessible name really comes from the label.
        expect(page.get_by_role("radio", name=name, exact=True)).to_have_count(1)
    expect(page.locator("footer a")).to_have_count(1)


def answer_with(page: Page, label: str, button: str) -> None:
    page.get_by_label(label, exact=True).check()
    page.get_by_role("button", name=button).click()


def test_a_citizen_answers_goes_back_resumes_switches_to_english_and_finishes(
        live_server: Any, make_campaign: Callable[..., int], phone_page: Page) -> None:
    app = live_server
    link = new_link(app, sms_campaign(app, make_campaign))
    q = questionnaire(app)
    page = phone_page
    page.goto(f"{base_url(app)}/s/{link.code.lower()}")
    expect(page.locator("h1")).to_have_text("Tiếp cận dịch vụ")
    expect(page.locator("legend")).to_have_text(q.item("C01").text.vi)
    expect(page.get_by_text("Câu 1/24")).to_be_visible()
    check_accessible(page)

    # Keyboard only: focus the first option, arrow down to "Hài lòng", Enter submits.
    page.locator("input[type=radio]").first.focus()
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Hài lòng", exact=True)).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator("legend")).to_have_text(q.item("C02").text.vi)
    expect(page.get_by_text("Câu 2/24")).to_be_visible()

    # Clicks: a big target (the whole label) and the button.
    page.get_by_text("Rất hài lòng", exact=True).click()
    page.get_by_role("button", name="Tiếp tục").click()
    expect(page.locator("legend")).to_have_text(q.item("C03").text.vi)

    # Back to C02: its answer is shown, and can be changed.
    page.get_by_role("link", name="Quay lại câu trước").click()
    expect(page.locator("legend")).to_have_text(q.item("C02").text.vi)
    expect(page.get_by_label("Rất hài lòng", exact=True)).to_be_checked()
    answer_with(page, "Bình thường", "Tiếp tục")
    expect(page.locator("legend")).to_have_text(q.item("C03").text.vi)

    # Reload, and leave and come back in a new tab: the form resumes at C03.
    page.reload()
    expect(page.locator("legend")).to_have_text(q.item("C03").text.vi)
    again = page.context.new_page()
    again.goto(f"{base_url(app)}/s/{link.code}")
    expect(again.locator("legend")).to_have_text(q.item("C03").text.vi)
    again.close()

    # Submitting with nothing chosen is held back by the browser itself (required).
    page.get_by_role("button", name="Tiếp tục").click()
    expect(page.locator("legend")).to_have_text(q.item("C03").text.vi)

    # English.
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("legend")).to_have_text(q.item("C03").text.en)
    expect(page.get_by_text("Question 3 of 24")).to_be_visible()
    check_accessible(page)
    expect(page.locator("footer a")).to_have_text("Stop messages")

    # The rest, in English, by clicks: "Satisfied", no feedback, "Much" for the needs.
    for _ in range(30):
        if page.locator("fieldset").count() == 0:
            break
        options = page.locator("input[type=radio]")
        label = "Satisfied" if options.count() == 6 else "No" if options.count() == 2 else "Much"
        answer_with(page, label, "Next")
    expect(page.locator("h1")).to_have_text("Thank you!")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    contact = row(app, Contact, id=link.contact_id)
    assert contact.disposition == "1.1"

    # A finished form: reloading shows the thanks again, never a question.
    page.goto(f"{base_url(app)}/s/{link.code}")
    expect(page.locator("h1")).to_have_text("Cảm ơn Ông/bà!")
    assert page.locator("form").count() == 0


def test_the_stop_page_confirms_and_stops_messages(live_server: Any, make_campaign: Callable[..., int],
                                                   phone_page: Page) -> None:
    app = live_server
    link = new_link(app, sms_campaign(app, make_campaign))
    page = phone_page
    page.goto(f"{base_url(app)}/s/{link.code}")
    page.get_by_role("link", name="Từ chối nhận tin").click()
    expect(page.locator("h1")).to_have_text("Từ chối nhận tin nhắn khảo sát")
    assert count(app, OptOut) == 0
    page.get_by_role("button", name="Xác nhận từ chối").click()
    expect(page.locator("h1")).to_have_text("Đã từ chối nhận tin")
    assert row(app, OptOut, phone_e164=PHONE).source == "web"
    assert row(app, Contact, id=link.contact_id).disposition == "2.11"
    page.goto(f"{base_url(app)}/s/{link.code}")
    expect(page.locator("h1")).to_have_text("Đã ghi nhận")


def test_unknown_and_expired_links_in_the_browser(live_server: Any, make_campaign: Callable[..., int],
                                                  phone_page: Page, clock: Any) -> None:
    app = live_server
    link = new_link(app, sms_campaign(app, make_campaign), days=1)
    response = phone_page.goto(f"{base_url(app)}/s/ZZZZZZZZZ")
    assert response is not None and response.status == 404
    expect(phone_page.locator("h1")).to_have_text("Không tìm thấy khảo sát")
    clock.advance(days=2)
    response = phone_page.goto(f"{base_url(app)}/s/{link.code}?lang=en")
    assert response is not None and response.status == 410
    expect(phone_page.locator("h1")).to_have_text("This link has expired")
