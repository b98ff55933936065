"""QR at the counter (seed 001): the poster, the anonymous form, its rate limits, and its
self-selected scores and exports, kept apart from every campaign's."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import openpyxl
import pytest
import segno
import yaml
from sqlalchemy import func, select

from ivr_service import create_app
from ivr_service.core.questionnaire import load_questionnaire
from ivr_service.persistence.models import Answer, AuditEntry, Interview, QrPoster, QrResponse
from ivr_service.services import housekeeping, qr, results
from ivr_service.services.qr_poster import BORDER, CODE_MM, poster_svg

from .conftest import ROOT, Call, Clock, api_token

QDIR = ROOT / "config" / "questionnaires"
SVG = "{http://www.w3.org/2000/svg}"
AGENCY_NAME = 'UBND xã Nam Dong & "Bộ phận một cửa"'
START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)


class Page(HTMLParser):
    """The form controls of one page: hidden inputs, radio values, select options, text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.hidden: dict[str, str] = {}
        self.radios: list[str] = []
        self.options: list[str] = []
        self.legend = ""
        self._in_legend = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"] or ""] = a.get("value") or ""
        elif tag == "input" and a.get("type") == "radio":
            assert a.get("name") == "answer"
            self.radios.append(a.get("value") or "")
        elif tag == "option":
            self.options.append("")
        self._in_legend = tag == "legend"

    def handle_data(self, data: str) -> None:
        if self._in_legend:
            self.legend += data
        elif self.lasttag == "option" and data.strip() and self.options and self.options[-1] == "":
            self.options[-1] = data.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "legend":
            self._in_legend = False


@pytest.fixture
def agency(make_agency: Callable[..., int]) -> int:
    return make_agency("X-ND", AGENCY_NAME)


@pytest.fixture
def make_poster(app: Any, agency: int) -> Callable[..., QrPoster]:
    def make(label: str = "Quầy 1", agency_id: int | None = None) -> QrPoster:
        svc = app.extensions["sipas"]
        with svc.db.begin() as session:
            poster = qr.create_poster(session, svc.registry, agency_id or agency, label, "https://khaosat.test",
                                      svc.clock())
            session.expunge(poster)
        return poster
    return make


def fill(client: Any, code: str, keys: dict[str, str], default: str = "4", field: str | None = None,
         procedure: str = "Đăng ký khai sinh", stop_after: int | None = None) -> tuple[str, list[str]]:
    """Start a form at ``code`` and answer each item shown (``keys`` by item id, else
    ``default``); returns the form's URL and the items asked, in order."""
    started = client.post(f"/q/{code}", data={"field": field or "", "procedure": procedure})
    assert started.status_code == 303, started.get_data(as_text=True)
    url = started.headers["Location"]
    asked: list[str] = []
    while True:
        page = client.get(url)
        assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
        form = Page(page.get_data(as_text=True))
        if "item" not in form.hidden:
            return url, asked
        if stop_after is not None and len(asked) == stop_after:
            return url, asked
        item = form.hidden["item"]
        asked.append(item)
        assert len(asked) < 40, asked
        key = keys.get(item, default if default in form.radios else form.radios[-1])
        assert key in form.radios, (item, key, form.radios)
        reply = client.post(url, data={"item": item, "answer": key})
        assert reply.status_code == 303 and reply.headers["Location"] == url


def scores(app: Any, **target: Any) -> Any:
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        return qr.scores(session, svc.registry, start=START, end=END, now=svc.clock(), **target)


# ============================================================================ the questionnaire

