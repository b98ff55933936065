"""Shared fixtures. Tests talk to a real database: SQLite by default, PostgreSQL when
TEST_DATABASE_URL is set. Each test starts from empty tables.

Factories (fixtures returning a callable; each builds in the ``app`` fixture's database
unless given ``app=``):

* ``make_agency`` / ``make_frame`` / ``import_frame`` / ``make_campaign``: an agency, a
  transaction list, a sample drawn from it, a campaign (census of its frame, started);
* ``claim``: one dispatch round (due contacts become queued attempts);
* ``make_call``: a claimed attempt wrapped in :class:`Call`, the one driver that plays a
  call through the signed voice webhooks (answer, gather, status) and returns the TwiML;
* ``provider`` / ``place_calls``: a provider that records the calls it is asked to place;
* ``run_cli``: the command line in a subprocess.

Plain helpers read TwiML (``asked``, ``says``, ``prompts``, ``hangs_up``) and the database
(``snapshot``, ``count``, ``row``, ``answers``).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from ivr_service import create_app
from ivr_service.core.sampling import SampleRule
from ivr_service.core.access import TOKEN_SCOPES
from ivr_service.persistence import migrate
from ivr_service.persistence.db import make_engine
from ivr_service.persistence.models import Agency, Answer, Base
from ivr_service.providers import CallPlaced, CallRequest, CallState
from ivr_service.services import campaigns, dispatch, frames, programmes
from ivr_service.services.dispatch import Claimed, Pacing
from ivr_service.services import access
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
    request unsigned; an explicit X-Twilio-Signature header is sent as given.

    API requests carry the app's test token (an installation-wide token with every scope
    a token may hold, see ``api_token``) unless ``auth=False`` or an Authorization header
    is given."""

    def open(self, *args: Any, sign: bool = True, auth: bool = True, **kwargs: Any) -> Any:
        path = args[0] if args and isinstance(args[0], str) else kwargs.get("path", "")
        headers = dict(kwargs.pop("headers", None) or {})
        token = self.application.config.get("TEST_API_TOKEN")
        if auth and token and path.startswith("/api/") and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {token}"
        if sign and path.startswith(("/voice/", "/sms/")) and "X-Twilio-Signature" not in headers:
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
    api_token(application)
    yield application
    application.extensions["sipas"].db.dispose()


def api_token(app: Any, scopes: Any = TOKEN_SCOPES, agency_id: int | None = None) -> str:
    """Issue a token; the first one becomes what the app's test clients send by default."""
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        issued = access.create_token(session, "tests", [str(s) for s in scopes], agency_id, svc.clock())
    app.config.setdefault("TEST_API_TOKEN", issued.secret)
    return issued.secret


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


# ============================================================================ browsers

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Playwright drives Debian's Chromium, never a downloaded browser."""
    # Assertions wait for the page up to 20 s (Playwright's default is 5 s, too short for a
    # machine busy with other suites); a passing page answers in milliseconds either way.
    from playwright.sync_api import expect
    expect.set_options(timeout=20_000)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ["--no-sandbox"]}


# ============================================================================ factories

AGENCY = "Sở Tài nguyên và Môi trường tỉnh Đắk Nông"
FRAME_HEADER = "Mã hồ sơ,Lĩnh vực,Chủ hồ sơ,Số điện thoại,Ngày trả kết quả\n"
CENSUS = SampleRule("census")


def phones(n: int, base: int = 0) -> list[str]:
    """``n`` distinct mobile numbers, 0910000000 + base onwards."""
    return [f"091{base + i:07d}" for i in range(n)]


def new_sid() -> str:
    return "CA" + uuid.uuid4().hex


@pytest.fixture
def services_of(request: pytest.FixtureRequest) -> Callable[[Any], Any]:
    """The app's services (``app.extensions["sipas"]``); the ``app`` fixture's when None."""
    def get(app: Any = None) -> Any:
        return (app if app is not None else request.getfixturevalue("app")).extensions["sipas"]
    return get


@pytest.fixture
def make_agency(services_of: Callable[[Any], Any]) -> Callable[..., int]:
    def make(code: str = "STNMT", name: str = AGENCY, *, app: Any = None, **options: Any) -> int:
        """The agency with this code (created the first time); returns its id."""
        svc = services_of(app)
        with svc.db.begin() as session:
            agency = session.scalar(select(Agency).where(Agency.code == code))
            if agency is None:
                agency = campaigns.create_agency(session, code, name, svc.clock(), **options)
            return agency.id
    return make


