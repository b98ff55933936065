"""The Zalo OA tokens of a ZNS account, kept in ``zns_tokens`` and shared by every worker.

Zalo's refresh token is single-use: two workers refreshing at once would each spend it, and
the slower one would store a token Zalo already replaced. So a refresh happens only under a
row lock on the account's row (``SELECT … FOR UPDATE``), re-read after the lock is taken: a
worker that waited finds the token its neighbour just stored and uses it. The access token
is renewed *before* it expires (less than :data:`REFRESH_MARGIN` left, by the ``now`` the
caller passes), and when Zalo refuses it anyway (:meth:`DbTokenSource.refresh`, with the
refused token, so a token another worker already replaced is not refreshed twice).

The HTTP call is made while the row is locked: it is short (one request with a timeout) and
it is the only way to keep the new refresh token from being lost. Tokens are never logged.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence.db import Database
from ..persistence.models import ZnsToken
from ..providers.messaging import AccountConfig
from ..providers.zns import TokenGrant, oauth_from_settings
from ..settings import Settings
from .errors import NotFound

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=10)


class Refresher(Protocol):
    def refresh(self, refresh_token: str) -> TokenGrant: ...


def store_grant(session: Session, account_key: str, access_token: str, refresh_token: str,
                expires_at: datetime, now: datetime) -> None:
    """Set an account's tokens (first install from the OA's console, or after re-authorising)."""
    row = session.get(ZnsToken, account_key, with_for_update=True)
    if row is None:
        session.add(ZnsToken(account_key=account_key, access_token=access_token, refresh_token=refresh_token,
                             expires_at=expires_at, updated_at=now))
    else:
        row.access_token, row.refresh_token, row.expires_at, row.updated_at = (
            access_token, refresh_token, expires_at, now)


class DbTokenSource:
    """:class:`providers.zns.TokenSource` over one ``zns_tokens`` row."""

    def __init__(self, db: Database, account_key: str, oauth: Refresher,
                 margin: timedelta = REFRESH_MARGIN) -> None:
        self.db = db
        self.account_key = account_key
        self.oauth = oauth
        self.margin = margin

    def access_token(self, now: datetime) -> str:
        with self.db.begin() as session:
            row = session.get(ZnsToken, self.account_key)
            if row is None:
                raise NotFound(f"no ZNS tokens for account {self.account_key!r}: store the OA's tokens first")
            if row.expires_at - now > self.margin:
                return row.access_token
        return self._refresh(now, rejected=None)

    def refresh(self, now: datetime, rejected: str) -> str:
        return self._refresh(now, rejected=rejected)

    def _refresh(self, now: datetime, rejected: str | None) -> str:
        with self.db.begin() as session:
            row = session.scalar(select(ZnsToken).where(ZnsToken.account_key == self.account_key)
                                 .with_for_update())
            if row is None:
                raise NotFound(f"no ZNS tokens for account {self.account_key!r}: store the OA's tokens first")
            fresh = row.expires_at - now > self.margin
            if fresh and (rejected is None or row.access_token != rejected):
                return row.access_token   # another worker renewed it while we waited for the lock
            grant = self.oauth.refresh(row.refresh_token)
            row.access_token, row.refresh_token = grant.access_token, grant.refresh_token
            row.expires_at, row.updated_at = now + timedelta(seconds=grant.expires_in_s), now
            log.info("ZNS account %s: access token renewed, valid until %s", self.account_key,
                     row.expires_at.isoformat())
            return grant.access_token


def account_key(account_id: int) -> str:
    """The ``zns_tokens`` row of messaging account ``account_id`` ("default": the installation's)."""
    return f"account:{account_id}"


def account_tokens(db: Database, settings: Settings, account: AccountConfig, now: datetime) -> DbTokenSource:
    """The token source of a ``zns`` messaging account: refreshed with the account's own
    Zalo app (``app_id``, ``secret_key``; the settings otherwise). The account's
    ``refresh_token`` credential starts its row when it has none yet (the first send then
    renews the access token); afterwards the row keeps the rotated tokens (store a new grant
    with :func:`store_grant` after re-authorising the OA)."""
    credentials = account.credentials
    oauth = oauth_from_settings(settings, credentials.get("app_id"), credentials.get("secret_key"))
    key = account_key(account.id)
    refresh_token = credentials.get("refresh_token")
    if refresh_token:
        with db.begin() as session:
            if session.get(ZnsToken, key) is None:
                session.add(ZnsToken(account_key=key, access_token="", refresh_token=str(refresh_token),
                                     expires_at=now, updated_at=now))
    return DbTokenSource(db, key, oauth)
