"""The console's frame and scores pages without a browser: a messy transaction list
previewed (every rejected row, nothing stored), a column mapped from the drop-down and
previewed again, imported into a sample with its report; the upload token checked against
the session; scope and roles; the scores page against services/results, its filters,
small cells and the export as an attachment. In Chromium: test_console_frames_browser.py."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from flask import Flask
from sqlalchemy import select

from ivr_service.core import scoring
from ivr_service.core.sampling import SampleRule
from ivr_service.persistence.models import AuditEntry, Contact, Stratum
from ivr_service.services import results
from ivr_service.services.frame_uploads import UploadStore
from ivr_service.services.results import ScoreFilter
from ivr_service.web.i18n import percent

from .conftest import Call, count, scalars, snapshot
from .test_access import Browser, cheap_hashing, make_user, signed_in  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("cheap_hashing")

# An agency's export as it comes: a byte-order mark, a title row above the header, a phone
# number cut short (row 4), a landline (row 5), the same mobile twice (rows 3 and 6), a
# date column we do not recognise ("Ngày hoàn trả", with "hôm qua" in row 7), a dossier
# not yet returned (row 8) and a totals row.
MESSY = (
    "\ufeffBÁO CÁO HỒ SƠ ĐÃ TRẢ KẾT QUẢ THÁNG 11/2026,,,,,,\n"
    "STT,Mã hồ sơ,Lĩnh vực,Chủ hồ sơ,Số điện thoại,Trạng thái,Ngày hoàn trả\n"
    "1,HS-1,Đất đai,Nguyễn Văn An,0912345678,Đã trả kết quả,05/11/2026\n"
    "2,HS-2,Đất đai,Trần Thị Bình,0912 34,Đã trả kết quả,05/11/2026\n"
    "3,HS-3,Môi trường,Lê Văn Chi,02613 812 345,Đã trả kết quả,06/11/2026\n"
    "4,HS-4,Đất đai,Phạm Văn Dũng,0912345678,Đã trả kết quả,07/11/2026\n"
    "5,HS-5,Môi trường,Hoàng Thị Em,0987654321,Đã trả kết quả,hôm qua\n"
    "6,HS-6,Đất đai,Võ Văn Phúc,0977111222,Đang xử lý,\n"
    "Tổng cộng,,,,,,6\n"
).encode("utf-8")
UNKNOWN_COLUMN = "Ngày hoàn trả"
UPLOAD = re.compile(r'name="upload" value="([^"]+)"')


@pytest.fixture(autouse=True)
def upload_dir(app: Flask, tmp_path: Path) -> Path:
    directory = tmp_path / "uploads"
    app.config["FRAME_UPLOAD_DIR"] = str(directory)
    return directory


@pytest.fixture
def draft(make_agency: Callable[..., int], make_campaign: Callable[..., int]) -> dict[str, int]:
    """A province with two districts; a draft campaign for November 2026 in one of them."""
    province = make_agency("DN", "Tỉnh Đắk Nông")
    north = make_agency("DN-N", "Huyện Cư Jút", parent_id=province)
    south = make_agency("DN-S", "Huyện Krông Nô", parent_id=province)
    campaign = make_campaign(agency=north, name="Tháng 11 Cư Jút", period_start=date(2026, 11, 1),
                             period_end=date(2026, 11, 30))
    return {"province": province, "north": north, "south": south, "campaign": campaign}


def text_of(response: Any) -> str:
    return html.unescape(re.sub(r"\s+", " ", response.get_data(as_text=True)))


def upload(person: Browser, campaign: int, content: bytes = MESSY, name: str = "ds-thang-11.csv") -> Any:
    return person.post(f"/campaigns/{campaign}/frame", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content), name), "encoding": ""})


def token_of(response: Any) -> str:
    found = UPLOAD.search(response.get_data(as_text=True))
    assert found is not None, response.get_data(as_text=True)[:2000]
    return found.group(1)


def rejected_rows(page: str) -> list[list[str]]:
    table = re.search(r'<table class="rejected">(.*?)</table>', page)
    assert table is not None
    return [[cell.strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr data-row=[^>]*>(.*?)</tr>", table.group(1))]


def counts(page: str) -> dict[str, str]:
    return dict(re.findall(r'<dd data-count="(\w+)">([^<]*)</dd>', page))


def column_index(page: str, header: str) -> int:
    found = re.search(r'<label for="column-(\d+)">%s</label>' % re.escape(header), page)
    assert found is not None, page
    return int(found.group(1))


# ============================================================================ frames

def test_the_preview_lists_every_rejected_row_and_stores_nothing(app: Flask, draft: dict[str, int],
                                                                  make_user: Any, upload_dir: Path) -> None:
    make_user("quan-ly", ("manager", draft["north"]))
    person = signed_in(app, "quan-ly")
    before = snapshot(app)
    response = upload(person, draft["campaign"])
    assert response.status_code == 200
    page = text_of(response)
    assert "Xem trước ds-thang-11.csv" in page and "Chưa có gì được lưu cho đến khi bạn nhập." in page
    # Header on row 2 (a title above it); each column and the field it is read as.
    assert counts(page) == {"header_row": "2", "rows": "6", "ignored": "2", "rejected": "1", "excluded": "2",
                            "eligible": "3", "landlines": "1"}
    assert re.search(r'<tr data-column="Số điện thoại">.*?<option value="phone" selected>Số điện thoại</option>'
                     r'.*?đã nhận ra', page)
    assert re.search(r'<tr data-column="%s" class="unmapped">.*?chưa nhận ra' % UNKNOWN_COLUMN, page)
    # The rejected row: row, column, value, reason.
    assert rejected_rows(page) == [["4", "Số điện thoại", "0912 34", "not a valid Vietnamese number: '0912 34'"]]
    assert re.search(r'<tr data-reason="not_returned"><th scope="row">Chưa trả kết quả</th>'
                     r'<td class="num">1</td>', page)
    assert re.search(r'<tr data-reason="duplicate_phone"><th scope="row">Trùng số điện thoại với hồ sơ mới hơn'
                     r'</th><td class="num">1</td>', page)
    assert "Phía trên dòng tiêu đề" in page and "Dòng tổng cộng" in page
    # Nothing stored: the database is as it was, the file waits in the private directory.
    assert snapshot(app) == before
    assert len(list(upload_dir.glob("*.upload"))) == 1
    assert (upload_dir.stat().st_mode & 0o777) == 0o700


def test_mapping_the_unrecognised_column_changes_the_preview_and_import_draws_the_sample(
        app: Flask, draft: dict[str, int], make_user: Any, upload_dir: Path) -> None:
    make_user("quan-ly", ("manager", draft["north"]))
    person = signed_in(app, "quan-ly")
    first = upload(person, draft["campaign"])
    token = token_of(first)
    index = column_index(first.get_data(as_text=True), UNKNOWN_COLUMN)
    before = snapshot(app)
    mapped = person.post(f"/campaigns/{draft['campaign']}/frame",
                         data={"upload": token, f"column-{index}": "returned_on", "encoding": ""})
    assert mapped.status_code == 200
    page = text_of(mapped)
    assert re.search(r'<tr data-column="%s">.*?<option value="returned_on" selected>Ngày trả kết quả</option>'
                     r'.*?do bạn chọn' % UNKNOWN_COLUMN, page)
    # The dates now count: "hôm qua" is rejected, the newer of the two dossiers of one phone kept.
    assert rejected_rows(page) == [["4", "Số điện thoại", "0912 34", "not a valid Vietnamese number: '0912 34'"],
                                   ["7", UNKNOWN_COLUMN, "hôm qua", "not a date (expected dd/mm/yyyy)"]]
    assert counts(page)["eligible"] == "2" and counts(page)["rejected"] == "2"
    assert snapshot(app) == before

    imported = person.post(f"/campaigns/{draft['campaign']}/frame/import",
                           data={"upload": token, "reserve": "0", "replicates": "1"})
    assert imported.status_code == 303 and imported.headers["Location"] == f"/campaigns/{draft['campaign']}/frame"
    report = text_of(person.get(imported.headers["Location"]))
    assert "Đã nhập 6 dòng: chọn 2 người và 0 người dự phòng trong số 2 người đủ điều kiện." in report
    assert "Báo cáo chọn mẫu" in report and "Tải lên danh sách hồ sơ" not in report
    strata = re.findall(r'<tr data-stratum="Huyện Cư Jút\|([^"]+)">(.*?)</tr>', report)
    assert [field for field, _ in strata] == ["Môi trường", "Đất đai"]
    cells = {field: re.findall(r'<td class="num">([^<]*)</td>', row) for field, row in strata}
    assert cells["Đất đai"] == ["4", "1", "1", "0", "1,00"]          # rows, N, n, reserve, weight
    assert "Trùng số điện thoại với hồ sơ mới hơn: 1" in report and "Chưa trả kết quả: 1" in report
    assert "Số điện thoại không dùng được: 1" in report
    assert count(app, Contact) == 2 and count(app, Stratum) == 2
    phones = sorted(c.phone_e164 for c in scalars(app, select(Contact)))
    assert phones == ["+842613812345", "+84912345678"]
    entry = scalars(app, select(AuditEntry).where(AuditEntry.action == "frame_imported"))[0]
    assert entry.actor.endswith("quan-ly") and entry.detail["file"] == "ds-thang-11.csv"
    # The file is gone, and the token with it.
    assert list(upload_dir.iterdir()) == []
    again = person.post(f"/campaigns/{draft['campaign']}/frame/import", data={"upload": token})
    assert again.status_code == 400 and count(app, Contact) == 2
    # Later visits show the report; the workbook downloads as a file.
    assert "Báo cáo chọn mẫu" in text_of(person.get(f"/campaigns/{draft['campaign']}/frame"))
    workbook = person.get(f"/campaigns/{draft['campaign']}/frame/sampling-report.xlsx")
    assert workbook.status_code == 200 and workbook.headers["Content-Disposition"].startswith("attachment; filename=")
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.data))["strata"]
    assert [c.value for c in sheet[1]][:4] == ["agency", "field", "frame_rows", "eligible"]


def test_an_unknown_phone_header_is_mapped_from_the_drop_down(app: Flask, draft: dict[str, int],
                                                               make_user: Any) -> None:
    make_user("quan-ly", ("manager", draft["north"]))
    person = signed_in(app, "quan-ly")
    content = ("Mã hồ sơ;Lĩnh vực;ĐT di động;Trạng thái\nHS-1;Đất đai;0912345678;Đã trả kết quả\n"
               "HS-2;Đất đai;0987 654 321;Đã trả kết quả\n").encode()
    refused = upload(person, draft["campaign"], content, "ds.csv")
    assert refused.status_code == 400
    page = text_of(refused)
    assert "no header row with a phone column" in page
    # The likeliest header row is offered, its known columns already chosen.
    assert re.search(r'<tr data-column="Lĩnh vực">.*?<option value="field" selected>', page)
    index = column_index(refused.get_data(as_text=True), "ĐT di động")
    mapped = person.post(f"/campaigns/{draft['campaign']}/frame",
                         data={"upload": token_of(refused), f"column-{index}": "phone"})
    assert mapped.status_code == 200
    assert counts(text_of(mapped))["eligible"] == "2"
    # The same field for two columns is refused, naming both.
    twice = person.post(f"/campaigns/{draft['campaign']}/frame",
                        data={"upload": token_of(refused), f"column-{index}": "field",
                              f"column-{column_index(page, 'Lĩnh vực')}": "field"})
    assert twice.status_code == 400 and "Lĩnh vực được chọn cho hai cột" in text_of(twice)


def test_a_column_a_person_chooses_wins_over_one_recognised(app: Flask, draft: dict[str, int],
                                                              make_user: Any) -> None:
    make_user("quan-ly", ("manager", draft["north"]))
    person = signed_in(app, "quan-ly")
    # The office phone is under the header we know; the citizen's mobile under another.
    content = ("Lĩnh vực,Số điện thoại,Di động người nộp,Trạng thái\n"
               "Đất đai,02613 812 345,0912345678,Đã trả kết quả\n").encode()
    first = upload(person, draft["campaign"], content, "ds.csv")
    assert counts(text_of(first))["landlines"] == "1"
    page = first.get_data(as_text=True)
    mapped = person.post(f"/campaigns/{draft['campaign']}/frame", data={
        "upload": token_of(first), f"column-{column_index(page, 'Di động người nộp')}": "phone",
        f"column-{column_index(page, 'Số điện thoại')}": ""})
    page = text_of(mapped)
    assert counts(page)["landlines"] == "0" and counts(page)["eligible"] == "1"
    assert re.search(r'<tr data-column="Di động người nộp">.*?<option value="phone" selected>', page)
    assert re.search(r'<tr data-column="Số điện thoại" class="unmapped">', page)


def test_an_upload_token_not_the_sessions_is_refused(app: Flask, draft: dict[str, int], make_user: Any,
                                                     upload_dir: Path) -> None:
    make_user("quan-ly", ("manager", draft["north"]))
    make_user("pho-phong", ("manager", draft["north"]))
    person, other = signed_in(app, "quan-ly"), signed_in(app, "pho-phong")
    token = token_of(upload(person, draft["campaign"]))
    theirs = token_of(upload(other, draft["campaign"]))
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    for sent in (forged, theirs, "../../../../etc/passwd", str(upload_dir / f"{token}.upload"), ""):
        for path in ("frame", "frame/import"):
            refused = person.post(f"/campaigns/{draft['campaign']}/{path}", data={"upload": sent})
            assert refused.status_code == 400, (sent, path)
            if sent:
                assert "upload it again" in text_of(refused)
    assert count(app, Contact) == 0
    # The person's own token still works; the other person's file is still theirs.
    assert person.post(f"/campaigns/{draft['campaign']}/frame/import", data={"upload": token}).status_code == 303
    assert len(list(upload_dir.glob("*.upload"))) == 1


def test_an_upload_expires_after_an_hour(app: Flask, draft: dict[str, int], make_user: Any, clock: Any,
                                         upload_dir: Path) -> None:
    make_user("quan-ly", ("manager", draft["north"]))
    person = signed_in(app, "quan-ly")
    token = token_of(upload(person, draft["campaign"]))
    clock.advance(minutes=61)
    refused = person.post(f"/campaigns/{draft['campaign']}/frame/import", data={"upload": token})
    assert refused.status_code == 400 and count(app, Contact) == 0
    assert list(upload_dir.iterdir()) == []
    # And a sweep at the next upload removes anyone's stale files.
    UploadStore(upload_dir).sweep(clock())
    token_of(upload(person, draft["campaign"]))
    clock.advance(hours=2)
    assert UploadStore(upload_dir).sweep(clock()) == 1 and list(upload_dir.iterdir()) == []


def test_frame_pages_are_scoped_and_need_frames_write(app: Flask, draft: dict[str, int], make_user: Any) -> None:
    make_user("khac", ("manager", draft["south"]))
    make_user("xem", ("viewer", draft["north"]))
    make_user("dieu-hanh", ("operator", draft["north"]))
    outsider = signed_in(app, "khac")
    for path in ("frame", "frame/sampling-report.xlsx"):
        assert outsider.get(f"/campaigns/{draft['campaign']}/{path}").status_code == 404
    assert upload(outsider, draft["campaign"]).status_code == 404
    for name in ("xem", "dieu-hanh"):
        person = signed_in(app, name)
        assert person.get(f"/campaigns/{draft['campaign']}/frame").status_code == 403
        assert upload(person, draft["campaign"]).status_code == 403
        assert person.post(f"/campaigns/{draft['campaign']}/frame/import", data={"upload": "x"}).status_code == 403
        assert person.post(f"/campaigns/{draft['campaign']}/frame/release").status_code == 403
    assert count(app, Contact) == 0


def test_a_campaign_with_a_sample_shows_its_report_and_releases_reserve_waves(
        app: Flask, make_agency: Callable[..., int], make_campaign: Callable[..., int], make_user: Any) -> None:
    agency = make_agency()
    campaign = make_campaign([f"091{i:07d}" for i in range(40)], agency=agency, start=False,
                             sampling={"reserve_share": 0.5, "replicates": 2}, rule=SampleRule("fixed", n=10))
    make_user("quan-ly", ("manager", agency))
    person = signed_in(app, "quan-ly")
    page = text_of(person.get(f"/campaigns/{campaign}/frame"))
    assert "Hạt giống ngẫu nhiên 1; 40 người đủ điều kiện; đã chọn 10; 5 người dự phòng chưa mở." in page
    released = person.post(f"/campaigns/{campaign}/frame/release")
    assert released.status_code == 303
    page = text_of(person.get(released.headers["Location"]))
    assert "Đã mở 3 người dự phòng; có thể liên hệ ngay." in page and "đã chọn 13; 2 người dự phòng" in page
    entry = scalars(app, select(AuditEntry).where(AuditEntry.action == "reserve_released"))[0]
    assert entry.detail == {"released": 3} and entry.target == f"campaign:{campaign}"
    assert person.post(f"/campaigns/{campaign}/frame/release").status_code == 303
    empty = person.post(f"/campaigns/{campaign}/frame/release")
    assert empty.status_code == 409 and "no reserve left" in text_of(empty)
    # No upload form once there is a sample; a started campaign without one says why.
    assert "Tải lên danh sách hồ sơ" not in page
    assert upload(person, campaign).status_code == 409


# ============================================================================ scores

# Six respondents: four in "Đất đai", two in "Môi trường"; two say 1 (very dissatisfied) to
# C01; three finish today, three two days later; only one goes on to factor V.
PEOPLE = [("Đất đai", "Nguyễn Văn An", "0911000001", {"C01": "1"}),
          ("Đất đai", "Trần Thị Bình", "0911000002", {"C01": "1", "C02": "5"}),
          ("Môi trường", "Lê Văn Chi", "0911000003", {"C02": "2", "SCREEN_FEEDBACK": "1"}),
          ("Đất đai", "Phạm Văn Dũng", "0911000004", {"C03": "0"}),
          ("Môi trường", "Hoàng Thị Em", "0911000005", {}),
          ("Đất đai", "Võ Văn Phúc", "0911000006", {"OVERALL": "2"})]


@pytest.fixture
def surveyed(app: Flask, make_campaign: Callable[..., int], make_agency: Callable[..., int], claim: Any,
             clock: Any) -> Iterator[dict[str, Any]]:
    agency = make_agency("DN-N", "Huyện Cư Jút")
    campaign = make_campaign([(field, name, phone) for field, name, phone, _ in PEOPLE], agency=agency,
                             name="Quý 4 Cư Jút")
    claimed = {c.to: c for c in claim()}
    first_day = clock().astimezone(__import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")).date()
    for position, (_field, _name, phone, keys) in enumerate(PEOPLE):
        if position == 3:
            clock.advance(days=2)
        call = Call(app.test_client(), claimed["+84" + phone[1:]])
        call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "2", **keys})
        call.status("completed", CallDuration="180")
    yield {"agency": agency, "campaign": campaign, "first_day": first_day}


def expected(app: Flask, campaign: int, filters: ScoreFilter = results.EVERYONE) -> scoring.ScoreReport:
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        return results.campaign_scores(session, svc.registry, campaign, filters=filters)


def pct(app: Flask, value: float | None) -> str:
    with app.test_request_context():
        return percent(None if value is None else value / 100, 1)


def row_of(page: str, kind: str, key: str) -> tuple[str, str]:
    found = re.search(r'<tr data-%s="%s"( class="small-cell")?>(.*?)</tr>' % (kind, key), page)
    assert found is not None, key
    return found.group(1) or "", found.group(2)


def figure(row: str, name: str) -> str:
    found = re.search(r'data-figure="%s">(.*?)</td>' % name, row)
    assert found is not None, (name, row)
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def test_the_scores_page_shows_the_services_figures(app: Flask, surveyed: dict[str, Any], make_user: Any) -> None:
    make_user("xem", ("viewer", surveyed["agency"]))
    response = signed_in(app, "xem").get(f"/campaigns/{surveyed['campaign']}/scores")
    assert response.status_code == 200
    page = text_of(response)
    report = expected(app, surveyed["campaign"])
    assert report.n_respondents == 6
    assert 'data-figure="respondents">6<' in page
    assert f'data-figure="service_index">{pct(app, report.service_index)}<' in page
    for criterion in [*report.criteria, report.overall]:
        assert criterion is not None
        _, row = row_of(page, "criterion", criterion.item_id)
        assert figure(row, "index") == pct(app, criterion.index)
        assert figure(row, "n").split(" ")[0] == str(criterion.n)
        low, high = (pct(app, criterion.ci_low), pct(app, criterion.ci_high)) if criterion.n else ("–", "–")
        assert figure(row, "ci") == (f"{low} – {high}" if criterion.n else "–")
        assert ("trên 25 %" in row) == criterion.dissatisfied_flag
    for factor in report.factors:
        _, row = row_of(page, "factor", factor.factor)
        assert figure(row, "index") == pct(app, factor.index)
        assert figure(row, "n") == str(factor.n)
        assert figure(row, "respondents").split(" ")[0] == str(factor.respondents)
        assert figure(row, "ci") == f"{pct(app, factor.ci_low)} – {pct(app, factor.ci_high)}"
    # Seed 003: two of six very dissatisfied with C01 is a third: flagged; C02 (one of six) is not.
    assert report.criterion("C01").dissatisfied_flag and not report.criterion("C02").dissatisfied_flag
    assert "trên 25 %" in row_of(page, "criterion", "C01")[1]
    # A viewer has no frame tab (the sampling report needs frames:write, as in the API).
    assert f'href="/campaigns/{surveyed["campaign"]}/frame"' not in page
    assert f'href="/campaigns/{surveyed["campaign"]}/scores" aria-current="page"' in page
    # Vietnamese number formats: a decimal comma.
    assert re.search(r"\d,\d%", figure(row_of(page, "criterion", "C02")[1], "index"))
    # No phone number, name or pseudonym of anyone.
    for _field, name, phone, _keys in PEOPLE:
        assert name not in page and phone not in page and phone[1:] not in page
    for contact in scalars(app, select(Contact)):
        assert contact.respondent_id not in page


def test_small_cells_are_greyed_with_a_note_not_hidden(app: Flask, surveyed: dict[str, Any], make_user: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    make_user("xem", ("viewer", surveyed["agency"]))
    person = signed_in(app, "xem")
    page = text_of(person.get(f"/campaigns/{surveyed['campaign']}/scores"))
    # Six respondents: every figure rests on fewer than 30 answers, and is still shown.
    assert "dựa trên dưới 30 câu trả lời" in page
    assert row_of(page, "criterion", "C01")[0] == ' class="small-cell"'
    assert "(ít)" in row_of(page, "criterion", "C01")[1]
    assert row_of(page, "factor", "I")[0] == ' class="small-cell"'
    monkeypatch.setattr(scoring, "SMALL_CELL", 5)
    page = text_of(person.get(f"/campaigns/{surveyed['campaign']}/scores"))
    assert row_of(page, "criterion", "C01")[0] == ""                 # n = 6
    assert row_of(page, "criterion", "C14")[0] == ' class="small-cell"'  # n = 1: only one went on to factor V
    assert figure(row_of(page, "criterion", "C14")[1], "index") != "–"
    assert row_of(page, "factor", "I")[0] == "" and row_of(page, "factor", "V")[0] == ' class="small-cell"'


def test_field_and_period_filters_change_n_as_the_service_does(app: Flask, surveyed: dict[str, Any],
                                                                make_user: Any) -> None:
    make_user("xem", ("viewer", surveyed["agency"]))
    person = signed_in(app, "xem")
    campaign = surveyed["campaign"]
    page = text_of(person.get(f"/campaigns/{campaign}/scores?field=Môi+trường"))
    report = expected(app, campaign, ScoreFilter(field="Môi trường"))
    assert report.n_respondents == 2 and 'data-figure="respondents">2<' in page
    assert '<option value="Môi trường" selected>' in page
    assert figure(row_of(page, "criterion", "C01")[1], "n").split(" ")[0] == str(report.criterion("C01").n) == "2"
    assert figure(row_of(page, "criterion", "C02")[1], "index") == pct(app, report.criterion("C02").index)
    # The first day only: three interviews ended then (in Hà Nội time).
    day = surveyed["first_day"].isoformat()
    page = text_of(person.get(f"/campaigns/{campaign}/scores?from={day}&to={day}"))
    assert expected(app, campaign, ScoreFilter(ended_from=surveyed["first_day"],
                                               ended_to=surveyed["first_day"])).n_respondents == 3
    assert 'data-figure="respondents">3<' in page
    later = (surveyed["first_day"] + timedelta(days=1)).isoformat()
    page = text_of(person.get(f"/campaigns/{campaign}/scores?from={later}&field=Đất+đai"))
    assert 'data-figure="respondents">2<' in page                      # Dũng and Phúc
    # The API takes the same filters and gives the same figures, intervals included.
    api = app.test_client().get(f"/api/v1/campaigns/{campaign}/scores",
                                query_string={"field": "Đất đai", "from": later})
    assert api.status_code == 200 and api.json["n_respondents"] == 2
    served = expected(app, campaign, ScoreFilter("Đất đai", surveyed["first_day"] + timedelta(days=1)))
    assert api.json["factors"][0]["ci_low"] == pytest.approx(served.factors[0].ci_low)
    assert api.json["factors"][0]["respondents"] == served.factors[0].respondents == 2
    assert api.json["service_ci_high"] == pytest.approx(served.service_ci_high)
    # A filter that makes no sense says so and filters nothing.
    wrong = person.get(f"/campaigns/{campaign}/scores?field=Không+có&from=hôm-qua")
    assert wrong.status_code == 400
    page = text_of(wrong)
    assert "Mẫu của chiến dịch không có lĩnh vực này." in page and "Không phải ngày" in page
    assert 'data-figure="respondents">6<' in page


def test_the_export_downloads_as_an_attachment_without_a_server_path(app: Flask, surveyed: dict[str, Any],
                                                                    make_user: Any) -> None:
    make_user("quan-ly", ("manager", surveyed["agency"]))
    make_user("xem", ("viewer", surveyed["agency"]))
    viewer = signed_in(app, "xem")
    assert "Tải tệp kết quả (XLSX)" not in text_of(viewer.get(f"/campaigns/{surveyed['campaign']}/scores"))
    assert viewer.post(f"/campaigns/{surveyed['campaign']}/scores/export").status_code == 403
    person = signed_in(app, "quan-ly")
    assert "Tải tệp kết quả (XLSX)" in text_of(person.get(f"/campaigns/{surveyed['campaign']}/scores"))
    response = person.post(f"/campaigns/{surveyed['campaign']}/scores/export")
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(r"attachment; filename=campaign-%d-\d{8}T\d{6}Z\.xlsx" % surveyed["campaign"], disposition)
    assert response.data.startswith(b"PK\x03\x04")
    export_dir = app.extensions["sipas"].settings.export_dir
    assert export_dir.encode() not in response.data and export_dir not in str(response.headers)
    sheets = openpyxl.load_workbook(io.BytesIO(response.data))
    assert sheets.sheetnames == ["summary", "criteria", "factors", "responses"]
    values = {str(cell.value) for row in sheets["responses"].iter_rows() for cell in row}
    assert not any(phone[1:] in value for _f, _n, phone, _k in PEOPLE for value in values)
    entry = scalars(app, select(AuditEntry).where(AuditEntry.action == "export_written"))[0]
    assert entry.actor.endswith("quan-ly")


def test_the_scores_page_is_scoped(app: Flask, surveyed: dict[str, Any], make_agency: Callable[..., int],
                                   make_user: Any) -> None:
    other = make_agency("DN-S", "Huyện Krông Nô")
    make_user("khac", ("admin", other))
    person = signed_in(app, "khac")
    assert person.get(f"/campaigns/{surveyed['campaign']}/scores").status_code == 404
    assert person.post(f"/campaigns/{surveyed['campaign']}/scores/export").status_code == 404


def test_the_preview_says_a_signature_block_was_skipped(app: Flask, draft: dict[str, int], make_user: Any) -> None:
    make_user("quan-ly", ("manager", draft["north"]))
    signed = MESSY + ",Người lập biểu,,,\"Đắk Nông, ngày 30 tháng 11 năm 2026\",,\n,,,,Thủ trưởng đơn vị,,\n".encode()
    page = text_of(upload(signed_in(app, "quan-ly"), draft["campaign"], signed))
    assert counts(page)["rows"] == "6" and counts(page)["rejected"] == "1"    # as without the block
    assert "Đã bỏ qua phần ký tên 2 dòng cuối bảng: đó không phải dữ liệu." in page
    assert page.count("Phần ký tên cuối bảng") == 2