@pytest.fixture
def make_frame(tmp_path: Path) -> Callable[..., Path]:
    counter = itertools.count(1)

    def make(rows: Iterable[str | tuple[str, str, str]], *, field: str = "Đất đai", returned: str = "02/11/2026",
             name: str | None = None) -> Path:
        """A transaction list (CSV, as agencies export it): one dossier per row, each a phone
        number or (field, name, phone); every dossier returned on ``returned``."""
        lines = []
        for i, item in enumerate(rows, 1):
            row_field, person, phone = item if isinstance(item, tuple) else (field, f"Nguyễn Văn {i}", item)
            lines.append(f"HS-{i},{row_field},{person},{phone},{returned}")
        path = tmp_path / (name or f"frame-{next(counter)}.csv")
        path.write_text(FRAME_HEADER + "\n".join(lines) + "\n", encoding="utf-8")
        return path
    return make


@pytest.fixture
def import_frame(services_of: Callable[[Any], Any]) -> Callable[..., frames.FrameReport]:
    def run(campaign_id: int, frame: Path, rule: SampleRule | None = CENSUS, seed: int = 1, *, app: Any = None,
            **options: Any) -> frames.FrameReport:
        """Import ``frame`` into a draft campaign and draw its sample (census by default)."""
        svc = services_of(app)
        with svc.db.begin() as session:
            campaign = campaigns.get_campaign(session, campaign_id)
            return frames.import_and_sample(session, campaign, frame, rule, seed, svc.clock(), **options)
    return run


@pytest.fixture
def make_campaign(services_of: Callable[[Any], Any], make_agency: Callable[..., int],
                  make_frame: Callable[..., Path], import_frame: Callable[..., Any]) -> Callable[..., int]:
    def make(frame: Path | Iterable[str | tuple[str, str, str]] | None = None, *, start: bool | None = None,
             agency: int | None = None, name: str = "Quý 4", questionnaire: str = "sipas-2024",
             rule: SampleRule | None = CENSUS, seed: int = 1, sampling: dict[str, Any] | None = None,
             app: Any = None, **config: Any) -> int:
        """A campaign of ``agency`` (the STNMT agency by default) with ``config`` (see
        campaigns.create_campaign; calls_per_second defaults to 1000 so one claim takes every
        due contact). With a frame (a path, or rows for ``make_frame``) its sample is drawn
        and the campaign started unless ``start=False``; without one it stays a draft."""
        svc = services_of(app)
        config.setdefault("calls_per_second", 1000)
        agency_id = agency if agency is not None else make_agency(app=app)
        with svc.db.begin() as session:
            campaign_id = campaigns.create_campaign(session, svc.registry, agency_id=agency_id, name=name,
                                                    questionnaire=questionnaire, now=svc.clock(), **config).id
        if frame is not None:
            path = frame if isinstance(frame, Path) else make_frame(frame)
            import_frame(campaign_id, path, rule, seed, app=app, **(sampling or {}))
        if start if start is not None else frame is not None:
            with svc.db.begin() as session:
                campaigns.transition(session, campaign_id, "start", svc.clock(), svc.registry)
        return campaign_id
    return make


@pytest.fixture
def make_programme(services_of: Callable[[Any], Any], make_agency: Callable[..., int]) -> Callable[..., int]:
    def make(agency: int | None = None, *, name: str = "Khảo sát sau giao dịch", app: Any = None,
             **settings: Any) -> int:
        """An active post-transaction programme of ``agency`` (the STNMT agency by default)
        with ``settings`` (see programmes.create_programme); links on https://ks.example.vn."""
        svc = services_of(app)
        agency_id = agency if agency is not None else make_agency(app=app)
        with svc.db.begin() as session:
            return programmes.create_programme(session, svc.registry, agency_id=agency_id, name=name,
                                               now=svc.clock(), default_host="https://ks.example.vn",
                                               **settings).id
    return make


@pytest.fixture
def claim(services_of: Callable[[Any], Any]) -> Callable[..., list[Claimed]]:
    def run(pacing: Pacing | None = None, *, batch: int = 100, app: Any = None) -> list[Claimed]:
        """One dispatch round: due contacts of running campaigns become queued attempts."""
        svc = services_of(app)
        return dispatch.claim_due(svc.db, pacing or Pacing("twilio", 1000.0, 1000), svc.clock(), batch)
    return run


# ============================================================================ the call driver

