"""The API blueprint, the one place where service errors become HTTP errors, and the one
check every JSON body passes before it is parsed."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import request

from ...services.errors import ServiceError
from .. import json_body
from ..errors import service_error

bp = APIBlueprint("api_v1", __name__, url_prefix="/api/v1", tag="SIPAS")


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> tuple[dict[str, Any], int]:
    return service_error(exc)


@bp.before_request
def _check_json_body() -> None:
    """Refuse a JSON body nested too deeply or unreadable, before anything parses it.

    Here rather than in ``app.json``: the schemas' parser (webargs, behind ``@bp.input``)
    decodes the body with the standard ``json`` module itself and never calls the app's
    JSON provider, and its own error handling lets a RecursionError through as a 500.
    An empty body is left alone: routes without a body keep accepting a bare JSON content
    type, and a route that needs one says so through its schema.
    """
    if request.is_json:
        raw = request.get_data(cache=True)
        if raw:
            json_body.load(raw)
