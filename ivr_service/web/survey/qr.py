"""The anonymous form behind a counter's QR poster (seed 001).

``GET /q/<code>`` asks the field (lĩnh vực) or procedure; ``POST /q/<code>`` starts a form
and answers ``303`` to ``/q/<code>/<token>``, which shows one item per screen and takes
its answer by ``POST`` (``item``, ``answer``, optional ``lang``), then ``303`` to the next
item or the thanks page. The response token in the URL is the only credential: nothing
identifies the citizen. Starts and answers are rate-limited per address
(``SIPAS_FORM_RATE_LIMIT`` forms; answers that many times :data:`ANSWERS_PER_FORM`), so
nobody can stuff the box; a refused request gets a Vietnamese 429 page. Vietnamese first,
English with ``?lang=en``; no JavaScript; every page ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, render_template, request, url_for
from flask_limiter import RateLimitExceeded
from limits import parse_many

from ...core import flow
from ...core.messages import normal_code
from ...core.questionnaire import Item, Questionnaire
from ...persistence.models import InterviewStatus
from ...services import campaigns, qr
from ...services.errors import Conflict, InvalidInput, NotFound
from ..access import public
from ..auth import limiter
from ..context import services
from . import bp

ANSWERS_PER_FORM = 40     # every item of a form, with room for the back button
WORDS = {
    "vi": {
        "start": "Bắt đầu", "next": "Tiếp tục", "previous": "Câu trước", "field": "Lĩnh vực",
        "choose": "— Chọn lĩnh vực —", "procedure": "Thủ tục (nếu nhớ)", "field_free": "Lĩnh vực hoặc thủ tục",
        "question": "Câu", "of": "trên", "other_lang": "English", "switch": "en",
        "not_found": "Không tìm thấy mã này", "not_found_text": "Địa chỉ này không đúng. Xin kiểm tra lại mã trên tờ "
        "áp phích tại quầy.",
        "inactive": "Mã QR này không còn được sử dụng",
        "inactive_text": "Cơ quan đã ngừng nhận đánh giá qua mã này. Xin cảm ơn Ông/bà đã quan tâm; Ông/bà có "
        "thể hỏi cán bộ tại quầy về cách góp ý khác.",
        "finished": "Phiếu này đã hoàn thành", "finished_text": "Ông/bà đã trả lời phiếu này. Xin cảm ơn!",
        "limited": "Quá nhiều lượt gửi", "limited_text": "Có quá nhiều phiếu được gửi từ kết nối mạng này. "
        "Xin Ông/bà vui lòng thử lại sau ít phút. Xin cảm ơn!",
        "choose_answer": "Xin chọn một mức đánh giá.", "thanks": "Cảm ơn Ông/bà",
        "choose_field": "Xin chọn lĩnh vực trong danh sách hoặc ghi tên thủ tục (tối đa 200 ký tự).",
        "self_selected": "Phiếu không ghi danh tính.",
    },
    "en": {
        "start": "Start", "next": "Next", "previous": "Previous question", "field": "Field",
        "choose": "— Choose a field —", "procedure": "Procedure (if you remember it)",
        "field_free": "Field or procedure",
        "question": "Question", "of": "of", "other_lang": "Tiếng Việt", "switch": "vi",
        "not_found": "Code not found", "not_found_text": "This address is not right. Please check the code on the "
        "poster at the counter.",
        "inactive": "This QR code is no longer in use",
        "inactive_text": "The agency no longer takes ratings through this code. Thank you for your interest; "
        "staff at the counter can tell you other ways to give feedback.",
        "finished": "This form is finished", "finished_text": "You have already answered this form. Thank you!",
        "limited": "Too many submissions", "limited_text": "Too many forms were sent from this network. Please "
        "try again in a few minutes. Thank you!",
        "choose_answer": "Please choose one level.", "thanks": "Thank you",
        "choose_field": "Please choose a field from the list or write the procedure (at most 200 characters).",
        "self_selected": "This form is anonymous.",
    },
}


def _lang() -> str:
    return "en" if (request.values.get("lang") or "").strip().lower() == "en" else "vi"


def _page(template: str, status: int = 200, **context: Any) -> Response:
    lang = _lang()
    response = Response(render_template(f"survey/qr/{template}", lang=lang, w=WORDS[lang], **context),
                        status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _message(title: str, text: str, status: int) -> Response:
    words = WORDS[_lang()]
    return _page("message.html", status, title=words[title], text=words[text])


def _see_other(endpoint: str, **values: Any) -> Response:
    if _lang() == "en":
        values["lang"] = "en"
    return Response(status=303, headers={"Location": url_for(endpoint, **values), "Cache-Control": "no-store"})


def _form_rate() -> str:
    return services().settings.form_rate_limit


def _answer_rate() -> str:
    return ";".join(f"{item.amount * ANSWERS_PER_FORM} per {item.multiples} {item.GRANULARITY.name}"
                    for item in parse_many(_form_rate()))


def _limited(rate: Callable[[], str]) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Count the view's requests per address; past the rate, the kind 429 page (rendered
    here: the app answers other HTTP errors as JSON)."""
    def decorate(view: Callable[..., Response]) -> Callable[..., Response]:
        counted = limiter.limit(rate)(view)

        @wraps(view)
        def run(*args: Any, **kwargs: Any) -> Response:
            try:
                return counted(*args, **kwargs)
            except RateLimitExceeded:
                return _message("limited", "limited_text", 429)
        return run
    return decorate


