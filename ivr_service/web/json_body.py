"""JSON request bodies that cannot crash the parser.

Python's ``json`` decoder recurses once per nested array or object: a body of 100,000
``[`` raises RecursionError, which no JSON error handler catches (a 500), and anything
deep that gets through is walked recursively again by the schema and the services. So
before any body is parsed its nesting is measured by a flat scan (no recursion, linear in
the body), and a body nested deeper than :data:`MAX_DEPTH`, or that is not UTF-8 JSON at
all, is refused as :class:`InvalidInput` (400 in the one error shape). No request of this
API needs more than four levels.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..services.errors import InvalidInput

MAX_DEPTH = 32
_TOKENS = re.compile(r'[\[\]{}"\\]')


def nesting_exceeds(text: str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in ``text`` nest deeper than ``max_depth`` (brackets
    inside strings do not count). Stops at the first level too deep."""
    depth, in_string, escaped = 0, False, -1
    for match in _TOKENS.finditer(text):
        position, char = match.start(), match.group()
        if position == escaped:          # the character after a backslash in a string
            continue
        if in_string:
            if char == "\\":
                escaped = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif char in "]}":
            depth -= 1
    return False


def load(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of a request body, or InvalidInput saying why it cannot be read."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"request body: not UTF-8 (byte {exc.start} is {raw[exc.start:exc.start + 1]!r})") \
            from None
    # Fewer opening brackets in all than the depth allowed cannot nest deeper: most bodies
    # are told apart by two counts in C instead of a scan of every bracket and quote.
    if raw.count(b"[") + raw.count(b"{") > max_depth and nesting_exceeds(text, max_depth):
        raise InvalidInput(f"request body: JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"request body: not valid JSON ({exc})") from None
    except ValueError:   # the only other one: an integer beyond Python's digit limit
        raise InvalidInput("request body: a number with too many digits") from None
    except RecursionError:   # not reached within MAX_DEPTH; kept so a stack can never become a 500
        raise InvalidInput(f"request body: JSON nested deeper than {max_depth} levels") from None