def test_qr_questionnaire_is_seed_001s_four_level_online_form() -> None:
    q = load_questionnaire(QDIR / "sipas-qr-2024.yaml")
    scale = q.item("C01").scale
    assert [(o.label.vi, o.value) for o in scale.options] == [
        ("Rất tốt", 4), ("Tốt", 3), ("Bình thường", 2), ("Chưa tốt", 1)]
    assert scale.satisfied == {4, 3} and scale.dissatisfied == {1}
    assert all(item.channels == ("web",) for item in q.items)
    assert not any(item.kind == "consent" for item in q.items)
    # The criteria are seed 001's (section II), verbatim: the same texts as the 2-level form.
    two_level = load_questionnaire(QDIR / "sipas-2level-2024.yaml")
    assert [(i.id, i.text.vi) for i in q.criteria] == [(i.id, i.text.vi) for i in two_level.criteria]
    assert len(q.criteria) == 20 and q.has_item("OVERALL")
    seed = (ROOT.parent / "shared" / "seeds").glob("001_*.txt")
    for path in seed:
        text = path.read_text(encoding="utf-8")
        assert all(i.text.vi in text for i in q.criteria)
        assert "“Rất tốt”, “Tốt”, “Bình thường” và “Chưa tốt”" in text
    raw = yaml.safe_load((QDIR / "sipas-qr-2024.yaml").read_text(encoding="utf-8"))
    assert raw["key"] == "sipas-qr-2024"


# ============================================================================ the poster

def modules_of(path_d: str, x0: float, y0: float, module: float) -> set[tuple[int, int]]:
    """The dark modules a path of ``M x y h w v m h -w z`` runs paints."""
    dark = set()
    for x, y, w in re.findall(r"M([\d.]+) ([\d.]+)h([\d.]+)v[\d.]+h-[\d.]+z", path_d):
        col, row, n = (round((float(x) - x0) / module), round((float(y) - y0) / module),
                       round(float(w) / module))
        dark.update((row, col + i) for i in range(n))
    return dark


def test_poster_svg_is_a4_with_the_exact_url_in_its_qr_code_and_escaped_names(
        app: Any, client: Any, agency: int) -> None:
    created = client.post(f"/api/v1/agencies/{agency}/qr-posters",
                          json={"label": "Quầy <1> & 2", "public_host": "https://khaosat.namdong.gov.vn/"})
    assert created.status_code == 201, created.json
    poster = created.json
    url = f"https://khaosat.namdong.gov.vn/q/{poster['code']}"
    assert poster["url"] == url and poster["questionnaire_key"] == "sipas-qr-2024" and poster["active"]
    assert re.fullmatch(r"[34679ACDEFGHJKMNPQRTUVWXY]{9}", poster["code"])

    reply = client.get(f"/api/v1/qr-posters/{poster['id']}/poster.svg")
    assert reply.status_code == 200 and reply.mimetype == "image/svg+xml"
    raw = reply.get_data(as_text=True)
    assert "Quầy &lt;1&gt; &amp; 2" in raw and "<1>" not in raw       # escaped, not markup
    root = ElementTree.fromstring(reply.data)                            # well-formed XML
    assert root.tag == f"{SVG}svg" and root.get("viewBox") == "0 0 210 297"
    assert (root.get("width"), root.get("height")) == ("210mm", "297mm")
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert " ".join(texts[:2]) == AGENCY_NAME and texts[2] == "Quầy <1> & 2"     # a long name is wrapped
    assert AGENCY_NAME in (root.findtext(f"{SVG}title") or "")
    assert "Quét mã để đánh giá sự phục vụ" in texts and "Scan the code to rate our service" in texts
    assert texts.index("Quét mã để đánh giá sự phục vụ") < texts.index("Scan the code to rate our service")
    assert url.split("://")[1] in texts                                  # typed by hand if need be

    # The painted modules are exactly segno's symbol for the URL, at error level Q.
    code = segno.make_qr(url, error="q", boost_error=False)
    assert code.error == "Q"
    expected = {(r, c) for r, row in enumerate(code.matrix_iter(border=BORDER)) for c, dark in enumerate(row)
                if dark}
    size = code.symbol_size(border=BORDER)[0]
    (path,) = [p for p in root.iter(f"{SVG}path") if p.get("id") == "qr"]
    assert modules_of(path.get("d", ""), (210 - CODE_MM) / 2, 100.0, CODE_MM / size) == expected
    assert segno.make_qr(url + "x", error="q", boost_error=False).matrix != code.matrix   # the check can fail

    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "qr_poster_created")).one()
        assert entry.agency_id == agency and entry.target == f"qr_poster:{poster['id']}"