class Call:
    """One call as the provider drives it: the same token and CallSid on every (signed)
    webhook. ``answer`` and ``press`` return the TwiML reply parsed; ``status`` posts a
    status callback; ``survey`` answers and presses keys for whatever is asked."""

    def __init__(self, client: Any, claimed: Claimed | str, sid: str | None = None) -> None:
        """``claimed``: the claimed attempt, or just its token."""
        self.client = client
        self.token: str = claimed if isinstance(claimed, str) else claimed.token
        self.attempt_id: int | None = None if isinstance(claimed, str) else claimed.attempt_id
        self.to: str | None = None if isinstance(claimed, str) else claimed.to
        self.sid = sid or new_sid()
        base = client.application.extensions["sipas"].settings.public_base_url.rstrip("/")
        self.gather_url = f"{base}/voice/{self.token}/gather?"

    def post(self, kind: str, query: str = "", headers: dict[str, str] | None = None, **form: str) -> Any:
        """The raw response to one webhook request (CallSid added to ``form``)."""
        return self.client.post(f"/voice/{self.token}/{kind}{query}", data={"CallSid": self.sid, **form},
                                headers=headers or {})

    def twiml(self, response: Any) -> ElementTree.Element:
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/xml"
        reply = ElementTree.fromstring(response.data)
        for gather in reply.iter("Gather"):      # every Gather posts back to this call's gather URL
            assert gather.get("action", "").startswith(self.gather_url), gather.get("action")
        return reply

    def answer(self, **form: str) -> ElementTree.Element:
        return self.twiml(self.post("answer", CallStatus="in-progress", **form))

    def press(self, item: str, digits: str | None, **headers: str) -> ElementTree.Element:
        """Keys pressed for ``item`` (None: no Digits parameter at all, as on a timeout)."""
        form = {"CallStatus": "in-progress"} | ({} if digits is None else {"Digits": digits})
        return self.twiml(self.post("gather", f"?item={item}", headers=headers, **form))

    def status(self, status: str, **form: str) -> None:
        response = self.post("status", CallStatus=status, **form)
        assert response.status_code == 204, response.get_data(as_text=True)

    def survey(self, keys: dict[str, str | list[str]], default: str | None = "4",
               stop_before: str | None = None) -> tuple[list[str], ElementTree.Element]:
        """Answer, then press keys item by item as the replies ask (a list: several presses
        for that item; ``default`` for items not in ``keys``, or None to require every item
        asked to be in ``keys``). Returns the items asked, in order, and the last reply;
        ``stop_before``: hang up when that item is asked."""
        reply = self.answer()
        seen: list[str] = []
        while (item := asked(reply)) is not None and item != stop_before:
            seen.append(item)
            assert len(seen) < 40, seen
            presses = keys[item] if default is None else keys.get(item, default)
            for digits in presses if isinstance(presses, list) else [presses]:
                reply = self.press(item, digits)
        return seen, reply


@pytest.fixture
def make_call(request: pytest.FixtureRequest, make_campaign: Callable[..., int],
              claim: Callable[..., list[Claimed]]) -> Callable[..., Call]:
    def make(claimed: Claimed | str | None = None, *, sid: str | None = None, app: Any = None,
             phone: str = "0912345678", **campaign: Any) -> Call:
        """A driver for ``claimed`` (a claimed attempt or its token); without one, a started
        campaign of one contact (``phone``; ``campaign``: its config) is made and its one
        call claimed."""
        if claimed is None:
            make_campaign([phone], app=app, **campaign)
            found = claim(app=app)
            assert len(found) == 1, found
            claimed = found[0]
        client = app.test_client() if app is not None else request.getfixturevalue("client")
        return Call(client, claimed, sid)
    return make


@pytest.fixture
def call(make_call: Callable[..., Call]) -> Call:
    """A claimed call to 0912345678, not yet answered (a started one-contact campaign)."""
    return make_call()


# ============================================================================ TwiML helpers

def asked(twiml: ElementTree.Element) -> str | None:
    """The item the reply gathers a key for (None when it gathers nothing), checking the
    Gather's fixed attributes."""
    gathers = twiml.findall("./Gather")
    assert len(gathers) <= 1
    if not gathers:
        return None
    gather = gathers[0]
    assert gather.get("input") in ("dtmf", "dtmf speech") and gather.get("numDigits") == "1"
    assert gather.get("method") == "POST" and gather.get("actionOnEmptyResult") == "true"
    assert gather.get("finishOnKey") == ""
    items = parse_qs(urlsplit(gather.get("action", "")).query)["item"]
    assert len(items) == 1
    return items[0]


def says(twiml: ElementTree.Element) -> list[str]:
    """Every <Say> text, in order."""
    return [say.text or "" for say in twiml.iter("Say")]


