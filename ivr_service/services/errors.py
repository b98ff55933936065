"""The errors services raise. They know nothing of HTTP or the command line: each edge
maps them once (``web/errors.py`` to JSON with a status code, ``cli`` to a message and an
exit code).

Messages are for people: they name the field, column, row or setting at fault and say
what was expected, e.g. ``"calls_per_second: expected more than 0 and at most 1000, got 0"``.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service cannot apply; nothing was stored.

    ``field`` names the input at fault when there is one (``"window"``, ``"Digits"``),
    so an API client can point at it without parsing the message.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ServiceError):
    """The input itself is wrong: a malformed value, an unreadable file, an unknown key."""


class Conflict(ServiceError):
    """The input is well formed but conflicts with the current state (a campaign that is
    already running, a code that is taken, a call that belongs to another attempt)."""


class NotFound(ServiceError):
    """The thing asked for does not exist."""


def invalid(field: str, detail: str) -> InvalidInput:
    """``InvalidInput("<field>: <detail>", field=field)``: the usual way to reject a value."""
    return InvalidInput(f"{field}: {detail}", field=field)