def test_poster_text_is_escaped_even_where_names_could_hold_markup() -> None:
    poster = QrPoster(code="ACDEFGHJK", label="</text><script>x</script>", public_host="https://a.test",
                      questionnaire_key="sipas-qr-2024", agency_id=1)
    svg = poster_svg(poster, "A & <B>")
    root = ElementTree.fromstring(svg.encode())
    assert [e.tag for e in root.iter() if e.tag.endswith("script")] == []
    assert "A & <B>" in [t.text for t in root.iter(f"{SVG}text")]


# ============================================================================ the anonymous form

def test_anonymous_flow_field_first_then_one_item_per_screen_to_complete(
        app: Any, client: Any, make_poster: Callable[..., QrPoster], make_campaign: Callable[..., int],
        agency: int) -> None:
    make_campaign([("Hộ tịch", "Nguyễn Văn A", "0912345678"), ("Đất đai", "Trần Thị B", "0912345679")],
                  agency=agency)
    poster = make_poster()
    first = client.get(f"/q/{poster.code.lower()}")                     # typed in lower case
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    page = Page(first.get_data(as_text=True))
    assert page.options == ["— Chọn lĩnh vực —", "Hộ tịch", "Đất đai"]
    assert AGENCY_NAME.replace("&", "&amp;").replace('"', "&#34;") in first.get_data(as_text=True)
    assert "0912345678" not in first.get_data(as_text=True) and "Nguyễn" not in first.get_data(as_text=True)

    refused = client.post(f"/q/{poster.code}", data={"field": "Không có"})
    assert refused.status_code == 400 and "Xin chọn lĩnh vực trong danh sách" in refused.get_data(as_text=True)
    assert Page(refused.get_data(as_text=True)).hidden == {"lang": "vi"}              # the first screen again

    url, asked = fill(client, poster.code, {"SCREEN_FEEDBACK": "1", "C03": "0", "C05": "1"}, field="Hộ tịch")
    assert asked[0] == "C01" and asked[-1] == "OVERALL" and {"C17", "C20"} <= set(asked) and len(asked) == 22
    thanks = client.get(url)
    assert "Cảm ơn Ông/bà" in thanks.get_data(as_text=True)
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        row = session.scalars(select(QrResponse)).one()
        assert (row.status, row.field, row.procedure) == ("complete", "Hộ tịch", "Đăng ký khai sinh")
        assert row.answers["C01"] == {"value": 4, "status": "answered"}
        assert row.answers["C03"] == {"value": None, "status": "no_opinion"}
        assert row.answers["C05"] == {"value": 1, "status": "answered"}
        assert len(row.answers) == 22 and row.ended_at == svc.clock()
        assert session.scalar(select(func.count()).select_from(Interview)) == 0
    again = client.post(url, data={"item": "C01", "answer": "1"})
    assert again.status_code == 409 and "đã hoàn thành" in again.get_data(as_text=True)


def test_back_button_replaces_an_answer_and_screening_no_drops_factor_five(
        app: Any, client: Any, make_poster: Callable[..., QrPoster]) -> None:
    poster = make_poster()
    url, asked = fill(client, poster.code, {"SCREEN_FEEDBACK": "1"}, stop_after=18)    # C17 is shown next
    assert asked[-1] == "C17"
    back = client.get(url + "?item=SCREEN_FEEDBACK&lang=en")
    form = Page(back.get_data(as_text=True))
    assert form.hidden == {"item": "SCREEN_FEEDBACK", "lang": "en"} and "Did you submit" in form.legend
    assert client.post(url, data={"item": "SCREEN_FEEDBACK", "answer": "2", "lang": "en"}).status_code == 303
    assert Page(client.get(url).get_data(as_text=True)).hidden["item"] == "OVERALL"
    ahead = client.post(url, data={"item": "C19", "answer": "4"})       # not asked: back to the current item
    assert ahead.status_code == 303
    empty = client.post(url, data={"item": "OVERALL"})
    assert empty.status_code == 400 and "Xin chọn một mức đánh giá" in empty.get_data(as_text=True)
    assert client.post(url, data={"item": "OVERALL", "answer": "3"}).status_code == 303
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        row = session.scalars(select(QrResponse)).one()
        assert row.status == "complete" and row.answers["SCREEN_FEEDBACK"]["value"] == 0
        assert "C17" not in row.answers and "C19" not in row.answers and len(row.answers) == 18