def prompts(twiml: ElementTree.Element) -> list[str]:
    """The <Say> texts inside the <Gather>."""
    return [say.text or "" for say in twiml.findall("./Gather/Say")]


def hangs_up(twiml: ElementTree.Element) -> bool:
    children = list(twiml)
    return (twiml.find(".//Gather") is None and bool(children) and children[-1].tag == "Hangup"
            and len(twiml.findall("./Hangup")) == 1)


def questionnaire(app: Any, key: str = "sipas-2024") -> Any:
    return app.extensions["sipas"].registry.get(key)


def voice_text(app: Any, item_id: str, language: str = "vi") -> str:
    """What the questionnaire says for ``item_id``."""
    return questionnaire(app).item(item_id).voice.get(language)


def full(app: Any, scale: str = "five_level", language: str = "vi") -> str:
    """A scale's instructions in full."""
    return questionnaire(app).scales[scale].instructions.get(language)


def cue(app: Any, scale: str = "five_level", language: str = "vi") -> str:
    """A scale's short cue."""
    return questionnaire(app).scales[scale].cue.get(language)


def message(app: Any, key: str, language: str = "vi") -> str:
    """One of the questionnaire's messages (thanks, refused, invalid, no_input …)."""
    return questionnaire(app).messages[key].get(language)


# ============================================================================ database helpers

def snapshot(app: Any) -> dict[str, Any]:
    """Row counts of every table and every row of every table, read on a fresh connection."""
    with app.extensions["sipas"].db.engine.connect() as conn:
        rows = {table.name: [tuple(r) for r in conn.execute(text(
                    f"SELECT * FROM {table.name} ORDER BY {table.primary_key.columns.values()[0].name}"))]
                for table in Base.metadata.sorted_tables}
    return {"counts": {name: len(r) for name, r in rows.items()}, "rows": rows}


def count(app: Any, model: Any, *where: Any) -> int:
    with app.extensions["sipas"].db.begin() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def row(app: Any, model: Any, **where: Any) -> Any:
    """The one row of ``model`` matching ``where`` (fails unless exactly one)."""
    with app.extensions["sipas"].db.begin() as session:
        return session.scalars(select(model).filter_by(**where)).one()


def fetch(app: Any, statement: Any) -> list[Any]:
    with app.extensions["sipas"].db.begin() as session:
        return list(session.execute(statement).all())


def fetch_one(app: Any, statement: Any) -> Any:
    """The one result row of ``statement`` (fails unless exactly one)."""
    with app.extensions["sipas"].db.begin() as session:
        return session.execute(statement).one()


def scalars(app: Any, statement: Any) -> list[Any]:
    with app.extensions["sipas"].db.begin() as session:
        return list(session.scalars(statement))


def answers(app: Any, attempt_id: int | None = None) -> dict[str, tuple[int | None, str, str | None]]:
    """item -> (value, status, digits); fails if an item has two rows in the selection."""
    query = select(Answer).order_by(Answer.id)
    if attempt_id is not None:
        query = query.where(Answer.attempt_id == attempt_id)
    with app.extensions["sipas"].db.begin() as session:
        stored = session.scalars(query).all()
        result = {a.item_id: (a.value, a.status, a.digits) for a in stored}
    assert len(result) == len(stored), "an item was stored twice"
    return result


# ============================================================================ providers and CLI

@dataclass
class RecordingProvider:
    """The provider boundary: records every call it is asked to place."""

    name: str = "twilio"
    placed: list[CallRequest] = field(default_factory=list)
    known: dict[str, CallState] = field(default_factory=dict)

    def place_call(self, request: CallRequest) -> CallPlaced:
        self.placed.append(request)
        return CallPlaced(new_sid())

    def fetch_call(self, provider_id: str) -> CallState | None:
        return self.known.get(provider_id)

    def close(self) -> None:
        pass


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider()


@pytest.fixture
def place_calls(services_of: Callable[[Any], Any]) -> Callable[..., None]:
    def place(provider: RecordingProvider, claimed: Iterable[Claimed], *, app: Any = None) -> None:
        """Place each claimed call through ``provider``, as a worker's dispatch round does."""
        svc = services_of(app)
        for item in claimed:
            dispatch.place(svc.db, svc.registry, provider, item,
                           lambda kind, token: f"http://sipas.test/voice/{token}/{kind}", svc.clock)
    return place


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """``python -m ivr_service *args`` with only ``env`` (and PATH) in the environment."""
        return subprocess.run([sys.executable, "-m", "ivr_service", *args], cwd=ROOT, capture_output=True,
                              text=True, env={"PATH": "/usr/bin:/bin", **env})
    return run
