"""Telephony webhooks: parse the provider's parameters, call the service, reply in TwiML.

Routes only parse and render; ``services.voice`` decides. Each request commits before it
replies, so an answer is stored before the next question is asked.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from functools import lru_cache

from apiflask import APIBlueprint
from flask import Response, current_app, request
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from werkzeug.datastructures import MultiDict

from ..services import voice
from ..services.errors import NotFound, ServiceError, invalid
from .access import public
from .context import services
from .errors import status_of
from .twiml import render
from .urls import webhook_url

bp = APIBlueprint("voice", __name__, url_prefix="/voice", enable_openapi=False)

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
TOKEN = re.compile(r"^[0-9a-f]{32}$")
ITEM = re.compile(r"^[A-Za-z0-9_]{1,40}$")
MAX_SPEECH = 1000


@bp.before_request
def check_signature() -> Response | None:
    """Reject any webhook not signed by the provider, before anything is read or stored.

    The signature covers the URL the provider called, which behind a proxy is not the one
    this process sees: it is rebuilt from the public base URL setting.
    """
    settings = services().settings
    if not settings.validate_signatures:
        return None
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        return _forbidden(f"missing {SIGNATURE_HEADER} header")
    url = public_url(settings.public_base_url)
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    if not signed(settings.webhook_auth_token, url, request.form, signature, algorithm):
        return _forbidden(f"invalid {SIGNATURE_HEADER} for {request.path}")
    return None


def signed(auth_token: str, url: str, form: MultiDict[str, str], signature: str, algorithm: str) -> bool:
    """The twilio library's check, cheaper where it passes: the signature of the URL as it
    was requested is computed first (one HMAC; Twilio signs the URL it requested), and only
    when it does not match does the library's own ``validate`` decide (which computes the
    URL with and without its port, and logs an unsupported algorithm)."""
    validator = _validator(auth_token)
    params = _Params(form.lists())
    try:
        expected = validator.compute_signature(url, params, algorithm)
    except ValueError:  # an algorithm the library does not know
        expected = ""
    if expected and hmac.compare_digest(expected.encode(), signature.encode()):
        return True
    return bool(validator.validate(url, params, signature, algorithm))


class _Params(dict[str, list[str]]):
    """A form as the library reads it first (``getall``): a werkzeug form would cost it two
    caught AttributeErrors per parameter."""

    def getall(self, name: str) -> list[str]:
        return self[name]


@lru_cache(maxsize=4)
def _validator(auth_token: str) -> RequestValidator:
    return RequestValidator(auth_token)


def public_url(base_url: str) -> str:
    """The URL the provider requested: public base + path + query string, as sent."""
    query = request.query_string.decode("latin-1")
    return base_url.rstrip("/") + request.path + (f"?{query}" if query else "")


def _forbidden(reason: str) -> Response:
    # The reason goes to the log only (never the form: it holds phone numbers).
    current_app.logger.warning("webhook refused (403): %s", reason)
    return Response("Forbidden: webhook signature check failed\n", status=403, mimetype="text/plain")


def _twiml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Response:
    # The provider only logs the body; plain text keeps it readable in its debugger.
    current_app.logger.warning("webhook rejected: %s", exc)
    return Response(exc.message + "\n", status=status_of(exc), mimetype="text/plain")


def _token(token: str) -> str:
    if not TOKEN.fullmatch(token):
        raise NotFound(f"unknown call attempt {token[:40]!r}")
    return token


def _call_sid() -> str:
    sid = request.form.get("CallSid", "")
    if not CALL_SID.fullmatch(sid):  # fullmatch: '$' alone lets a trailing newline in
        raise invalid("CallSid", f"expected 'CA' followed by 32 hex digits, got {sid[:40]!r}")
    return sid


def _run(token: str, handler: Callable[..., voice.VoiceReply], **kwargs: object) -> Response:
    svc = services()
    token, call_sid = _token(token), _call_sid()
    with svc.db.begin() as session:
        reply = handler(session, svc.registry, token, call_sid, now=svc.clock(), **kwargs)
        action = None
        if reply.item is not None:
            action = webhook_url(svc.settings.public_base_url, "gather", token, item=reply.item.id)
    return _twiml(render(reply, action, svc.voices))


@bp.post("/<token>/answer")
@public
def answer(token: str) -> Response:
    return _run(token, voice.answer_call, answered_by=request.form.get("AnsweredBy"))


@bp.post("/<token>/gather")
@public
def gather(token: str) -> Response:
    item = request.args.get("item", "")
    if not ITEM.fullmatch(item):
        raise invalid("item", f"expected an item id in the action URL, got {item[:40]!r}")
    digits = request.form.get("Digits")
    if digits is not None and not re.fullmatch(r"[0-9*#]*", digits):
        raise invalid("Digits", f"expected keypad keys 0-9, * or #, got {digits[:20]!r}")
    request_key = request.headers.get("I-Twilio-Idempotency-Token")
    if request_key is not None and not 0 < len(request_key) <= 100:
        raise invalid("I-Twilio-Idempotency-Token", "expected 1 to 100 characters")
    return _run(token, voice.gather, item_id=item, digits=digits, request_key=request_key, spoken=_spoken())


def _spoken() -> voice.Spoken | None:
    """Twilio's SpeechResult (what was heard) and Confidence (0 to 1), when given."""
    text = request.form.get("SpeechResult")
    if text is None:
        return None
    if len(text) > MAX_SPEECH:
        raise invalid("SpeechResult", f"expected at most {MAX_SPEECH} characters, got {len(text)}")
    raw = request.form.get("Confidence")
    confidence = None
    if raw not in (None, ""):
        try:
            confidence = float(raw)
        except ValueError:
            confidence = -1.0
        if not 0 <= confidence <= 1:   # also NaN and inf
            raise invalid("Confidence", f"expected a number from 0 to 1, got {raw[:20]!r}")
    return voice.Spoken(text, confidence)


@bp.post("/<token>/status")
@public
def status(token: str) -> Response:
    svc = services()
    form = request.form
    token, call_sid = _token(token), _call_sid()
    duration = form.get("CallDuration")
    # ASCII digits only ("²".isdigit() is true but int() rejects it), and small enough
    # for the INTEGER column.
    if duration is not None and not re.fullmatch(r"[0-9]{1,9}", duration):
        raise invalid("CallDuration", f"expected whole seconds, got {duration[:20]!r}")
    error_code = form.get("ErrorCode")
    if error_code is not None and len(error_code) > 20:
        raise invalid("ErrorCode", f"expected at most 20 characters, got {len(error_code)}")
    with svc.db.begin() as session:
        voice.call_status(session, svc.registry, token, call_sid, form.get("CallStatus", ""),
                          int(duration) if duration else None, error_code or None,
                          form.get("AnsweredBy"), svc.clock())
    return Response(status=204)
