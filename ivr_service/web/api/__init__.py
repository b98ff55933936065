"""JSON API, version 1: routes in one module per resource, request and response schemas in
``schemas``, every service error answered in the one shape of ``web.errors``. The OpenAPI
document (``/api/v1/openapi.json``) is generated from these declarations."""

from __future__ import annotations

from . import (
    accounts,
    alerts,
    campaigns,
    citizens,
    frames,
    messaging_accounts,
    optouts,
    programmes,
    qr,
    reports,
    results,
    transactions,
)
from .blueprint import bp

__all__ = ["accounts", "alerts", "bp", "campaigns", "citizens", "frames", "messaging_accounts", "optouts",
           "programmes", "qr", "reports", "results", "transactions"]