def _intro(q: Questionnaire, agency: str, lang: str) -> str:
    return q.messages["intro"].get(lang).replace("{agency}", agency)


def _start_page(code: str, error: str | None = None, status: int = 200, field: str = "",
                procedure: str = "") -> Response:
    svc = services()
    with svc.db.begin() as session:
        try:
            poster = qr.poster_by_code(session, code)
        except NotFound:
            return _message("not_found", "not_found_text", 404)
        if not poster.active:
            return _message("inactive", "inactive_text", 410)
        q = svc.registry.get(poster.questionnaire_key)
        agency = campaigns.get_agency(session, poster.agency_id).name
        fields = qr.known_fields(session, poster.agency_id)
        context = {"code": poster.code, "label": poster.label, "agency": agency, "fields": fields,
                   "title": q.title.get(_lang()), "intro": _intro(q, agency, _lang()),
                   "consent": q.messages["consent"].get(_lang())}
    return _page("start.html", status, error=error, field=field, procedure=procedure, **context)


@bp.get("/q/<code>")
@public
def qr_poster(code: str) -> Response:
    return _start_page(code)


@bp.post("/q/<code>")
@public
@_limited(_form_rate)
def qr_start(code: str) -> Response:
    svc = services()
    field, procedure = request.form.get("field", ""), request.form.get("procedure", "")
    try:
        with svc.db.begin() as session:
            row = qr.start(session, code, svc.clock(), field=field, procedure=procedure)
            poster_code, token = qr.get_poster(session, row.poster_id).code, row.token
    except NotFound:
        return _message("not_found", "not_found_text", 404)
    except Conflict:
        return _message("inactive", "inactive_text", 410)
    except InvalidInput:
        return _start_page(code, error=WORDS[_lang()]["choose_field"], status=400, field=field[:200],
                           procedure=procedure[:200])
    return _see_other("survey.qr_item", code=poster_code, token=token)


def _progress(q: Questionnaire, responses: flow.Responses, item: Item) -> tuple[int, int]:
    asked = [i for i in q.items if qr.CHANNEL in i.channels and flow.is_applicable(i, responses)]
    ids = [i.id for i in asked]
    return (ids.index(item.id) + 1 if item.id in ids else len(ids)), len(ids)


def _item_page(code: str, token: str, shown: str | None = None, error: str | None = None,
               status: int = 200) -> Response:
    svc = services()
    lang = _lang()
    with svc.db.begin() as session:
        try:
            row = qr.get_response(session, token)
            poster = qr.get_poster(session, row.poster_id)
        except NotFound:
            return _message("not_found", "not_found_text", 404)
        if poster.code != (normal_code(code) or ""):
            return _message("not_found", "not_found_text", 404)
        q = svc.registry.get(poster.questionnaire_key)
        if row.status != InterviewStatus.IN_PROGRESS.value or qr.current_item(q, row) is None:
            return _page("thanks.html", title=WORDS[lang]["thanks"], text=q.messages["thanks"].get(lang))
        responses = qr.responses_of(row)
        item = qr.current_item(q, row)
        if shown and q.has_item(shown) and shown in responses and flow.is_applicable(q.item(shown), responses):
            item = q.item(shown)      # the back link: an answered item, shown again
        assert item is not None
        position, total = _progress(q, responses, item)
        previous = None
        answered = [i.id for i in q.items if i.id in responses and flow.is_applicable(i, responses)]
        before = [i for i in answered if q.items.index(q.item(i)) < q.items.index(item)]
        if before:
            previous = before[-1]
        chosen = responses.get(item.id)
        options = [(o.key, o.label.get(lang)) for o in item.scale.options]
        if item.scale.no_opinion_key and item.scale.no_opinion_label:
            options.append((item.scale.no_opinion_key, item.scale.no_opinion_label.get(lang)))
        chosen_key = None
        if chosen is not None:
            chosen_key = (item.scale.no_opinion_key if chosen.status is flow.AnswerStatus.NO_OPINION else
                          next((o.key for o in item.scale.options if o.value == chosen.value), None))
        context = {"code": poster.code, "token": row.token, "item": item.id, "text": item.text.get(lang),
                   "options": options, "chosen": chosen_key, "position": position, "total": total,
                   "previous": previous, "agency": campaigns.get_agency(session, poster.agency_id).name}
    return _page("item.html", status, error=error, **context)


@bp.get("/q/<code>/<token>")
@public
def qr_item(code: str, token: str) -> Response:
    return _item_page(code, token, shown=request.args.get("item"))


@bp.post("/q/<code>/<token>")
@public
@_limited(_answer_rate)
def qr_answer(code: str, token: str) -> Response:
    svc = services()
    item_id, key = request.form.get("item", "")[:40], request.form.get("answer", "")[:4]
    try:
        with svc.db.begin() as session:
            row = qr.get_response(session, token)
            if qr.get_poster(session, row.poster_id).code != (normal_code(code) or ""):
                raise NotFound("no form has this address")
            qr.answer(session, svc.registry, token, item_id, key, svc.clock())
    except NotFound:
        return _message("not_found", "not_found_text", 404)
    except Conflict as exc:
        if exc.field == "token":
            return _message("finished", "finished_text", 409)
        return _see_other("survey.qr_item", code=code, token=token)    # a stale screen: show the current item
    except InvalidInput as exc:
        if exc.field == "answer":
            return _item_page(code, token, shown=item_id, error=WORDS[_lang()]["choose_answer"], status=400)
        return _see_other("survey.qr_item", code=code, token=token)
    return _see_other("survey.qr_item", code=code, token=token)
