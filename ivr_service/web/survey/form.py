"""The survey form at an SMS invitation's short link, and the stop-messages page."""

from __future__ import annotations

from . import bp  # noqa: F401
