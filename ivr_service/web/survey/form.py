"""The survey form at an SMS invitation's short link, and the stop-messages page.

``GET /s/<code>`` shows one item per screen (``?item=<id>``: an item answered earlier, the
Back link); ``POST /s/<code>`` stores one answer and redirects (303) to the next screen;
``GET|POST /s/<code>/stop`` refuses further messages. The protocol is written down in
``services/webform.py``. Plain HTML forms, no JavaScript, no external resources; ``lang``
travels in the query string and a hidden field.

The UI strings live in a small vi/en dict here rather than in Flask-Babel catalogues (the
operators' console uses Flask-Babel): the citizen's pages stay dependency-free and tiny.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from flask import Response, current_app, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from ...services import webform
from ...services.errors import InvalidInput, NotFound
from ...services.webform import LinkClosed, LinkState, LinkStatus, NotAsked
from ..access import public
from ..context import services
from . import bp

LANGUAGES = ("vi", "en")
# Link-preview bots and security scanners fetch links before people do: never an open.
BOTS = re.compile(r"bot|preview|crawler|spider|facebookexternalhit|zalo|whatsapp|telegrambot|slackbot"
                  r"|skypeuripreview", re.IGNORECASE)
ITEM = re.compile(r"^[A-Za-z0-9_]{1,40}$")
# What Werkzeug leaves unquoted in a path segment and in a query (its url_for).
PATH_SAFE, QUERY_SAFE = "!$&'()*+,/:;=@", "!$'()*,/:;?@"

UI: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Khảo sát sự hài lòng",
        "intro": "{agency} mời Ông/bà đánh giá dịch vụ hành chính công đã sử dụng. Mỗi trang một câu hỏi, "
                 "chỉ mất vài phút.",
        "privacy": "Câu trả lời được giữ kín, không ghi danh tính và chỉ dùng để cải thiện dịch vụ.",
        "progress": "Câu {n}/{total}",
        "next": "Tiếp tục",
        "back": "Quay lại câu trước",
        "switch": "English",
        "error_answer": "Xin chọn một câu trả lời.",
        "error_item": "Câu hỏi đó không còn được hỏi. Xin trả lời câu dưới đây.",
        "thanks_title": "Cảm ơn Ông/bà!",
        "thanks": "Câu trả lời của Ông/bà đã được ghi nhận. Cảm ơn Ông/bà đã dành thời gian tham gia khảo sát.",
        "refused_title": "Đã ghi nhận",
        "refused": "Chúng tôi đã ghi nhận và sẽ không gửi tin nhắn khảo sát cho Ông/bà nữa.",
        "finished_title": "Khảo sát đã kết thúc",
        "finished": "Phiếu khảo sát này đã được trả lời hoặc đã đóng, nên không nhận thêm câu trả lời. "
                    "Cảm ơn Ông/bà.",
        "expired_title": "Đường link đã hết hạn",
        "expired": "Rất tiếc, thời hạn trả lời khảo sát qua đường link này đã hết. Cảm ơn Ông/bà đã quan tâm.",
        "unknown_title": "Không tìm thấy khảo sát",
        "unknown": "Không tìm thấy khảo sát theo đường link này. Xin kiểm tra lại đường link trong tin nhắn.",
        "stop": "Từ chối nhận tin",
        "stop_title": "Từ chối nhận tin nhắn khảo sát",
        "stop_ask": "Ông/bà không muốn nhận thêm tin nhắn hay cuộc gọi khảo sát từ cơ quan nhà nước qua số "
                    "điện thoại này? Số điện thoại sẽ được đưa vào danh sách không liên hệ ngay lập tức.",
        "stop_confirm": "Xác nhận từ chối",
        "stop_cancel": "Quay lại khảo sát",
        "stop_done_title": "Đã từ chối nhận tin",
        "stop_done": "Chúng tôi đã ghi nhận. Số điện thoại của Ông/bà sẽ không nhận thêm tin nhắn hay cuộc gọi "
                     "khảo sát nào nữa.",
    },
    "en": {
        "title": "Satisfaction survey",
        "intro": "{agency} invites you to rate the public administrative service you used. One question "
                 "per page; it takes only a few minutes.",
        "privacy": "Your answers are confidential, anonymous and used only to improve the service.",
        "progress": "Question {n} of {total}",
        "next": "Next",
        "back": "Back to the previous question",
        "switch": "Tiếng Việt",
        "error_answer": "Please choose an answer.",
        "error_item": "That question is no longer asked. Please answer the one below.",
        "thanks_title": "Thank you!",
        "thanks": "Your answers have been recorded. Thank you for taking the time to answer our survey.",
        "refused_title": "Noted",
        "refused": "We have noted your choice and will not send you survey messages again.",
        "finished_title": "This survey is over",
        "finished": "This survey has already been answered or is closed, so it takes no more answers. Thank you.",
        "expired_title": "This link has expired",
        "expired": "Sorry, the time to answer the survey through this link is over. Thank you for your interest.",
        "unknown_title": "Survey not found",
        "unknown": "No survey was found at this link. Please check the link in the message.",
        "stop": "Stop messages",
        "stop_title": "Stop survey messages",
        "stop_ask": "You do not want any more survey messages or calls from state agencies at this phone "
                    "number? The number goes on the do-not-contact list at once.",
        "stop_confirm": "Confirm: stop messages",
        "stop_cancel": "Back to the survey",
        "stop_done_title": "Messages stopped",
        "stop_done": "We have noted your choice. Your phone number will not receive any more survey messages "
                     "or calls.",
    },
}
HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",          # the link code is the credential
    "X-Content-Type-Options": "nosniff",
    # No scripts, no external resources, forms post only here.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


def _lang(default: str = "vi") -> str:
    chosen = request.values.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return default if default in LANGUAGES else "vi"


def _explicit_lang() -> str | None:
    chosen = request.values.get("lang")
    return chosen if chosen in LANGUAGES else None


def _url(code: str, stop: bool = False, **query: str | None) -> str:
    """The path of a page of the link ``code`` (the form, or its stop page), as ``url_for``
    builds it (quoting, query order, None left out), for a fraction of its cost: a page
    links four or five times to its own link."""
    path = f"{request.script_root}/s/{quote(code, safe=PATH_SAFE)}{'/stop' if stop else ''}"
    given = [(k, v) for k, v in query.items() if v is not None]
    return f"{path}?{urlencode(given, safe=QUERY_SAFE)}" if given else path


def _page(template: str, status: int, lang: str, code: str, **context: Any) -> Response:
    other = "en" if lang == "vi" else "vi"
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "lang"}
    switch = _url(code, request.endpoint == "survey.stop", **{**args, "lang": other})
    # Straight from the Jinja environment: these pages use nothing of Flask's template
    # context (request, session, the console's helpers), which costs more than the page.
    html = current_app.jinja_env.get_template(template).render(
        lang=lang, t=UI[lang], code=code, switch=switch, other=other,
        stop_url=_url(code, stop=True, lang=_explicit_lang()), **context)
    return Response(html, status=status, headers=HEADERS, mimetype="text/html")


def _message(state: str, lang: str, code: str, status: int, **context: Any) -> Response:
    return _page("survey/message.html", status, lang, code, title=UI[lang][f"{state}_title"],
                 text=UI[lang][state], **context)


def _is_person() -> bool:
    if request.method != "GET":
        return False
    return not BOTS.search(request.headers.get("User-Agent", ""))


def _show(state: LinkState, lang: str, status: int = 200, error: str | None = None) -> Response:
    if state.status is LinkStatus.UNKNOWN:
        return _message("unknown", lang, state.code, 404)
    if state.status is LinkStatus.EXPIRED:
        return _message("expired", lang, state.code, 410)
    if request.method == "POST" and state.status is LinkStatus.FINISHED:
        return _message("finished", lang, state.code, 409)     # accepts nothing more
    if state.status is LinkStatus.FINISHED and state.answered_here:
        return _message("thanks", lang, state.code, 200)
    if state.status is LinkStatus.FINISHED and state.outcome == "refused":
        return _message("refused", lang, state.code, 200)
    if state.status is LinkStatus.FINISHED or state.item is None:
        return _message("finished", lang, state.code, 200)
    item = state.item
    options = [(o.key, o.label.get(lang)) for o in item.scale.options]
    if item.scale.no_opinion_key is not None and item.scale.no_opinion_label is not None:
        options.append((item.scale.no_opinion_key, item.scale.no_opinion_label.get(lang)))
    back = None
    if state.previous is not None:
        back = _url(state.code, item=state.previous, lang=_explicit_lang())
    t = UI[lang]
    return _page("survey/item.html", status, lang, state.code, state=state, item=item,
                 question=item.text.get(lang), section=state.section_title.get(lang) if state.section_title else "",
                 options=options, back=back, error=error,
                 progress=t["progress"].format(n=state.position, total=state.total),
                 intro=t["intro"].format(agency=state.agency or "") if state.answered == 0 else None,
                 action=_url(state.code))


@bp.get("/s/<code>")
@public
def form(code: str) -> Response:
    svc = services()
    show = request.args.get("item")
    show = show if show and ITEM.fullmatch(show) else None
    with svc.db.begin() as session:
        state = webform.open_link(session, svc.registry, code, svc.clock(), _is_person(), show)
    return _show(state, _lang(state.language))


@bp.post("/s/<code>")
@public
def submit(code: str) -> BaseResponse:
    svc = services()
    item = request.form.get("item", "")
    key = request.form.get("answer")
    try:
        with svc.db.begin() as session:
            state = webform.answer(session, svc.registry, code, item[:40], key, svc.clock())
    except NotFound:
        return _message("unknown", _lang(), code[:12], 404)
    except LinkClosed as exc:
        return _show(exc.state, _lang(exc.state.language))
    except (InvalidInput, NotAsked) as exc:
        # The same screen again (or the current one), with what went wrong.
        with svc.db.begin() as session:
            state = webform.open_link(session, svc.registry, code, svc.clock(), False,
                                      item if exc.field == "answer" else None)
        lang = _lang(state.language)
        message = UI[lang]["error_answer" if exc.field == "answer" else "error_item"]
        return _show(state, lang, 422 if exc.field == "answer" else 409, error=message)
    # The next item, or the thanks page once finished: always a GET (reload-safe).
    return redirect(_url(state.code, lang=_explicit_lang()), 303)


@bp.route("/s/<code>/stop", methods=["GET", "POST"])
@public
def stop(code: str) -> Response:
    svc = services()
    if request.method == "POST":
        try:
            with svc.db.begin() as session:
                stopped = webform.stop(session, svc.registry, code, svc.clock())
        except NotFound:
            return _message("unknown", _lang(), code[:12], 404)
        return _message("stop_done", _lang(stopped.language), stopped.code, 200)
    with svc.db.begin() as session:
        language = webform.link_language(session, code)
    if language is None:
        return _message("unknown", _lang(), code[:12], 404)
    lang = _lang(language)
    return _page("survey/stop.html", 200, lang, code.upper(),
                 back=_url(code.upper(), lang=_explicit_lang()), action=_url(code.upper(), stop=True))
