"""The opt-outs and administration pages in a real browser (Debian's Chromium, see
test_console_browser.py): an operator adds a number a citizen refused on the hotline and
takes it off again; an admin creates a user and grants a role, creates a token and reads
the audit log; an axe-core scan of every page on the way."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .test_access import cheap_hashing  # noqa: F401  (a fixture)
from .test_console_browser import accessible, base_url, desk, sign_in, tree, user  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cheap_hashing")]


def test_adding_an_opt_out(live_server: Any, tree: dict[str, int], desk: Page) -> None:
    app = live_server
    user(app, "tong-dai", "operator", tree["north"])
    page = desk
    sign_in(page, app, "tong-dai", "/opt-outs")
    expect(page.locator("h1")).to_have_text("Từ chối liên lạc")
    expect(page.get_by_text("Danh sách không liên lạc đang trống.")).to_be_visible()
    accessible(page)

    # A citizen calls the hotline: the operator looks the number up as they said it.
    page.get_by_label("Số điện thoại").fill("0912 345 678")
    page.get_by_role("button", name="Tra cứu").click()
    expect(page.get_by_role("heading", name="+84912345678 không có trong danh sách không liên lạc")).to_be_visible()
    expect(page.get_by_label("Số điện thoại")).to_have_value("0912 345 678")
    accessible(page)
    page.get_by_role("button", name="Thêm vào danh sách không liên lạc").click()
    expect(page).to_have_url(base_url(app) + "/opt-outs")
    expect(page.get_by_role("status")).to_contain_text("+84912345678 đã vào danh sách không liên lạc")
    listed = page.get_by_role("row").filter(has_text="+84912345678")
    expect(listed).to_contain_text("Điều hành viên (bảng điều khiển hoặc API)")
    accessible(page)

    # Written another way, it is the same number; taking it off needs a reason.
    page.get_by_label("Số điện thoại").fill("+84 912 345 678")
    page.get_by_role("button", name="Tra cứu").click()
    expect(page.get_by_role("heading", name="+84912345678 có trong danh sách không liên lạc")).to_be_visible()
    expect(page.get_by_text("Nghị định 91/2020", exact=False)).to_be_visible()
    accessible(page)
    page.get_by_label("Lý do").fill("Công dân gọi lại đường dây nóng, đồng ý khảo sát")
    page.get_by_role("button", name="Gỡ khỏi danh sách").click()
    expect(page.get_by_role("status")).to_contain_text("đã ra khỏi danh sách không liên lạc")
    expect(page.get_by_text("Danh sách không liên lạc đang trống.")).to_be_visible()


def test_an_admin_creates_a_user_grants_a_role_and_issues_a_token(live_server: Any, tree: dict[str, int],
                                                                  desk: Page) -> None:
    app = live_server
    user(app, "quan-tri", "admin")
    page = desk
    sign_in(page, app, "quan-tri", "/admin/users")
    expect(page.locator("h1")).to_have_text("Người dùng")
    expect(page.get_by_role("link", name="Người dùng", exact=True).first).to_be_visible()
    accessible(page)

    page.get_by_label("Tên đăng nhập").fill("bac-cj")
    page.get_by_label("Họ và tên").fill("Nguyễn Thị Bắc")
    page.get_by_label("Mật khẩu").fill("mat-khau-du-dai-2")
    page.get_by_label("Vai trò", exact=True).select_option("operator")
    page.get_by_label("Trên cơ quan (và mọi cơ quan cấp dưới)").select_option(str(tree["north"]))
    page.get_by_role("button", name="Tạo người dùng").click()
    expect(page.locator("h1")).to_contain_text("bac-cj")
    expect(page.get_by_role("status")).to_have_text("Đã tạo người dùng bac-cj.")
    expect(page.get_by_role("row").filter(has_text="Huyện Cư Jút")).to_contain_text("Điều hành viên")
    accessible(page)

    page.get_by_label("Vai trò", exact=True).select_option("viewer")
    page.get_by_label("Trên cơ quan (và mọi cơ quan cấp dưới)").select_option(str(tree["province"]))
    page.get_by_role("button", name="Cấp", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Đã cấp vai trò.")
    expect(page.get_by_role("row").filter(has_text="Tỉnh Đắk Nông")).to_contain_text("Người xem")
    accessible(page)
    page.get_by_role("link", name="Tất cả người dùng").click()
    expect(page.get_by_role("row").filter(has_text="bac-cj")).to_contain_text("Người xem trên Tỉnh Đắk Nông")

    page.get_by_role("navigation", name="Quản trị hệ thống").get_by_role("link", name="Token API").click()
    expect(page.locator("h1")).to_have_text("Token API")
    accessible(page)
    page.get_by_label("Tên (hệ thống nào dùng token)").fill("Một cửa Cư Jút")
    page.get_by_label("Cơ quan (và mọi cơ quan cấp dưới)").select_option(str(tree["north"]))
    page.get_by_label("Xem chiến dịch, tiến độ và kết quả").check()
    page.get_by_role("button", name="Tạo token").click()
    expect(page.locator("h1")).to_have_text("Đã tạo token")
    secret = page.get_by_label("Token", exact=True).input_value()
    assert re.fullmatch(r"sipas_[a-z0-9]{8}_[A-Za-z0-9_-]{43}", secret)
    accessible(page)
    page.get_by_role("link", name="Quay lại danh sách token").click()
    expect(page.get_by_role("row").filter(has_text="Một cửa Cư Jút")).to_contain_text(secret[:15] + "…")
    assert secret not in page.content()

    page.get_by_role("link", name="Nhật ký hoạt động").click()
    expect(page.locator("h1")).to_have_text("Nhật ký hoạt động")
    expect(page.get_by_role("row").filter(has_text="token_created")).to_have_count(1)
    accessible(page)
    page.get_by_label("Thao tác").select_option("role_granted")
    page.get_by_role("button", name="Lọc").click()
    expect(page.get_by_role("row").filter(has_text="role_granted")).to_have_count(2)
    expect(page.get_by_role("row").filter(has_text="user_created")).to_have_count(0)
    accessible(page)
