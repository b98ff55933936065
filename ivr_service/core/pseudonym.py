"""Pseudonymous phone numbers and the retention rules of personal data (issue 17).

Once a campaign's personal data is purged, or a citizen asks to be erased, a phone number
is kept only as a keyed hash: ``"h:" + hex(HMAC-SHA256(key, e164))``, cut to 18 hex
digits (72 bits) so that it fits the ``String(20)`` phone columns without a migration of
seven tables. With the key secret, a hash cannot be turned back into a number by trying
the ~10^9 Vietnamese numbers; with 72 bits, two numbers of a country share a hash with a
probability of about n² / 2^73 (10^-8 for ten million numbers), and all that costs is one
number treated as the other's opt-out or recent call. The key lives only in the
environment (``SIPAS_PHONE_HASH_KEY``), never in the database, and must never change: a
new key stops hashed opt-outs from matching.

Pure functions: the clock is always an argument.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime, timedelta

PREFIX = "h:"
DIGEST_HEX = 18                       # "h:" + 18 = 20 characters, the phone columns' size
# Decree 91/2020: a refusal is kept at least a year. The purge hashes opt-outs only after
# that year (operators may read them until then) and never deletes them: a refusal keeps
# being honoured, by hash.
OPT_OUT_CLEAR_DAYS = 365
# number_calls / number_messages serve the per-number 24 h caps; a row last touched more
# than this long ago no longer limits anything a plain number would need, so it is hashed.
CAP_CLEAR = timedelta(days=2)
CLOSED = ("completed", "cancelled")


def phone_hash(key: str, e164: str) -> str:
    """The stored form of a purged number (or of any value, e.g. a dossier code)."""
    digest = hmac.new(key.encode(), e164.encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:DIGEST_HEX]


def is_hashed(value: str | None) -> bool:
    return value is not None and value.startswith(PREFIX)


def stored_forms(key: str | None, phones: Iterable[str]) -> dict[str, str]:
    """Every form a number may be stored in (itself, and its hash when a key is set),
    mapped to the plain number: lookups match both."""
    forms: dict[str, str] = {}
    for phone in phones:
        forms[phone] = phone
        if key and not is_hashed(phone):
            forms[phone_hash(key, phone)] = phone
    return forms


def retention_days(agency_days: int | None, default_days: int) -> int:
    """An agency's own retention wins over the installation's setting."""
    return default_days if agency_days is None else agency_days


def purge_due(status: str, completed_at: datetime | None, export_path: str | None, days: int,
              now: datetime) -> bool:
    """Is a campaign's personal data due for purging? Once it is closed, its final export
    written (a completed campaign; a cancelled one never gets one, so its close is enough)
    and ``days`` have passed since it closed."""
    if status not in CLOSED or completed_at is None:
        return False
    if status == "completed" and export_path is None:
        return False
    return now >= completed_at + timedelta(days=days)