def test_unknown_code_and_deactivated_poster_say_so_kindly(
        client: Any, make_poster: Callable[..., QrPoster]) -> None:
    unknown = client.get("/q/ACDEFGHJK")
    assert unknown.status_code == 404 and "Không tìm thấy mã này" in unknown.get_data(as_text=True)
    poster = make_poster()
    started, _ = fill(client, poster.code, {}, stop_after=2)
    off = client.post(f"/api/v1/qr-posters/{poster.id}/deactivate")
    assert off.status_code == 200 and off.json["active"] is False
    page = client.get(f"/q/{poster.code}")
    assert page.status_code == 410 and "không còn được sử dụng" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    english = client.get(f"/q/{poster.code}?lang=en")
    assert english.status_code == 410 and "no longer in use" in english.get_data(as_text=True)
    assert client.post(f"/q/{poster.code}", data={"procedure": "x"}).status_code == 410
    # A form begun before can still be finished.
    assert client.post(started, data={"item": "C03", "answer": "4"}).status_code == 303


def test_rate_limit_answers_429_in_vietnamese_after_the_limit(
        make_settings: Callable[..., Any], clock: Clock, make_agency: Callable[..., int]) -> None:
    app = create_app(make_settings(form_rate_limit="2 per hour"), clock=clock)
    try:
        svc = app.extensions["sipas"]
        agency_id = make_agency(app=app)
        with svc.db.begin() as session:
            code = qr.create_poster(session, svc.registry, agency_id, "Quầy 1", "https://k.test", clock()).code
        client = app.test_client()
        assert [client.post(f"/q/{code}", data={"procedure": "x"}).status_code for _ in range(2)] == [303, 303]
        stuffed = client.post(f"/q/{code}", data={"procedure": "x"})
        assert stuffed.status_code == 429 and stuffed.mimetype == "text/html"
        assert "Quá nhiều lượt gửi" in stuffed.get_data(as_text=True)
        other = app.test_client()
        other.environ_base["REMOTE_ADDR"] = "10.0.0.7"                # another address is not limited
        assert other.post(f"/q/{code}", data={"procedure": "x"}).status_code == 303
        with svc.db.begin() as session:
            assert session.scalar(select(func.count()).select_from(QrResponse)) == 3
            token = session.scalars(select(QrResponse.token).order_by(QrResponse.id)).first()
        # Answers: the same rate times ANSWERS_PER_FORM per address.
        url = f"/q/{code}/{token}"
        limit = 2 * 40
        codes = [client.post(url, data={"item": "C01", "answer": "4"}).status_code for _ in range(limit)]
        assert 429 not in codes
        assert client.post(url, data={"item": "C01", "answer": "4"}).status_code == 429
    finally:
        app.extensions["sipas"].db.dispose()


def test_a_left_form_counts_as_partial_or_break_off_and_cannot_be_resumed(
        app: Any, client: Any, clock: Clock, make_poster: Callable[..., QrPoster]) -> None:
    poster = make_poster()
    partial, _ = fill(client, poster.code, {}, stop_after=15)
    short, _ = fill(client, poster.code, {}, stop_after=2)
    assert scores(app, poster_id=poster.id).statuses["in_progress"] == 2
    clock.advance(minutes=61)
    found = scores(app, poster_id=poster.id)
    assert (found.statuses["partial"], found.statuses["break_off"], found.report.n_respondents) == (1, 1, 1)
    svc = app.extensions["sipas"]
    housekeeping.run(svc.db, svc.registry, svc.settings.export_dir, clock)   # the worker's sweep
    with svc.db.begin() as session:
        assert qr.sweep(session, svc.registry, clock()) == 0
        assert sorted(session.scalars(select(QrResponse.status))) == ["break_off", "partial"]
    assert client.post(partial, data={"item": "C15", "answer": "4"}).status_code == 409


