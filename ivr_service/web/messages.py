"""SMS webhooks, signed by the provider: delivery status callbacks
(``POST /sms/<token>/status``) and messages citizens send (``POST /sms/inbound``).

The signature is checked exactly as for the voice webhooks (the same
:func:`web.voice.check_signature`, before anything is read or stored); the route only
parses Twilio's parameters (``MessageSid``, ``MessageStatus``, ``ErrorCode``) and
``services.messaging.apply_status`` decides. An inbound message goes to
``services.inbound.receive`` and is answered with an empty TwiML ``<Response/>``: any
reply (the opt-out confirmation) is a message of our own, sent by the message round.

eSMS calls back unsigned (GET, retried a few times): ``/sms/esms/<account>/<secret>/status``
is exempt from the signature check and authenticated instead by the account's callback
secret in its path (compared in constant time; 403 without saying what was wrong). Its
``SendStatus`` is read by ``core.delivery``'s eSMS table, like every provider's status.
"""

from __future__ import annotations

import re
from typing import Any

from apiflask import APIBlueprint
from flask import Response, current_app, request

from ..core import delivery
from ..services import inbound, messaging, messaging_accounts
from ..services.errors import NotFound, ServiceError, invalid
from .access import public
from .context import services
from .errors import status_of
from .urls import SMS_PREFIX
from .voice import check_signature

bp = APIBlueprint("sms", __name__, url_prefix=SMS_PREFIX, enable_openapi=False)
# Callbacks a provider cannot sign: each checks the secret in its own path instead.
UNSIGNED = frozenset({"sms.esms_status"})


@bp.before_request
def _signed() -> Response | None:
    if request.endpoint in UNSIGNED:
        return None
    return check_signature()


MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
TOKEN = re.compile(r"^[0-9a-f]{32}$")
ERROR_CODE = re.compile(r"^[0-9]{1,10}$")
MAX_BODY = 1600            # Twilio's longest message
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SMS_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
SECRET = re.compile(r"^[0-9a-f]{1,64}$")


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Response:
    current_app.logger.warning("SMS webhook rejected: %s", exc)
    return Response(exc.message + "\n", status=status_of(exc), mimetype="text/plain")


@bp.post("/<token>/status")
@public
def status(token: str) -> Response:
    if not TOKEN.fullmatch(token):
        raise NotFound(f"unknown message {token[:40]!r}")
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not MESSAGE_SID.fullmatch(sid):
        raise invalid("MessageSid", f"expected 'SM' followed by 32 hex digits, got {sid[:40]!r}")
    error_code = form.get("ErrorCode") or None
    if error_code is not None and not ERROR_CODE.fullmatch(error_code):
        raise invalid("ErrorCode", f"expected a numeric code, got {error_code[:20]!r}")
    svc = services()
    with svc.db.begin() as session:
        messaging.apply_status(session, svc.registry, token, sid, form.get("MessageStatus") or
                               form.get("SmsStatus") or "", error_code, svc.clock(),
                               prices=svc.settings.sms_price_table)
    return Response(status=204)


@bp.post("/inbound")
@public
def inbound_message() -> Response:
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not MESSAGE_SID.fullmatch(sid):
        raise invalid("MessageSid", f"expected 'SM' followed by 32 hex digits, got {sid[:40]!r}")
    sender = form.get("From")
    if not sender or len(sender) > 40:
        raise invalid("From", "expected the sender's number")
    if not form.get("To"):
        raise invalid("To", "expected the number the message was sent to")
    body = form.get("Body")
    if body is None or len(body) > MAX_BODY:
        raise invalid("Body", f"expected the message text (at most {MAX_BODY} characters)")
    svc = services()
    with svc.db.begin() as session:
        inbound.receive(session, svc.registry, svc.settings.provider, sid, sender, body, svc.clock(),
                        svc.settings.opt_out_words)
    return Response(EMPTY_TWIML, status=200, mimetype="text/xml")


@bp.route("/esms/<int:account_id>/<secret>/status", methods=["GET", "POST"])
@public
def esms_status(account_id: int, secret: str) -> Response:
    """One eSMS delivery report (SMSID, RequestId = our token, SendStatus). Idempotent: a
    repeated report changes nothing; answers 200 so eSMS stops retrying."""
    body: Any = request.get_json(silent=True) if request.is_json else None
    values = body if isinstance(body, dict) else request.values
    svc = services()
    with svc.db.begin() as session:
        if not SECRET.fullmatch(secret) or not messaging_accounts.check_callback(session, account_id, secret):
            current_app.logger.warning("eSMS callback refused: bad account or secret")
            return Response("forbidden\n", status=403, mimetype="text/plain")
        token = str(values.get("RequestId") or "")
        if not TOKEN.fullmatch(token):
            raise invalid("RequestId", f"expected 32 hex digits, got {token[:40]!r}")
        sms_id = str(values.get("SMSID") or "") or None
        if sms_id is not None and not SMS_ID.fullmatch(sms_id):
            raise invalid("SMSID", f"expected letters, digits and hyphens, got {sms_id[:40]!r}")
        raw = str(values.get("SendStatus") or "")[:20]
        if raw.strip().lower() not in delivery.ESMS_STATUSES:
            raise invalid("SendStatus", f"unknown value {raw!r}; expected one of {sorted(delivery.ESMS_STATUSES)}")
        messaging.apply_status(session, svc.registry, token, sms_id, raw.strip(), None, svc.clock(),
                               account_id=account_id, id_field="SMSID")
    return Response("OK\n", status=200, mimetype="text/plain")
