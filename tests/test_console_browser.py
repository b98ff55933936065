"""The operator console in a real browser (Debian's Chromium driven by Playwright): signing
in, the campaigns list per role and agency scope, filtering in place, the English switch,
and an accessibility scan (axe-core) of each page with no serious or critical violation.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (Debian's
package; ``.ci/run`` installs it when missing) and scripts/test points
PLAYWRIGHT_BROWSERS_PATH at an empty directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from ivr_service.core.access import Grant, Role
from ivr_service.services import access

from .conftest import phones
from .test_access import PASSWORD, cheap_hashing  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cheap_hashing")]
AXE = Axe()


def accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    results = AXE.run(page)
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


def base_url(app: Any) -> str:
    return str(app.extensions["sipas"].settings.public_base_url)


@pytest.fixture
def desk(browser: Browser) -> Iterator[Page]:
    """An operator's desktop browser, in Vietnamese."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="vi-VN")
    yield context.new_page()
    context.close()


def user(app: Any, username: str, role: str, agency: int | None = None) -> None:
    """A console user with one role on ``agency`` (None: the whole installation)."""
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        access.create_user(session, username, PASSWORD, svc.clock(), grants=[Grant(Role(role), agency)])


def sign_in(page: Page, app: Any, username: str, path: str = "/", scan: bool = True) -> None:
    """Open ``path``, be sent to the sign-in page, sign in (``scan``: check the sign-in page
    with axe, which needs JavaScript)."""
    page.goto(base_url(app) + path)
    expect(page).to_have_url(f"{base_url(app)}/auth/login?next={path.replace('/', '%2F')}")
    expect(page.locator("h1")).to_have_text("Đăng nhập SIPAS")
    if scan:
        accessible(page)
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()


@pytest.fixture
def tree(live_server: Any, make_agency: Callable[..., int], make_campaign: Callable[..., int]) -> dict[str, int]:
    app = live_server
    province = make_agency("DN", "Tỉnh Đắk Nông", app=app)
    north = make_agency("DN-N", "Huyện Cư Jút", parent_id=province, app=app)
    south = make_agency("DN-S", "Huyện Krông Nô", parent_id=province, app=app)
    make_campaign(phones(5), agency=north, name="Quý 4 Cư Jút", target_completes=4, app=app)
    make_campaign(agency=south, name="Quý 4 Krông Nô", app=app)
    return {"province": province, "north": north, "south": south}


def test_signing_in_shows_the_campaigns_of_the_operators_scope(live_server: Any, tree: dict[str, int],
                                                               desk: Page) -> None:
    app = live_server
    user(app, "bac", "operator", tree["north"])
    user(app, "tinh", "viewer", tree["province"])
    page = desk
    sign_in(page, app, "bac")
    expect(page).to_have_url(base_url(app) + "/campaigns")
    expect(page.locator("h1")).to_have_text("Chiến dịch")
    expect(page.get_by_role("link", name="Quý 4 Cư Jút")).to_be_visible()
    expect(page.get_by_text("Quý 4 Krông Nô")).to_have_count(0)
    expect(page.get_by_text("0/4 phiếu hoàn thành")).to_be_visible()
    accessible(page)
    page.get_by_role("button", name="Đăng xuất").click()
    expect(page.locator("h1")).to_have_text("Đăng nhập SIPAS")

    sign_in(page, app, "tinh", "/campaigns")
    expect(page.get_by_role("link", name="Quý 4 Krông Nô")).to_be_visible()
    expect(page.get_by_role("link", name="Quý 4 Cư Jút")).to_be_visible()
    # Filtering in place (htmx): the table changes, the address follows.
    page.get_by_label("Tìm theo tên").fill("krông")
    expect(page.get_by_role("link", name="Quý 4 Cư Jút")).to_have_count(0)
    expect(page.get_by_role("link", name="Quý 4 Krông Nô")).to_be_visible()
    expect(page).to_have_url(base_url(app) + "/campaigns?q=kr%C3%B4ng&status=")
    page.get_by_label("Trạng thái").select_option("running")
    expect(page.get_by_text("Không có chiến dịch nào phù hợp.")).to_be_visible()
    accessible(page)
    # English on request, kept across pages.
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text("Campaigns")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    accessible(page)


def test_the_list_works_without_javascript(live_server: Any, tree: dict[str, int], browser: Browser) -> None:
    app = live_server
    user(app, "tinh", "viewer", tree["province"])
    context = browser.new_context(java_script_enabled=False, locale="vi-VN")
    page = context.new_page()
    try:
        sign_in(page, app, "tinh", "/campaigns", scan=False)
        expect(page.get_by_role("link", name="Quý 4 Krông Nô")).to_be_visible()
        page.get_by_label("Tìm theo tên").fill("cư jút")
        page.get_by_role("button", name="Lọc").click()
        expect(page.get_by_role("link", name="Quý 4 Cư Jút")).to_be_visible()
        expect(page.get_by_role("link", name="Quý 4 Krông Nô")).to_have_count(0)
    finally:
        context.close()
