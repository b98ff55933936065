"""The anonymous form behind a counter's QR poster."""

from __future__ import annotations

from . import bp  # noqa: F401
