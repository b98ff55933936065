"""Logging set-up: readable text on a laptop, one JSON object per line in production.

Every record carries, where known, the request id (``X-Request-Id``, taken from the
request or made up, and echoed in the response) and the campaign and attempt it concerns,
from context variables set by the web edge, the voice webhooks and dispatch. Nothing of a
citizen goes into a log: log calls name attempts and contacts by id, and as a safety net
the handler masks anything that looks like a Vietnamese phone number (+84…, 84…,
0xxxxxxxxx, with or without spaces, dots or dashes) before it is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
campaign_id: ContextVar[int | None] = ContextVar("campaign_id", default=None)
attempt_id: ContextVar[int | None] = ContextVar("attempt_id", default=None)
CONTEXT: dict[str, ContextVar[Any]] = {"request_id": request_id, "campaign_id": campaign_id,
                                       "attempt_id": attempt_id}

# +84 / 84 / 0084 / 0, then 8 to 10 more digits, separators allowed between digits; not
# inside a longer run of digits or a word (an attempt token is letters and digits).
PHONE = re.compile(r"(?<![\w+])(?:\(?(?:\+|00)?84\)?[\s.-]?|0)\d(?:[\s.-]?\d){7,9}(?![\d])")
MASK = "<phone>"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def mask_phones(text: str) -> str:
    return PHONE.sub(MASK, text)


def bind(*, campaign: int | None = None, attempt: int | None = None) -> None:
    """Name the campaign and attempt the rest of this request or job concerns."""
    if campaign is not None:
        campaign_id.set(campaign)
    if attempt is not None:
        attempt_id.set(attempt)


@contextmanager
def bound(*, campaign: int | None = None, attempt: int | None = None) -> Iterator[None]:
    """:func:`bind` for a block (a worker handles many attempts in one thread)."""
    tokens = [campaign_id.set(campaign), attempt_id.set(attempt)]
    try:
        yield
    finally:
        attempt_id.reset(tokens[1])
        campaign_id.reset(tokens[0])


def clear() -> None:
    for var in CONTEXT.values():
        var.set(None)


class MaskPhones(logging.Filter):
    """Replace phone-number look-alikes in the message (arguments merged in) and exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phones(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phones(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the
    context ids that are set, and the exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, var in CONTEXT.items():
            value = var.get()
            if value is not None:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_phones(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class _ContextText(logging.Formatter):
    """The text format, with the request id appended when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = request_id.get()
        return f"{line} [request {rid}]" if rid else line


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else _ContextText(TEXT_FORMAT)


def configure(level: str, kind: str) -> None:
    """Log to stderr at ``level`` in ``kind`` ("text" or "json"). Like ``basicConfig``, it
    leaves a root logger configured by someone else (pytest's capture) alone; unlike it, it
    updates its own handler when called again (one process may build several apps).
    gunicorn's own loggers get the same format once the app is loaded in a worker."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "sipas", False)]
    if root.handlers and not ours:
        return
    if ours:
        handler = ours[0]
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.sipas = True  # type: ignore[attr-defined]
        handler.addFilter(MaskPhones())
        root.addHandler(handler)
    handler.setFormatter(formatter(kind))
    root.setLevel(level.upper())
    for name in ("gunicorn.error", "gunicorn.access"):
        for other in logging.getLogger(name).handlers:
            other.setFormatter(formatter(kind))
            if not any(isinstance(f, MaskPhones) for f in other.filters):
                other.addFilter(MaskPhones())
