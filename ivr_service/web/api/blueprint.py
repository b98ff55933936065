"""The API blueprint, and the one place where service errors become HTTP errors."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint

from ...services.errors import ServiceError
from ..errors import service_error

bp = APIBlueprint("api_v1", __name__, url_prefix="/api/v1", tag="SIPAS")


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> tuple[dict[str, Any], int]:
    return service_error(exc)
