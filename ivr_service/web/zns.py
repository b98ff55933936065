"""Zalo ZNS delivery events: ``POST /zns/events``, signed by Zalo.

The signature (``X-ZEvent-Signature``: sha256 of app id + raw body + timestamp + OA
secret key, see :func:`providers.zns.signature_matches`) is checked over the raw body
before anything is stored; an event whose ``timestamp`` is further than
``SIPAS_ZNS_EVENT_TOLERANCE`` from our clock is refused as stale (a replay). Zalo wants
an answer within about 2 s: one short transaction, then 200.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from apiflask import APIBlueprint
from flask import Response, current_app, request

from ..providers.zns import SIGNATURE_HEADER, signature_matches
from ..services import zns_events
from ..services.errors import ServiceError, invalid
from .access import public
from .context import services
from .errors import status_of

bp = APIBlueprint("zns", __name__, url_prefix="/zns", enable_openapi=False)


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Response:
    current_app.logger.warning("ZNS event rejected: %s", exc)
    return Response(exc.message + "\n", status=status_of(exc), mimetype="text/plain")


def _refused(reason: str) -> Response:
    current_app.logger.warning("ZNS event refused: %s", reason)
    return Response(reason + "\n", status=403, mimetype="text/plain")


@bp.post("/events")
@public
def events() -> Response:
    svc = services()
    settings = svc.settings
    if not settings.zalo_app_id or not settings.zalo_oa_secret:
        return _refused("ZNS events are not accepted: SIPAS_ZALO_APP_ID and SIPAS_ZALO_OA_SECRET are not set")
    body = request.get_data(cache=False)
    try:
        event = json.loads(body)
    except ValueError:
        raise invalid("body", "expected a JSON object") from None
    if not isinstance(event, dict):
        raise invalid("body", "expected a JSON object")
    raw_timestamp = event.get("timestamp")
    if isinstance(raw_timestamp, bool) or not isinstance(raw_timestamp, (str, int)) \
            or not str(raw_timestamp).isdigit():
        raise invalid("timestamp", "expected milliseconds since 1970 as digits")
    timestamp = str(raw_timestamp)
    if not signature_matches(request.headers.get(SIGNATURE_HEADER, ""), settings.zalo_app_id, body, timestamp,
                             settings.zalo_oa_secret):
        return _refused(f"{SIGNATURE_HEADER} does not match this event")
    now = svc.clock()
    sent_at = datetime.fromtimestamp(int(timestamp) / 1000, UTC)
    if abs((now - sent_at).total_seconds()) > settings.zns_event_tolerance:
        return _refused("stale event: its timestamp is outside SIPAS_ZNS_EVENT_TOLERANCE")
    with svc.db.begin() as session:
        zns_events.apply_event(session, svc.registry, event, now)
    return Response(status=200)