# ============================================================================ kept apart

def test_qr_answers_never_change_campaign_scores_and_campaign_answers_never_enter_qr_scores(
        app: Any, client: Any, make_call: Callable[..., Call], make_poster: Callable[..., QrPoster],
        agency: int) -> None:
    call = make_call(agency=agency)
    call.survey({"CONSENT": "1", "SCREEN_FEEDBACK": "2"}, default="5")   # a very satisfied citizen by phone
    call.status("completed", CallDuration="80")
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        campaign_id = session.scalars(select(Interview.campaign_id)).one()
        before = results.campaign_scores(session, svc.registry, campaign_id)
        answers_before = session.scalar(select(func.count()).select_from(Answer))
    assert before.n_respondents == 1 and before.service_index == 100.0

    assert scores(app, agency_id=agency).report.n_respondents == 0     # the call is not a QR response
    poster = make_poster()
    for _ in range(3):
        fill(client, poster.code, {}, default="1")                       # three unhappy QR forms
    with svc.db.begin() as session:
        after = results.campaign_scores(session, svc.registry, campaign_id)
        assert session.scalar(select(func.count()).select_from(Answer)) == answers_before
        assert session.scalar(select(func.count()).select_from(Interview)) == 1
    assert after == before
    found = scores(app, poster_id=poster.id)
    assert found.report.n_respondents == 3 and found.report.service_index == 0.0
    assert found.report.criterion("C01").n_dissatisfied == 3 and found.sample == "self-selected"
    assert scores(app, agency_id=agency).report == found.report

    api = client.get(f"/api/v1/qr-posters/{poster.id}/scores?from=2026-11-01&to=2026-11-30")
    assert api.status_code == 200, api.json
    assert api.json["sample"] == "self-selected" and api.json["n_respondents"] == 3
    assert api.json["statuses"]["complete"] == 3 and "không phải mẫu xác suất" in api.json["note"]["vi"]
    outside = client.get(f"/api/v1/qr-posters/{poster.id}/scores?from=2026-10-01&to=2026-10-31")
    assert outside.json["n_respondents"] == 0
    bad = client.get(f"/api/v1/qr-posters/{poster.id}/scores?from=2026-11-30&to=2026-11-01")
    assert bad.status_code == 400 and bad.json["field"] == "to"


def test_export_is_titled_self_selected_and_holds_only_the_allowed_fields(
        app: Any, client: Any, make_poster: Callable[..., QrPoster], agency: int, tmp_path: Path) -> None:
    poster = make_poster("=HYPERLINK(\"http://x\")")
    fill(client, poster.code, {}, procedure="=cmd|' /C calc'!A0")
    fill(client, poster.code, {}, stop_after=3)
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        xlsx = qr.export(session, svc.registry, tmp_path, start=START, end=END, now=svc.clock(), agency_id=agency)
    assert "self-selected" in xlsx.name
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames == ["summary", "criteria", "factors", "responses"]
    summary = {row[0]: row[1] for row in book["summary"].iter_rows(min_row=2, values_only=True)}
    assert "tự chọn, không phải mẫu xác suất" in summary["title"] and "not a probability sample" in summary["title"]
    assert summary["sample"] == "self-selected" and summary["forms_started"] == 2
    q = svc.registry.get("sipas-qr-2024")
    allowed = [*qr.RESPONSE_COLUMNS, *(i.id for i in q.items)]
    rows = list(book["responses"].iter_rows(values_only=True))
    assert list(rows[0]) == allowed and len(rows) == 3
    assert rows[1][1].startswith("'=") and rows[1][3].startswith("'=")   # no formula runs
    with open(xlsx.with_name(xlsx.stem + "-responses.csv"), encoding="utf-8-sig") as f:
        assert next(csv.reader(f)) == allowed
    everything = " ".join(str(cell) for sheet in book for row in sheet.iter_rows(values_only=True)
                          for cell in row if cell is not None)
    with svc.db.begin() as session:
        tokens = list(session.scalars(select(QrResponse.token)))
    assert tokens and not any(token in everything for token in tokens)  # the form's credential stays out


