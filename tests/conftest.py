"""Shared fixtures. Tests talk to a real database: SQLite by default, PostgreSQL when
TEST_DATABASE_URL is set. Each test starts from empty tables."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient
from sqlalchemy import text
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from ivr_service import create_app
from ivr_service.persistence import migrate
from ivr_service.persistence.db import make_engine
from ivr_service.persistence.models import Base
from ivr_service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """An injectable clock the tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


class SigningClient(FlaskClient):
    """A test client that signs webhook requests as Twilio does: X-Twilio-Signature over
    the public URL and the form, with the app's webhook token. ``sign=False`` sends a
    request unsigned; an explicit X-Twilio-Signature header is sent as given."""

    def open(self, *args: Any, sign: bool = True, **kwargs: Any) -> Any:
        path = args[0] if args and isinstance(args[0], str) else kwargs.get("path", "")
        headers = dict(kwargs.pop("headers", None) or {})
        if sign and path.startswith("/voice/") and "X-Twilio-Signature" not in headers:
            settings = self.application.extensions["sipas"].settings
            url = settings.public_base_url.rstrip("/") + path
            form = kwargs.get("data") or {}
            headers["X-Twilio-Signature"] = RequestValidator(settings.webhook_auth_token).compute_signature(
                url, {k: str(v) for k, v in form.items()})
        return super().open(*args, headers=headers, **kwargs)


# Every app built in the tests hands out signing clients (Twilio signs every webhook).
APIFlask.test_client_class = SigningClient


def reset_database(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        else:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    reset_database(url)
    migrate.upgrade(url)
    return url


@pytest.fixture
def clean_db(database_url: str) -> Iterator[str]:
    yield database_url
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        # Triggers wrote tallies for the rows just deleted; SQLite reuses ids afterwards.
        conn.execute(Base.metadata.tables["progress_deltas"].delete())
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    # A Tuesday, 09:00 in Hà Nội: inside the default calling window.
    return Clock(datetime(2026, 11, 17, 2, 0, tzinfo=timezone.utc))


@pytest.fixture
def make_settings(clean_db: str, tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"database_url": clean_db, "export_dir": str(tmp_path / "exports"),
                                  "public_base_url": "http://sipas.test", "secret_key": "test"}
        values.update(overrides)
        return Settings(**values)
    return build


@pytest.fixture
def app(make_settings: Callable[..., Settings], clock: Clock) -> Any:
    application = create_app(make_settings(), clock=clock)
    yield application
    application.extensions["sipas"].db.dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


class _Dispatcher:
    """WSGI app that forwards to an app set after the server bound its port."""

    app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture
def live_server(make_settings: Callable[..., Settings], clock: Clock) -> Iterator[Any]:
    """The app behind a real HTTP server on a free port; yields the app."""
    dispatcher = _Dispatcher()
    server = make_server("127.0.0.1", 0, dispatcher, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    dispatcher.app = create_app(make_settings(public_base_url=base), clock=clock)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield dispatcher.app
    server.shutdown()
    dispatcher.app.extensions["sipas"].db.dispose()
