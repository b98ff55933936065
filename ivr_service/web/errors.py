"""The one mapping from service errors to HTTP, and the one shape of an error body.

Every error the JSON API answers, whether a service refused the request, the request did
not match its schema, or the route does not exist, is

    {"message": "calls_per_second: expected more than 0 …", "field": "calls_per_second",
     "detail": {…}}

``message`` is for people and names the field; ``field`` is the input at fault (null when
the error is not about one); ``detail`` holds what the schema validator found, per
location and field. The OpenAPI document states this shape for every error response.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from apiflask import APIFlask
from apiflask.exceptions import HTTPError
from flask import redirect, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge

from ..services.errors import Conflict, InvalidInput, NotFound, ServiceError
from .access import Forbidden, Unauthorized

STATUS: dict[type[ServiceError], int] = {InvalidInput: 400, NotFound: 404, Conflict: 409}

# Endpoints whose JSON bodies may exceed SIPAS_MAX_JSON_KB: a batch of 1,000 transactions
# with Vietnamese procedure names is a few hundred KB (SIPAS_MAX_REQUEST_MB still applies).
LARGER_JSON = {"api_v1.report_batch": 2 * 1024 * 1024}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message", "field", "detail"],
    "properties": {
        "message": {"type": "string", "description": "What went wrong, naming the field at fault"},
        "field": {"type": "string", "nullable": True, "description": "The input at fault, if one is"},
        "detail": {"type": "object", "description": "Schema validation errors: {location: {field: [messages]}}"},
    },
}


def status_of(exc: ServiceError) -> int:
    return next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 400)


def body(message: str, field: str | None = None, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"message": message, "field": field, "detail": detail or {}}


def service_error(exc: ServiceError) -> tuple[dict[str, Any], int]:
    return body(exc.message, exc.field), status_of(exc)


def _first_field(detail: Any) -> tuple[str, str] | None:
    """The first (field, message) of a validation error's {location: {field: [messages]}}."""
    if not isinstance(detail, dict):
        return None
    for errors in detail.values():
        if isinstance(errors, dict):
            for name, messages in errors.items():
                text = messages[0] if isinstance(messages, list) and messages else messages
                if isinstance(text, dict):   # a nested field: name its first key too
                    inner = _first_field({"": text})
                    return (f"{name}.{inner[0]}", inner[1]) if inner else (str(name), "invalid")
                return str(name), str(text)
    return None


def init_app(app: APIFlask) -> None:
    app.config["HTTP_ERROR_SCHEMA"] = ERROR_SCHEMA
    app.config["VALIDATION_ERROR_SCHEMA"] = ERROR_SCHEMA

    # Raised by the access guard before any view runs, so mapped for the whole app
    # (the webhooks' blueprint answers its own errors in plain text).
    @app.errorhandler(ServiceError)
    def _service(exc: ServiceError) -> tuple[dict[str, Any], int]:
        return service_error(exc)

    @app.errorhandler(Unauthorized)
    def _unauthorized(exc: Unauthorized) -> Any:
        if request.blueprint == "console" or request.endpoint == "openapi.docs":
            # A person at a page: to the sign-in page, and back here afterwards.
            login = "/auth/login?" + urlencode({"next": request.full_path.rstrip("?")})
            if request.headers.get("HX-Request"):
                return "", 401, {"HX-Redirect": login}
            return redirect(login)
        return body(str(exc)), 401, {"WWW-Authenticate": 'Bearer realm="sipas"'}

    @app.errorhandler(Forbidden)
    def _forbidden(exc: Forbidden) -> tuple[dict[str, Any], int]:
        return body(str(exc)), 403

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> tuple[dict[str, Any], int]:
        return body(f"csrf_token: {exc.description}", "csrf_token"), 400

    @app.before_request
    def _bounded_json() -> None:
        # Checked on the declared length before anything reads the body (the whole-request
        # limit, MAX_CONTENT_LENGTH, still applies to bodies sent without one).
        limit = max(app.config["MAX_JSON_BYTES"], LARGER_JSON.get(request.endpoint or "", 0))
        if request.is_json and (request.content_length or 0) > limit:
            raise RequestEntityTooLarge(f"a JSON body may hold at most {limit} bytes (SIPAS_MAX_JSON_KB)")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> tuple[dict[str, Any], int]:
        default = RequestEntityTooLarge.description
        message = (exc.description if exc.description != default else
                   f"the request is larger than {app.config['MAX_CONTENT_LENGTH']} bytes (SIPAS_MAX_REQUEST_MB)")
        return body(message), 413

    @app.error_processor
    def http_error(error: HTTPError) -> tuple[dict[str, Any], int, Any]:
        first = _first_field(error.detail) if error.status_code == 422 else None
        if first is not None:
            return body(f"{first[0]}: {first[1]}", first[0], error.detail), error.status_code, error.headers
        return body(error.message or "error", None, error.detail), error.status_code, error.headers