# ============================================================================ operator access

def test_operators_of_another_agency_get_404_and_readers_cannot_write(
        app: Any, client: Any, make_agency: Callable[..., int], make_poster: Callable[..., QrPoster],
        agency: int) -> None:
    other = make_agency("X-KH", "UBND xã Khác")
    poster = make_poster()
    outsider = {"Authorization": f"Bearer {api_token(app, ['campaigns:read', 'campaigns:write'], other)}"}
    reader = {"Authorization": f"Bearer {api_token(app, ['campaigns:read'], agency)}"}
    insider = {"Authorization": f"Bearer {api_token(app, ['campaigns:read', 'campaigns:write'], agency)}"}
    for method, path in (("GET", f"/api/v1/qr-posters/{poster.id}/poster.svg"),
                         ("GET", f"/api/v1/qr-posters/{poster.id}/scores?from=2026-11-01&to=2026-11-30"),
                         ("POST", f"/api/v1/qr-posters/{poster.id}/deactivate"),
                         ("GET", f"/api/v1/agencies/{agency}/qr-posters"),
                         ("POST", f"/api/v1/agencies/{agency}/qr-posters")):
        reply = client.open(path, method=method, headers=outsider, json={"label": "x"} if method == "POST" else None)
        assert reply.status_code == 404, (path, reply.status_code)
        assert poster.code not in reply.get_data(as_text=True)
    assert client.post(f"/api/v1/qr-posters/{poster.id}/deactivate", headers=reader).status_code == 403
    assert client.get(f"/api/v1/qr-posters/{poster.id}/poster.svg", headers=reader).status_code == 200
    listed = client.get(f"/api/v1/agencies/{agency}/qr-posters", headers=reader)
    assert [p["code"] for p in listed.json] == [poster.code]
    assert client.get("/api/v1/qr-posters/999999/poster.svg", headers=insider).status_code == 404
    made = client.post(f"/api/v1/agencies/{agency}/qr-posters", headers=insider, json={"label": " "})
    assert made.status_code in (400, 422) and made.json["field"] == "label"
    assert client.post(f"/api/v1/qr-posters/{poster.id}/deactivate", headers=insider).status_code == 200


def test_cli_creates_a_poster_svg_and_lists_it(run_cli: Callable[..., Any], app: Any, agency: int,
                                               tmp_path: Path) -> None:
    out = tmp_path / "poster.svg"
    env = {"SIPAS_DATABASE_URL": app.extensions["sipas"].settings.database_url,
           "SIPAS_SURVEY_BASE_URL": "https://khaosat.test"}
    made = run_cli("qr", "create", "--agency", "X-ND", "--label", "Quầy 1", "--out", str(out), env=env)
    assert made.returncode == 0, made.stderr
    code = made.stdout.split()[2]
    assert f"https://khaosat.test/q/{code}" in made.stdout
    assert ElementTree.parse(out).getroot().get("viewBox") == "0 0 210 297"
    listed = run_cli("qr", "list", "--agency", "X-ND", env=env)
    assert listed.returncode == 0 and code in listed.stdout and "Quầy 1" in listed.stdout
    missing = run_cli("qr", "create", "--agency", "NOPE", "--label", "x", env=env)
    assert missing.returncode != 0 and "--agency" in missing.stderr
    exported = run_cli("qr", "export", "--agency", "X-ND", "--from", "2026-11-01", "--to", "2026-11-30",
                       env={**env, "SIPAS_EXPORT_DIR": str(tmp_path / "out")})
    assert exported.returncode == 0, exported.stderr
    written = Path(exported.stdout.strip())
    assert written.parent == tmp_path / "out" and written.name.startswith("qr-self-selected-agency-")
    assert "không phải mẫu xác suất" in openpyxl.load_workbook(written)["summary"]["B2"].value
