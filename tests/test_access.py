"""Access control end to end (issue 11), through the web edge: the route matrix (every
route has a rule; anonymous, each role in and out of the agency subtree, scoped tokens),
sessions and CSRF, rate-limited sign-ins, API tokens, the audit log, the agency tree and
the OpenAPI security schemes.

People sign in as a browser does (``POST /auth/login`` JSON, then the session cookie and
the CSRF token from the answer on writes); systems send ``Authorization: Bearer``. The
test client's default installation-wide token is only used to set things up."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import limits
import limits.storage.memory
import pytest
from argon2 import PasswordHasher
from flask import Blueprint, Flask
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from ivr_service import create_app
from ivr_service.core.access import ROLE_PERMISSIONS, TOKEN_SCOPES, Grant, Permission, Role
from ivr_service.persistence.models import Agency, ApiToken, AuditEntry, Campaign, CampaignStatus, RoleGrant, User
from ivr_service.services import access, alerts, messaging_accounts, qr
from ivr_service.web import auth as web_auth
from ivr_service.web.access import Rule, rule_for

from .conftest import api_token, count, fetch, phones, row, scalars, snapshot

API = "/api/v1"
PASSWORD = "mat-khau-du-dai-1"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_SHAPE = re.compile(r"^sipas_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")


# ============================================================================ helpers

class Browser:
    """A person's browser: a test client of its own (cookies), never the default test
    token, and the CSRF token from the sign-in answer sent on every write."""

    def __init__(self, app: Flask, address: str = "127.0.0.1") -> None:
        self.client: Any = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = address
        self.csrf: str | None = None

    def login(self, username: str, password: str = PASSWORD) -> Any:
        response = self.client.post("/auth/login", json={"username": username, "password": password}, auth=False)
        if response.status_code == 200:
            self.csrf = response.json["csrf_token"]
        return response

    def open(self, method: str, path: str, *, csrf: bool = True, headers: dict[str, str] | None = None,
             **kwargs: Any) -> Any:
        headers = dict(headers or {})
        if csrf and self.csrf and method not in SAFE:
            headers.setdefault("X-CSRFToken", self.csrf)
        return self.client.open(path, method=method, headers=headers, auth=False, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.open("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.open("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.open("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.open("DELETE", path, **kwargs)

    @property
    def cookie(self) -> str | None:
        found = self.client.get_cookie("session")
        return found.value if found is not None else None


class Bearer:
    """A system calling with one API token (on every path, not only /api/)."""

    def __init__(self, app: Flask, token: str) -> None:
        self.client = app.test_client()
        self.token = token

    def open(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.open(path, method=method, headers={"Authorization": f"Bearer {self.token}"}, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.open("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.open("PATCH", path, **kwargs)


def signed_in(app: Flask, username: str, password: str = PASSWORD, address: str = "127.0.0.1") -> Browser:
    browser = Browser(app, address)
    response = browser.login(username, password)
    assert response.status_code == 200, response.json
    return browser


def set_cookie(response: Any, name: str = "session") -> str | None:
    return next((h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")), None)


def audit_rows(app: Flask, *actions: str) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id)
    if actions:
        query = query.where(AuditEntry.action.in_(actions))
    return scalars(app, query)


def summary(entry: AuditEntry) -> tuple[str, str, str | None, int | None, str | None]:
    return entry.actor, entry.action, entry.target, entry.agency_id, entry.address


@pytest.fixture
def make_user(app: Flask) -> Callable[..., int]:
    def make(username: str, *grants: tuple[str, int | None], password: str = PASSWORD) -> int:
        """A user through the service (argon2id), with (role, agency) grants; returns its id."""
        svc = app.extensions["sipas"]
        with svc.db.begin() as session:
            return access.create_user(session, username, password, svc.clock(),
                                      grants=[Grant(Role(role), agency) for role, agency in grants]).id
    return make


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that sign in dozens of times (the route matrix, rate limits): argon2id
    with minimal cost instead of the library's ~50 ms parameters. What they prove does not
    depend on the hashing cost; the other tests keep the real parameters."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(access, "HASHER", cheap)
    monkeypatch.setattr(access, "_DUMMY_HASH", cheap.hash("not a password of anyone"))


@dataclass(frozen=True)
class Tree:
    """Province → district (→ commune) and province → other district; a draft campaign in
    each district."""

    province: int
    district: int
    commune: int
    other: int
    campaign: int
    other_campaign: int


CAMPAIGN_NAME = "Khảo sát huyện Cư Jút quý 4"
OTHER_CAMPAIGN_NAME = "Khảo sát huyện Krông Nô quý 4"
PROGRAMME_NAME = "Khảo sát sau trả kết quả huyện Cư Jút"


@pytest.fixture
def tree(make_agency: Callable[..., int], make_campaign: Callable[..., int]) -> Tree:
    province = make_agency("T-DN", "UBND tỉnh Đắk Nông")
    district = make_agency("H-CJ", "UBND huyện Cư Jút", parent_id=province)
    commune = make_agency("X-EP", "UBND xã Ea Pô", parent_id=district)
    other = make_agency("H-KN", "UBND huyện Krông Nô", parent_id=province)
    return Tree(province, district, commune, other, make_campaign(agency=district, name=CAMPAIGN_NAME),
                make_campaign(agency=other, name=OTHER_CAMPAIGN_NAME))


# ============================================================================ 1. route matrix

@dataclass(frozen=True)
class Case:
    endpoint: str
    method: str
    path: str
    rule: Rule
    names: str | None       # "campaign", "agency", "programme", "qr_poster", "alert" … when the URL names one


def unruled(app: Flask) -> list[str]:
    """Endpoints that have no access rule (a new route must declare one)."""
    return sorted({r.endpoint for r in app.url_map.iter_rules() if rule_for(app, r.endpoint) is None})


def route_cases(app: Flask, values: dict[str, Any]) -> list[Case]:
    """Every route and method of the app, with ``values`` put in for its URL arguments;
    sign-out last, since it ends the caller's session."""
    without = unruled(app)
    assert not without, f"{', '.join(without)} has no access rule: mark the view @public or @requires(...)"
    adapter = app.url_map.bind("localhost")
    cases = []
    for url_rule in app.url_map.iter_rules():
        rule = rule_for(app, url_rule.endpoint)
        assert rule is not None
        missing = set(url_rule.arguments) - set(values)
        assert not missing, f"{url_rule.rule}: the route matrix has no test value for {sorted(missing)}; add one"
        for method in sorted((url_rule.methods or set()) - {"HEAD", "OPTIONS"}):
            path = adapter.build(url_rule.endpoint, {a: values[a] for a in url_rule.arguments}, method=method)
            names = next((kind for kind in ("campaign", "agency", "programme", "qr_poster", "messaging_account",
                                            "alert")
                          if f"{kind}_id" in url_rule.arguments), None)
            cases.append(Case(url_rule.endpoint, method, path, rule, names))
    return sorted(cases, key=lambda c: c.endpoint == "auth.logout")


def send(open_: Callable[..., Any], case: Case) -> Any:
    """The request for ``case``: writes carry an empty JSON body (a 400/422 still shows the
    guard let the request through, and changes nothing)."""
    return open_(case.method, case.path, **({"json": {}} if case.method in ("POST", "PUT", "PATCH") else {}))


def refused_by_guard(response: Any) -> bool:
    """The guard's 401 (a sign-in with a wrong password is a 401 too, but not this one), or
    for a console page the guard's redirect to the sign-in page."""
    if response.status_code == 302:
        return str(response.headers.get("Location", "")).startswith("/auth/login?next=")
    return response.status_code == 401 and response.headers.get("WWW-Authenticate") == 'Bearer realm="sipas"'


def is_public(endpoint: str) -> bool:
    # The citizen's pages (survey.*) are public: the link or poster code is the credential.
    return (endpoint.startswith(("voice.", "sms.", "zns.", "auth.login", "survey."))
            or endpoint in ("healthz", "livez", "readyz", "static", "console.static", "set_language"))


def test_every_route_declares_an_access_rule(app: Flask) -> None:
    assert unruled(app) == []
    endpoints = {r.endpoint for r in app.url_map.iter_rules()}
    assert {"api_v1.get_campaign", "auth.login", "voice.answer", "openapi.spec"} <= endpoints
    # Exactly the webhooks, health, static files, the sign-in page and form, and the
    # citizen's survey pages are public.
    public = {e for e in endpoints if rule_for(app, e).public}  # type: ignore[union-attr]
    assert public == {e for e in endpoints if is_public(e)}
    assert {"voice.answer", "voice.gather", "voice.status", "healthz", "static", "auth.login",
            "auth.login_page"} <= public


def test_a_route_without_a_rule_is_caught_and_refused(app: Flask, client: Any) -> None:
    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {"secret": "leaked"}

    assert unruled(app) == ["forgotten"]          # the matrix test would fail on it
    with pytest.raises(AssertionError, match="forgotten has no access rule"):
        route_cases(app, {})
    anonymous = client.get("/api/v1/forgotten", auth=False)
    assert anonymous.status_code == 401
    refused = client.get("/api/v1/forgotten")     # even the installation-wide token
    assert refused.status_code == 403 and "no access rule" in refused.json["message"]
    assert "leaked" not in refused.get_data(as_text=True)


def test_route_matrix_anonymous_roles_in_and_out_of_the_subtree_and_tokens(
        app: Flask, tree: Tree, make_user: Callable[..., int], make_programme: Callable[..., int],
        cheap_hashing: None) -> None:
    victim = make_user("nan-nhan", ("viewer", tree.district))
    programme = make_programme(tree.district, name=PROGRAMME_NAME)
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        issued = access.create_token(session, "victim", ["exports:write"], tree.district, svc.clock())
        victim_token, victim_prefix = issued.token.id, issued.token.prefix
        poster = qr.create_poster(session, svc.registry, tree.district, "Quầy 1", "https://khaosat.test", svc.clock())
        poster_id = poster.id
        account = messaging_accounts.create_account(session, agency_id=tree.district, name="eSMS", kind="esms",
                                                    now=svc.clock(), sender="SoTNMT",
                                                    credentials={"api_key": "k", "secret_key": "s"})
        account_id = account.id
        alert_id = alerts._insert(session, tree.district, "sipas-2024", "2026-11", "C01", 40, 11, svc.clock(),
                                  alerts.AlertConfig())
    values = {"campaign_id": tree.campaign, "agency_id": tree.district, "user_id": victim,
              "token_id": victim_token, "token": "unknown-call-token", "filename": "none.txt",
              "code": "ZZZZZZZZZ", "qr_poster_id": poster_id,  # survey links and QR posters: an unknown code
              "programme_id": programme, "messaging_account_id": account_id,
              "account_id": account_id, "secret": "0" * 48,   # the eSMS callback: a wrong secret
              "key": "sipas-2024",                            # a questionnaire
              "alert_id": alert_id, "intake_id": 1,               # an intake record: nobody's
              "name": f"campaign-{tree.campaign}-matrix.xlsx"}     # an export file of the campaign
    export_dir = Path(svc.settings.export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    (export_dir / values["name"]).write_bytes(b"PK")
    cases = route_cases(app, values)
    assert len(cases) >= 36
    assert {c.names for c in cases} >= {None, "campaign"}

    # A route that names a campaign or an agency checks it (the rule is read from the URL,
    # not trusted from the declaration).
    failures = [f"{c.endpoint}: names a {c.names} in its URL but its rule checks {c.rule.target!r}"
                for c in cases if c.names is not None and not c.rule.public and c.rule.target != c.names]
    checked = 0
    hidden = (CAMPAIGN_NAME, PROGRAMME_NAME, "nan-nhan", victim_prefix)  # what no one outside the district may see

    def check(who: str, case: Case, response: Any, permissions: frozenset[Permission] | None,
              in_scope: bool, cookie: bool = False) -> None:
        nonlocal checked
        checked += 1
        status, label = response.status_code, f"{who}: {case.method} {case.path} ({case.endpoint})"
        body = (json.dumps(response.json, ensure_ascii=False) if response.is_json
                else response.data.decode("utf-8", "replace"))
        if permissions is not None and not in_scope and any(secret in body for secret in hidden):
            failures.append(f"{label}: shows the other district's data: {body[:200]}")
        if status >= 500:
            failures.append(f"{label}: {status}")
        elif case.rule.public:
            if refused_by_guard(response):
                failures.append(f"{label}: the guard refused a public route")
        elif permissions is None:
            if not refused_by_guard(response):
                failures.append(f"{label}: anonymous got {status}, expected the guard's 401")
        elif case.rule.permission is not None and case.rule.permission not in permissions:
            if status != 403:
                failures.append(f"{label}: without {case.rule.permission} got {status}, expected 403")
        elif case.names is not None and not in_scope:
            if status != 404:
                failures.append(f"{label}: outside the subtree got {status}, expected 404")
        elif status in (401, 403) or (case.names is not None and status == 404):
            failures.append(f"{label}: allowed but got {status}: {body[:200]}")
        elif cookie and case.method not in SAFE and response.is_json and response.json.get("field") == "csrf_token":
            failures.append(f"{label}: the CSRF token was refused")

    # Anonymous: 401 everywhere except the public routes.
    anonymous = app.test_client()
    for case in cases:
        check("anonymous", case, send(lambda m, p, **kw: anonymous.open(p, method=m, auth=False, **kw), case),
              None, False)

    # Each role, granted on the campaign's district, and on the other district.
    for role in Role:
        for node, in_scope in ((tree.district, True), (tree.other, False)):
            name = f"{role.value}-{'in' if in_scope else 'out'}"
            make_user(name, (role.value, node))
            browser = signed_in(app, name)
            for case in cases:
                check(f"{role.value} on {'its' if in_scope else 'another'} district", case,
                      send(browser.open, case), ROLE_PERMISSIONS[role], in_scope, cookie=True)

    # Tokens: campaigns:read on the district reads but writes nothing; every token scope on
    # the other district never reaches this district's campaign.
    for scopes, node, in_scope in ((["campaigns:read"], tree.district, True), (TOKEN_SCOPES, tree.other, False)):
        bearer = Bearer(app, api_token(app, scopes, node))
        for case in cases:
            check(f"token {sorted(scopes)} on {'its' if in_scope else 'another'} district", case,
                  send(bearer.open, case), frozenset(Permission(s) for s in scopes), in_scope)

    assert failures == [], "\n".join(failures)
    assert checked == len(cases) * (1 + 2 * len(Role) + 2)

    # The rule's meaning, spelled out for the campaigns:read token.
    reader = Bearer(app, api_token(app, ["campaigns:read"], tree.district))
    assert reader.get(f"{API}/campaigns/{tree.campaign}").json["name"] == CAMPAIGN_NAME
    assert reader.patch(f"{API}/campaigns/{tree.campaign}", json={"name": "Đổi tên"}).status_code == 403
    assert reader.post(f"{API}/campaigns/{tree.campaign}/actions", json={"action": "pause", "reason": "x"}
                       ).status_code == 403
    assert reader.post(f"{API}/campaigns", json={"agency_id": tree.district, "name": "Mới"}).status_code == 403
    assert reader.get(f"{API}/campaigns/{tree.other_campaign}").status_code == 404
    assert row(app, Campaign, id=tree.campaign).name == CAMPAIGN_NAME
    assert count(app, Campaign) == 2


# ============================================================================ 2. sessions and CSRF

def test_sign_in_sets_an_httponly_samesite_lax_cookie_not_secure_over_http(app: Flask,
                                                                             make_user: Callable[..., int]) -> None:
    make_user("an", ("viewer", None))
    browser = Browser(app)
    response = browser.login("an")
    assert response.status_code == 200 and response.json["user"] == "an" and response.json["csrf_token"]
    cookie = set_cookie(response)
    assert cookie is not None
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "expires", "path"} <= attributes and "SameSite=Lax" in cookie
    assert "secure" not in attributes
    me = browser.get("/auth/me")
    assert me.status_code == 200 and (me.json["kind"], me.json["name"]) == ("user", "an")


def test_the_session_cookie_is_secure_when_the_public_url_is_https(app: Flask, make_settings: Callable[..., Any],
                                                                    clock: Any, make_user: Callable[..., int]) -> None:
    make_user("an", ("viewer", None))
    secure_app = create_app(make_settings(public_base_url="https://khaosat.daknong.gov.vn"), clock=clock)
    try:
        client = secure_app.test_client()
        response = client.post("/auth/login", json={"username": "an", "password": PASSWORD}, auth=False,
                               base_url="https://localhost")
        assert response.status_code == 200
        cookie = set_cookie(response)
        assert cookie is not None and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" in [part.strip() for part in cookie.split(";")]
        assert client.get("/auth/me", auth=False, base_url="https://localhost").status_code == 200
    finally:
        secure_app.extensions["sipas"].db.dispose()


def test_cookie_writes_need_the_csrf_token_and_token_writes_do_not(app: Flask, client: Any, tree: Tree,
                                                                   make_user: Callable[..., int]) -> None:
    make_user("quan-ly", ("manager", tree.district))
    browser = signed_in(app, "quan-ly")
    body = {"agency_id": tree.district, "name": "Quý 1"}
    for headers in ({}, {"X-CSRFToken": "not-the-token"}):
        refused = browser.post(f"{API}/campaigns", json=body, csrf=False, headers=headers)
        assert refused.status_code == 400 and refused.json["field"] == "csrf_token"
        assert "csrf_token" in refused.json["message"]
    refused_action = browser.post(f"{API}/campaigns/{tree.campaign}/actions", csrf=False,
                                  json={"action": "cancel", "reason": "thử"})
    assert refused_action.status_code == 400 and refused_action.json["field"] == "csrf_token"
    assert count(app, Campaign) == 2 and row(app, Campaign, id=tree.campaign).status == CampaignStatus.DRAFT
    assert browser.get(f"{API}/campaigns/{tree.campaign}").status_code == 200      # reads need none
    created = browser.post(f"{API}/campaigns", json=body)
    assert created.status_code == 201 and created.json["agency_id"] == tree.district
    # The CSRF token of /auth/me works as well as the sign-in's.
    from_me = browser.get("/auth/me").json["csrf_token"]
    assert browser.post(f"{API}/campaigns", json=body, headers={"X-CSRFToken": from_me}).status_code == 201
    # A token carries no cookie and needs no CSRF token.
    by_token = client.post(f"{API}/campaigns", json=body)
    assert by_token.status_code == 201
    assert count(app, Campaign) == 5


def test_form_sign_in_needs_the_csrf_token_of_the_page(app: Flask, make_user: Callable[..., int]) -> None:
    make_user("an", ("viewer", None))
    browser = Browser(app)
    form = {"username": "an", "password": PASSWORD}
    cold = browser.client.post("/auth/login", data=form, auth=False)
    assert cold.status_code == 400 and cold.json["field"] == "csrf_token"
    page = browser.client.get("/auth/login", auth=False)
    assert page.status_code == 200 and page.mimetype == "text/html"
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert csrf is not None
    without = browser.client.post("/auth/login", data=form, auth=False)
    assert without.status_code == 400 and without.json["field"] == "csrf_token"
    forged = browser.client.post("/auth/login", data={**form, "csrf_token": csrf.group(1) + "x"}, auth=False)
    assert forged.status_code == 400 and forged.json["field"] == "csrf_token"
    assert browser.get("/auth/me").status_code == 401                 # none of those signed in
    assert audit_rows(app, "login", "login_failed") == []            # nor reached the password check
    signed = browser.client.post("/auth/login", data={**form, "csrf_token": csrf.group(1)}, auth=False)
    assert signed.status_code == 302 and signed.headers["Location"] == "/"     # the console
    assert browser.get("/auth/me").json["name"] == "an"


def test_a_wrong_password_answers_401_and_nothing_else(app: Flask, make_user: Callable[..., int]) -> None:
    user = make_user("an", ("admin", None))
    browser = Browser(app)
    wrong = browser.login("an", "mat-khau-sai-roi")
    assert wrong.status_code == 401
    assert wrong.json == {"message": "Sai tên đăng nhập hoặc mật khẩu / wrong username or password",
                          "field": None, "detail": {}}
    assert set_cookie(wrong) is None and browser.cookie is None     # no session, no CSRF token
    unknown = Browser(app).login("khong-co-ai", "mat-khau-sai-roi")
    assert (unknown.status_code, unknown.json) == (401, wrong.json)  # an unknown name looks the same
    assert browser.get("/auth/me").status_code == 401
    assert browser.get(f"{API}/users").status_code == 401
    assert row(app, User, id=user).last_login_at is None
    assert row(app, User, id=user).password_hash.startswith("$argon2id$")
    form_page = browser.client.get("/auth/login", auth=False).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form_page).group(1)  # type: ignore[union-attr]
    wrong_form = browser.client.post("/auth/login", auth=False,
                                     data={"username": "an", "password": "sai", "csrf_token": csrf})
    assert wrong_form.status_code == 401 and 'role="alert"' in wrong_form.get_data(as_text=True)
    assert browser.get("/auth/me").status_code == 401


def test_a_new_password_or_deactivation_ends_existing_sessions(app: Flask, tree: Tree,
                                                               make_user: Callable[..., int]) -> None:
    make_user("quan-tri", ("admin", tree.district))
    first = make_user("an", ("operator", tree.district))
    second = make_user("binh", ("operator", tree.commune))
    admin = signed_in(app, "quan-tri")
    an, an_elsewhere, binh = signed_in(app, "an"), signed_in(app, "an"), signed_in(app, "binh")
    for browser in (an, an_elsewhere):
        assert browser.get(f"{API}/campaigns/{tree.campaign}").status_code == 200
    assert binh.get(f"{API}/agencies").status_code == 200

    changed = admin.patch(f"{API}/users/{first}", json={"password": "mat-khau-moi-123"})
    assert changed.status_code == 200 and "password" not in changed.json
    for browser in (an, an_elsewhere):       # every session of that user, wherever it is
        assert browser.get(f"{API}/campaigns/{tree.campaign}").status_code == 401
        assert browser.get("/auth/me").status_code == 401
    assert binh.get("/auth/me").status_code == 200                  # other people's sessions go on
    assert admin.get("/auth/me").status_code == 200
    assert Browser(app).login("an").status_code == 401              # the old password is gone
    again = signed_in(app, "an", "mat-khau-moi-123")
    assert again.get(f"{API}/campaigns/{tree.campaign}").status_code == 200

    deactivated = admin.patch(f"{API}/users/{second}", json={"active": False})
    assert deactivated.status_code == 200 and deactivated.json["active"] is False
    assert binh.get("/auth/me").status_code == 401 and binh.get(f"{API}/agencies").status_code == 401
    assert Browser(app).login("binh").status_code == 401            # nor can sign in again
    assert again.get("/auth/me").status_code == 200


def test_each_sign_in_starts_a_new_session(app: Flask, tree: Tree, make_user: Callable[..., int]) -> None:
    make_user("an", ("manager", tree.district))
    browser = Browser(app)
    browser.client.get("/auth/login", auth=False)                   # an anonymous session (the form's CSRF)
    anonymous_cookie = browser.cookie
    assert anonymous_cookie is not None
    assert browser.login("an").status_code == 200
    first_cookie, first_csrf = browser.cookie, browser.csrf
    assert first_cookie not in (None, anonymous_cookie)
    assert browser.login("an").status_code == 200
    assert browser.cookie not in (None, first_cookie) and browser.csrf != first_csrf
    # The earlier session's CSRF token belongs to a session that no longer is.
    body = {"agency_id": tree.district, "name": "Quý 1"}
    stale = browser.post(f"{API}/campaigns", json=body, headers={"X-CSRFToken": first_csrf or ""})
    assert stale.status_code == 400 and stale.json["field"] == "csrf_token"
    assert browser.post(f"{API}/campaigns", json=body).status_code == 201
    # Signing out ends it: the cookie no longer signs anyone in.
    assert browser.post("/auth/logout").status_code == 204
    assert browser.get("/auth/me").status_code == 401


# ============================================================================ 3. rate limits

class LimiterClock:
    """Stands in for the ``time`` module inside limits' in-memory storage (its windows
    read ``time.time()`` there), so a test moves the rate-limit clock instead of sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def limiter_clock(app: Flask, monkeypatch: pytest.MonkeyPatch, cheap_hashing: None) -> Iterator[LimiterClock]:
    # The app's settings use memory:// (the default), and each app gets a fresh storage.
    assert isinstance(web_auth.limiter.storage, limits.storage.MemoryStorage)
    web_auth.limiter.reset()
    fake = LimiterClock()
    monkeypatch.setattr(limits.storage.memory, "time", fake)
    yield fake


def windows(spec: str) -> list[limits.RateLimitItem]:
    """The limits of ``spec``, shortest window first."""
    return sorted(limits.parse_many(spec), key=lambda item: item.get_expiry())


def test_failed_sign_ins_lock_one_account_for_the_window_only(app: Flask, make_user: Callable[..., int],
                                                              limiter_clock: LimiterClock) -> None:
    per_minute = windows(web_auth.PER_ACCOUNT)[0]
    assert (per_minute.amount, per_minute.get_expiry()) == (5, 60)
    make_user("an", ("viewer", None))
    make_user("binh", ("viewer", None))
    browser = Browser(app)
    for _ in range(per_minute.amount - 1):
        assert browser.login("an", "sai-mat-khau").status_code == 401
    for _ in range(3):                                   # successful sign-ins are not counted
        assert browser.login("an").status_code == 200
    assert browser.login("an", "sai-mat-khau").status_code == 401     # the limit-th failure
    locked = browser.login("an", "sai-mat-khau")
    assert locked.status_code == 429
    assert browser.login("an").status_code == 429                    # even with the right password
    assert browser.login(" AN ").status_code == 429                  # the same account, written otherwise
    # Refused before the password is checked: no further failed sign-in is recorded.
    assert len(audit_rows(app, "login_failed")) == per_minute.amount
    # Another account from the same address is not locked out.
    assert Browser(app).login("binh", "sai-mat-khau").status_code == 401
    assert Browser(app).login("binh").status_code == 200
    # The window is fixed from the first failure: a second before it ends, still locked;
    # when it ends, the account signs in again.
    limiter_clock.advance(per_minute.get_expiry() - 1)
    assert browser.login("an").status_code == 429
    limiter_clock.advance(1)
    assert browser.login("an").status_code == 200
    assert browser.login("an", "sai-mat-khau").status_code == 401    # counting starts afresh


def test_the_hourly_account_limit_outlasts_the_minute_windows(app: Flask, make_user: Callable[..., int],
                                                             limiter_clock: LimiterClock) -> None:
    per_minute, per_hour = windows(web_auth.PER_ACCOUNT)
    assert per_hour.get_expiry() == 3600 and per_hour.amount > per_minute.amount
    make_user("an", ("viewer", None))
    browser = Browser(app)
    failed, elapsed = 0, 0
    for _ in range(math.ceil(per_hour.amount / per_minute.amount)):
        for _ in range(min(per_minute.amount, per_hour.amount - failed)):
            assert browser.login("an", "sai-mat-khau").status_code == 401
            failed += 1
        limiter_clock.advance(per_minute.get_expiry())
        elapsed += per_minute.get_expiry()
    assert failed == per_hour.amount
    assert browser.login("an").status_code == 429          # a fresh minute, but the hour is used up
    limiter_clock.advance(per_hour.get_expiry() - elapsed - 1)
    assert browser.login("an").status_code == 429
    limiter_clock.advance(1)
    assert browser.login("an").status_code == 200


def test_failed_sign_ins_are_limited_per_address(app: Flask, make_user: Callable[..., int],
                                                 limiter_clock: LimiterClock) -> None:
    per_minute = windows(web_auth.PER_ADDRESS)[0]
    make_user("an", ("viewer", None))
    attacker = Browser(app, address="203.0.113.66")
    for i in range(per_minute.amount):        # a different account each time: no account limit applies
        assert attacker.login(f"doan-{i}", "sai-mat-khau").status_code == 401
    assert attacker.login("doan-moi", "sai-mat-khau").status_code == 429
    assert attacker.login("an").status_code == 429
    assert Browser(app, address="198.51.100.7").login("an").status_code == 200   # other addresses sign in
    limiter_clock.advance(per_minute.get_expiry())
    assert attacker.login("an").status_code == 200


# ============================================================================ 4. tokens

def test_limits_for_every_request_leave_the_providers_webhooks_alone() -> None:
    """The limiter's check before each request (application and default limits) returns at
    once for the webhook blueprints, and still limits every other route."""
    site = Flask("limited")
    for name in ("voice", "api"):
        blueprint = Blueprint(name, name, url_prefix=f"/{name}")
        blueprint.add_url_rule("/ping", f"ping_{name}", lambda: "ok", methods=["POST"])
        site.register_blueprint(blueprint)
    limiter = web_auth.RequestLimiter(key_func=lambda: "one address", default_limits=["2 per minute"],
                                      storage_uri="memory://")
    limiter.init_app(site)
    client = site.test_client()
    assert [client.post("/api/ping").status_code for _ in range(3)] == [200, 200, 429]
    assert {client.post("/voice/ping").status_code for _ in range(20)} == {200}


def test_a_token_is_shown_once_and_stored_as_a_hash(app: Flask, tree: Tree, make_user: Callable[..., int],
                                                   clock: Any) -> None:
    make_user("quan-tri", ("admin", tree.district))
    admin = signed_in(app, "quan-tri")
    created = admin.post(f"{API}/tokens", json={"name": "mot-cua", "scopes": ["campaigns:read"],
                                                "agency_id": tree.district})
    assert created.status_code == 201, created.json
    whole = created.json["token"]
    shape = TOKEN_SHAPE.fullmatch(whole)
    assert shape is not None and shape.group(1) == created.json["prefix"]
    secret = shape.group(2)
    assert created.json["scopes"] == ["campaigns:read"] and created.json["agency_id"] == tree.district
    assert created.json["last_used_at"] is None

    listed = admin.get(f"{API}/tokens")
    assert listed.status_code == 200
    mine = [t for t in listed.json if t["id"] == created.json["id"]]
    assert len(mine) == 1 and mine[0]["prefix"] == shape.group(1) and "token" not in mine[0]
    assert all("token" not in t for t in listed.json) and secret not in listed.get_data(as_text=True)

    stored = row(app, ApiToken, id=created.json["id"])
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest() and stored.prefix == shape.group(1)
    assert secret not in repr(snapshot(app)["rows"])        # in no row of any table, the audit log included

    bearer = Bearer(app, whole)
    assert bearer.get(f"{API}/campaigns/{tree.campaign}").status_code == 200
    assert row(app, ApiToken, id=created.json["id"]).last_used_at == clock()
    first_use = clock()
    clock.advance(seconds=30)
    assert bearer.get(f"{API}/campaigns").status_code == 200
    assert row(app, ApiToken, id=created.json["id"]).last_used_at == first_use   # once a minute is enough
    clock.advance(minutes=2)
    assert bearer.get(f"{API}/campaigns").status_code == 200
    assert row(app, ApiToken, id=created.json["id"]).last_used_at == clock()
    listed_again = {t["id"]: t for t in admin.get(f"{API}/tokens").json}
    assert listed_again[created.json["id"]]["last_used_at"] is not None


def test_revoked_and_expired_tokens_are_refused(app: Flask, tree: Tree, make_user: Callable[..., int],
                                               clock: Any) -> None:
    make_user("quan-tri", ("admin", tree.district))
    admin = signed_in(app, "quan-tri")
    body = {"name": "he-thong", "scopes": ["campaigns:read"], "agency_id": tree.district}
    revoked = admin.post(f"{API}/tokens", json=body).json
    expiring = admin.post(f"{API}/tokens", json={**body, "expires_at": (clock() + timedelta(hours=1)).isoformat()}
                          ).json
    for issued in (revoked, expiring):
        assert Bearer(app, issued["token"]).get(f"{API}/campaigns").status_code == 200

    gone = admin.delete(f"{API}/tokens/{revoked['id']}")
    assert gone.status_code == 200 and gone.json["revoked_at"] is not None and "token" not in gone.json
    refused = Bearer(app, revoked["token"]).get(f"{API}/campaigns")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")

    clock.advance(minutes=59)
    assert Bearer(app, expiring["token"]).get(f"{API}/campaigns").status_code == 200
    clock.advance(minutes=1)
    assert Bearer(app, expiring["token"]).get(f"{API}/campaigns").status_code == 401
    past = admin.post(f"{API}/tokens", json={**body, "expires_at": (clock() - timedelta(seconds=1)).isoformat()})
    assert past.status_code == 400 and past.json["field"] == "expires_at"


def test_tokens_cannot_manage_users_or_tokens(app: Flask, client: Any, tree: Tree,
                                              make_user: Callable[..., int]) -> None:
    make_user("quan-tri", ("admin", None))
    admin = signed_in(app, "quan-tri")
    before = count(app, ApiToken)
    for scopes in (["users:write"], ["tokens:write"], ["campaigns:read", "tokens:write"], [], ["nonsense"]):
        refused = admin.post(f"{API}/tokens", json={"name": "x", "scopes": scopes, "agency_id": tree.district})
        assert refused.status_code == 400 and refused.json["field"] == "scopes", scopes
    assert count(app, ApiToken) == before
    # Nor can a token with every scope it may hold mint a token or create a user.
    assert client.post(f"{API}/tokens", json={"name": "x", "scopes": ["campaigns:read"]}).status_code == 403
    assert client.post(f"{API}/users", json={"username": "x", "password": PASSWORD}).status_code == 403
    # A subtree admin issues tokens on its subtree only.
    make_user("quan-tri-huyen", ("admin", tree.district))
    district_admin = signed_in(app, "quan-tri-huyen")
    for agency in (None, tree.other, tree.province):
        outside = district_admin.post(f"{API}/tokens", json={"name": "x", "scopes": ["campaigns:read"],
                                                             "agency_id": agency})
        assert outside.status_code == 404, agency
    assert district_admin.post(f"{API}/tokens", json={"name": "x", "scopes": ["campaigns:read"],
                                                      "agency_id": tree.commune}).status_code == 201


def test_a_malformed_authorization_header_is_401(app: Flask, tree: Tree, make_user: Callable[..., int]) -> None:
    good = api_token(app, ["campaigns:read"], tree.district)
    prefix, secret = TOKEN_SHAPE.fullmatch(good).groups()  # type: ignore[union-attr]
    other_secret = ("A" if secret[0] != "A" else "B") + secret[1:]
    client: Any = app.test_client()
    for header in ("Bearer", "Bearer ", "Bearer sipas_", f"Basic {good}", f"Token {good}", good,
                   f"Bearer {good}x", f"Bearer {good[:-1]}", f"Bearer sipas_{prefix}_{other_secret}",
                   f"Bearer sipas_zzzzzzzz_{secret}", f"Bearer {good.upper()}", "Bearer sipas_a_b_c",
                   f"Bearer {good},{good}"):
        refused = client.get(f"{API}/campaigns", headers={"Authorization": header})
        assert refused.status_code == 401, header
        assert refused.json["field"] is None and refused.headers["WWW-Authenticate"] == 'Bearer realm="sipas"'
    assert client.get(f"{API}/campaigns", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    assert client.get(f"{API}/campaigns", headers={"Authorization": f"bearer {good}"}).status_code == 200
    # A bad header is not ignored in favour of a session cookie.
    make_user("an", ("viewer", None))
    browser = signed_in(app, "an")
    assert browser.get(f"{API}/campaigns").status_code == 200
    assert browser.get(f"{API}/campaigns", headers={"Authorization": "Bearer nope"}).status_code == 401


# ============================================================================ 5. audit log

def test_every_action_writes_an_audit_entry(app: Flask, tree: Tree, make_user: Callable[..., int],
                                            make_frame: Callable[..., Any]) -> None:
    address = "203.0.113.9"
    admin_id = make_user("quan-tri", ("admin", tree.district))
    assert Browser(app, address).login("quan-tri", "sai-mat-khau").status_code == 401
    admin = signed_in(app, "quan-tri", address=address)
    admin_actor = f"user:{admin_id} quan-tri"

    created = admin.post(f"{API}/users", json={"username": "quan-ly", "password": PASSWORD,
                                               "grants": [{"role": "manager", "agency_id": tree.district}]})
    assert created.status_code == 201
    manager_id = created.json["id"]
    assert admin.put(f"{API}/users/{manager_id}/grants",
                     json={"role": "operator", "agency_id": tree.commune}).status_code == 200
    assert admin.delete(f"{API}/users/{manager_id}/grants?agency_id={tree.commune}").status_code == 204
    token = admin.post(f"{API}/tokens", json={"name": "mot-cua", "scopes": ["campaigns:read"],
                                              "agency_id": tree.district}).json
    assert admin.delete(f"{API}/tokens/{token['id']}").status_code == 200

    manager = signed_in(app, "quan-ly", address=address)
    manager_actor = f"user:{manager_id} quan-ly"
    campaign = manager.post(f"{API}/campaigns", json={"agency_id": tree.district, "name": "Quý 1"}).json["id"]
    assert manager.patch(f"{API}/campaigns/{campaign}", json={"name": "Quý 1 năm 2027"}).status_code == 200
    frame = make_frame(phones(20)).read_bytes()
    uploaded = manager.post(f"{API}/campaigns/{campaign}/frame", content_type="multipart/form-data",
                            data={"file": (io.BytesIO(frame), "danh-sach.csv"), "rule": "fixed", "n": "6",
                                  "reserve": "0.5", "seed": "3"})
    assert uploaded.status_code == 201, uploaded.json

    def act(action: str, reason: str | None = None) -> Any:
        return manager.post(f"{API}/campaigns/{campaign}/actions",
                            json={"action": action, **({"reason": reason} if reason is not None else {})})

    assert act("start").status_code == 200
    for blank in (None, "   "):
        missing = act("pause", blank)
        assert missing.status_code == 400 and missing.json["field"] == "reason"
    assert row(app, Campaign, id=campaign).status == CampaignStatus.RUNNING
    assert act("pause", "  Tổng đài bảo trì  ").status_code == 200
    assert act("resume").status_code == 200
    assert manager.post(f"{API}/campaigns/{campaign}/reserve/release").json["released"] > 0
    assert manager.post(f"{API}/campaigns/{campaign}/exports").status_code == 201
    report = manager.get(f"{API}/campaigns/{campaign}/sampling-report?format=xlsx")
    assert report.status_code == 200 and report.mimetype.endswith("spreadsheetml.sheet")
    missing = act("cancel")
    assert missing.status_code == 400 and missing.json["field"] == "reason"
    assert act("cancel", "Sai danh sách").status_code == 200

    entries = audit_rows(app)
    expected = [
        ("anonymous", "login_failed", None, None, address),
        (admin_actor, "login", f"user:{admin_id}", None, address),
        (admin_actor, "user_created", f"user:{manager_id}", None, address),
        (admin_actor, "role_granted", f"user:{manager_id}", tree.district, address),
        (admin_actor, "role_granted", f"user:{manager_id}", tree.commune, address),
        (admin_actor, "role_revoked", f"user:{manager_id}", tree.commune, address),
        (admin_actor, "token_created", f"token:{token['id']}", tree.district, address),
        (admin_actor, "token_revoked", f"token:{token['id']}", tree.district, address),
        (manager_actor, "login", f"user:{manager_id}", None, address),
        (manager_actor, "campaign_created", f"campaign:{campaign}", tree.district, address),
        (manager_actor, "campaign_configured", f"campaign:{campaign}", tree.district, address),
        (manager_actor, "frame_imported", f"campaign:{campaign}", tree.district, address),
        (manager_actor, "campaign_start", f"campaign:{campaign}", tree.district, address),
        (manager_actor, "campaign_pause", f"campaign:{campaign}", tree.district, address),
        (manager_actor, "campaign_resume", f"campaign:{campaign}", tree.district, address),
        (manager_actor, "reserve_released", f"campaign:{campaign}", tree.district, address),
        (manager_actor, "export_written", f"campaign:{campaign}", tree.district, address),
        (manager_actor, "sampling_report_downloaded", f"campaign:{campaign}", tree.district, address),
        (manager_actor, "campaign_cancel", f"campaign:{campaign}", tree.district, address),
    ]
    assert [summary(e) for e in entries] == expected       # refused requests wrote nothing
    details: dict[str, Any] = {e.action: e.detail for e in entries}
    assert entries[0].detail == {"username": "quan-tri"}
    assert details["user_created"] == {"username": "quan-ly"}
    assert entries[3].detail == {"role": "manager"} and entries[4].detail == {"role": "operator"}
    assert details["token_created"] == {"prefix": token["prefix"], "scopes": ["campaigns:read"]}
    assert details["token_revoked"] == {"prefix": token["prefix"]}
    assert details["campaign_configured"] == {"changed": ["name"]}
    assert details["frame_imported"]["file"] == "danh-sach.csv" and details["frame_imported"]["seed"] == 3
    assert details["frame_imported"]["drawn"] == 6 and details["frame_imported"]["reserve"] == 3
    assert details["campaign_pause"] == {"reason": "Tổng đài bảo trì"}
    assert details["campaign_cancel"] == {"reason": "Sai danh sách"}
    assert details["reserve_released"]["released"] > 0
    assert details["export_written"]["file"].endswith(".xlsx")
    assert details["sampling_report_downloaded"]["file"].endswith(".xlsx")
    assert all(e.at == app.extensions["sipas"].clock() for e in entries)
    assert token["token"] not in repr([e.detail for e in entries]) and PASSWORD not in repr(entries)

    # The admin reads them back, newest first, within its subtree (sign-ins name no agency).
    listed = admin.get(f"{API}/audit")
    assert listed.status_code == 200
    assert [e["action"] for e in listed.json] == [e[1] for e in reversed(expected) if e[3] is not None]
    assert listed.json[0]["actor"] == manager_actor and listed.json[0]["address"] == address
    assert listed.json[0]["detail"] == {"reason": "Sai danh sách"}
    paged = admin.get(f"{API}/audit?limit=2&before_id={listed.json[1]['id']}").json
    assert [e["id"] for e in paged] == [e["id"] for e in listed.json[2:4]]
    only = admin.get(f"{API}/audit?action=campaign_pause").json
    assert [e["action"] for e in only] == ["campaign_pause"]


def test_the_audit_log_is_for_admins_within_their_subtree(app: Flask, client: Any, tree: Tree,
                                                         make_user: Callable[..., int]) -> None:
    make_user("quan-tri-tinh", ("admin", None))
    make_user("quan-tri-huyen", ("admin", tree.district))
    make_user("quan-tri-khac", ("admin", tree.other))
    make_user("quan-ly", ("manager", tree.district))
    make_user("quan-ly-tinh", ("manager", None))
    here = client.patch(f"{API}/campaigns/{tree.campaign}", json={"name": "Cư Jút"})
    there = client.patch(f"{API}/campaigns/{tree.other_campaign}", json={"name": "Krông Nô"})
    commune = client.post(f"{API}/campaigns", json={"agency_id": tree.commune, "name": "Ea Pô"})
    assert (here.status_code, there.status_code, commune.status_code) == (200, 200, 201)

    def agencies_seen(username: str) -> list[int | None]:
        response = signed_in(app, username).get(f"{API}/audit")
        assert response.status_code == 200
        return [e["agency_id"] for e in response.json]

    assert agencies_seen("quan-tri-huyen") == [tree.commune, tree.district]
    assert agencies_seen("quan-tri-khac") == [tree.other]
    everything = agencies_seen("quan-tri-tinh")
    assert [a for a in everything if a is not None] == [tree.commune, tree.other, tree.district]
    assert None in everything                                    # sign-ins, which name no agency
    for manager in ("quan-ly", "quan-ly-tinh"):
        refused = signed_in(app, manager).get(f"{API}/audit")
        assert refused.status_code == 403 and "audit:read" in refused.json["message"]


def test_the_audit_log_is_append_only_in_the_database(app: Flask, make_user: Callable[..., int]) -> None:
    make_user("an", ("viewer", None))
    signed_in(app, "an")
    entry = audit_rows(app, "login")[0]
    engine = app.extensions["sipas"].db.engine
    for statement in ("UPDATE audit_log SET action = 'tampered'",
                      f"UPDATE audit_log SET actor = 'someone else', address = NULL WHERE id = {entry.id}"):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(statement))
    assert summary(audit_rows(app, "login")[0]) == summary(entry)
    assert audit_rows(app, "tampered") == []


# ============================================================================ 6. tree and scope

def test_agencies_form_a_tree(client: Any, make_user: Callable[..., int], app: Flask) -> None:
    province = client.post(f"{API}/agencies", json={"code": "T-DN", "name": "UBND tỉnh Đắk Nông"})
    assert province.status_code == 201 and province.json["parent_id"] is None
    district = client.post(f"{API}/agencies", json={"code": "H-CJ", "name": "UBND huyện Cư Jút",
                                                    "parent_id": province.json["id"]})
    assert district.status_code == 201 and district.json["parent_id"] == province.json["id"]
    commune = client.post(f"{API}/agencies", json={"code": "X-EP", "name": "UBND xã Ea Pô",
                                                   "parent_id": district.json["id"]})
    assert commune.status_code == 201 and commune.json["parent_id"] == district.json["id"]
    orphan = client.post(f"{API}/agencies", json={"code": "X", "name": "Không cha", "parent_id": 999999})
    assert orphan.status_code == 404
    listed = {a["code"]: a["parent_id"] for a in client.get(f"{API}/agencies").json}
    assert listed == {"T-DN": None, "H-CJ": province.json["id"], "X-EP": district.json["id"]}
    # A district admin adds agencies below its node only; a root needs an installation-wide admin.
    make_user("quan-tri-huyen", ("admin", district.json["id"]))
    district_admin = signed_in(app, "quan-tri-huyen")
    below = district_admin.post(f"{API}/agencies", json={"code": "X-2", "name": "UBND xã Nam Dong",
                                                         "parent_id": commune.json["id"]})
    assert below.status_code == 201
    for parent in (None, province.json["id"]):
        outside = district_admin.post(f"{API}/agencies", json={"code": "X-3", "name": "Ngoài", "parent_id": parent})
        assert outside.status_code == 404, parent
    assert count(app, Agency) == 4


def test_a_district_manager_sees_and_changes_only_its_subtree(app: Flask, tree: Tree, make_campaign: Callable[..., int],
                                                              make_user: Callable[..., int]) -> None:
    in_commune = make_campaign(agency=tree.commune, name="Xã Ea Pô")
    in_province = make_campaign(agency=tree.province, name="Tỉnh")
    make_user("quan-ly-huyen", ("manager", tree.district))
    manager = signed_in(app, "quan-ly-huyen")
    assert sorted(a["id"] for a in manager.get(f"{API}/agencies").json) == sorted([tree.district, tree.commune])
    assert sorted(c["id"] for c in manager.get(f"{API}/campaigns").json) == sorted([tree.campaign, in_commune])
    assert manager.get(f"{API}/campaigns/{in_commune}").status_code == 200

    # Another district's (or the province's) campaign is answered exactly as one that does not exist.
    absent = max(tree.other_campaign, in_province) + 1000
    for campaign in (tree.other_campaign, in_province, absent):
        for suffix in ("", "/progress", "/scores", "/sampling-report"):
            response = manager.get(f"{API}/campaigns/{campaign}{suffix}")
            assert response.status_code == 404, (campaign, suffix)
            assert response.json == {"message": f"campaign {campaign} not found", "field": None, "detail": {}}
        assert manager.patch(f"{API}/campaigns/{campaign}", json={"name": "Đổi"}).status_code == 404
        assert manager.post(f"{API}/campaigns/{campaign}/actions",
                            json={"action": "cancel", "reason": "thử"}).status_code == 404
    assert row(app, Campaign, id=tree.other_campaign).name == OTHER_CAMPAIGN_NAME
    assert row(app, Campaign, id=tree.other_campaign).status == CampaignStatus.DRAFT

    for agency in (tree.other, tree.province):
        refused = manager.post(f"{API}/campaigns", json={"agency_id": agency, "name": "Lấn sân"})
        assert refused.status_code == 404 and refused.json["message"] == f"agency {agency} not found"
    assert manager.post(f"{API}/campaigns", json={"agency_id": tree.commune, "name": "Xã"}).status_code == 201
    assert count(app, Campaign) == 5
    assert scalars(app, select(Campaign.agency_id).where(Campaign.name == "Lấn sân")) == []


def test_what_viewers_and_operators_may_not_do(app: Flask, tree: Tree, make_campaign: Callable[..., int],
                                               make_frame: Callable[..., Any], make_user: Callable[..., int]) -> None:
    running = make_campaign(phones(3), agency=tree.district, name="Đang chạy")
    ready = make_campaign(phones(3, base=100), agency=tree.district, name="Sẵn sàng", start=False)
    make_user("xem", ("viewer", tree.district))
    make_user("truc", ("operator", tree.district))
    viewer, operator = signed_in(app, "xem"), signed_in(app, "truc")

    assert viewer.get(f"{API}/campaigns/{running}/progress").status_code == 200
    refused = viewer.post(f"{API}/campaigns/{running}/exports")
    assert refused.status_code == 403 and "exports:write" in refused.json["message"]
    assert viewer.post(f"{API}/campaigns/{running}/actions",
                       json={"action": "pause", "reason": "thử"}).status_code == 403

    pause = operator.post(f"{API}/campaigns/{running}/actions", json={"action": "pause", "reason": "Bảo trì"})
    assert pause.status_code == 200 and pause.json["status"] == "paused"
    resume = operator.post(f"{API}/campaigns/{running}/actions", json={"action": "resume"})
    assert resume.status_code == 200 and resume.json["status"] == "running"
    for campaign, action in ((ready, "start"), (running, "cancel"), (ready, "cancel")):
        refused = operator.post(f"{API}/campaigns/{campaign}/actions", json={"action": action, "reason": "thử"})
        assert refused.status_code == 403 and "campaigns:write" in refused.json["message"], (campaign, action)
    upload = operator.post(f"{API}/campaigns/{tree.campaign}/frame", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(make_frame(phones(3)).read_bytes()), "ds.csv")})
    assert upload.status_code == 403 and "frames:write" in upload.json["message"]
    assert operator.post(f"{API}/campaigns/{running}/exports").status_code == 403
    assert operator.patch(f"{API}/campaigns/{running}", json={"name": "Đổi"}).status_code == 403
    assert [row(app, Campaign, id=c).status for c in (running, ready, tree.campaign)] == [
        CampaignStatus.RUNNING, CampaignStatus.DRAFT, CampaignStatus.DRAFT]
    assert [e.action for e in audit_rows(app, "campaign_pause", "campaign_resume", "campaign_start",
                                         "campaign_cancel", "frame_imported", "export_written")] == [
        "campaign_pause", "campaign_resume"]


def test_a_subtree_admin_manages_only_its_subtrees_users_and_tokens(app: Flask, tree: Tree,
                                                                   make_user: Callable[..., int]) -> None:
    victim = make_user("nan-nhan", ("operator", tree.district))
    both = make_user("hai-noi", ("viewer", tree.district), ("viewer", tree.other))
    lonely = make_user("chua-co-quyen")                  # no role anywhere yet
    make_user("quan-tri-huyen", ("admin", tree.district))
    make_user("quan-tri-khac", ("admin", tree.other))
    make_user("quan-tri-tinh", ("admin", None))
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        token = access.create_token(session, "mot-cua", ["campaigns:read"], tree.district, svc.clock()).token.id
    other_admin, district_admin = signed_in(app, "quan-tri-khac"), signed_in(app, "quan-tri-huyen")

    assert sorted(u["username"] for u in other_admin.get(f"{API}/users").json) == ["quan-tri-khac"]
    assert sorted(u["username"] for u in district_admin.get(f"{API}/users").json) == ["nan-nhan", "quan-tri-huyen"]
    assert [t["id"] for t in other_admin.get(f"{API}/tokens").json] == []
    assert [t["id"] for t in district_admin.get(f"{API}/tokens").json] == [token]   # not installation-wide ones

    before = {u: (row(app, User, id=u).password_hash, row(app, User, id=u).active) for u in (victim, both, lonely)}
    for user in (victim, both, lonely):
        for change in ({"password": "da-doi-mat-khau"}, {"active": False}):
            refused = other_admin.patch(f"{API}/users/{user}", json=change)
            assert refused.status_code == 404 and refused.json["message"] == f"user {user} not found", (user, change)
    assert district_admin.patch(f"{API}/users/{both}", json={"active": False}).status_code == 404
    assert {u: (row(app, User, id=u).password_hash, row(app, User, id=u).active) for u in before} == before
    assert other_admin.put(f"{API}/users/{victim}/grants", json={"role": "admin", "agency_id": tree.district}
                           ).status_code == 404
    assert other_admin.delete(f"{API}/users/{victim}/grants?agency_id={tree.district}").status_code == 404
    assert fetch(app, select(RoleGrant.role, RoleGrant.agency_id).where(RoleGrant.user_id == victim)) == [
        ("operator", tree.district)]
    assert other_admin.post(f"{API}/users", json={"username": "gian-diep", "password": PASSWORD,
                                                  "grants": [{"role": "viewer", "agency_id": tree.district}]}
                            ).status_code == 404
    assert scalars(app, select(User.id).where(User.username == "gian-diep")) == []
    assert other_admin.delete(f"{API}/tokens/{token}").status_code == 404
    assert row(app, ApiToken, id=token).revoked_at is None                  # the revocation was rolled back

    # The district's own admin, and the installation-wide one, may.
    assert district_admin.patch(f"{API}/users/{victim}", json={"active": False}).json["active"] is False
    installation = signed_in(app, "quan-tri-tinh")
    assert installation.patch(f"{API}/users/{both}", json={"active": False}).json["active"] is False
    assert installation.patch(f"{API}/users/{lonely}", json={"active": False}).json["active"] is False
    assert district_admin.delete(f"{API}/tokens/{token}").json["revoked_at"] is not None


# ============================================================================ 7. OpenAPI

def test_openapi_declares_the_security_schemes_and_needs_a_caller(app: Flask, client: Any,
                                                                  make_user: Callable[..., int]) -> None:
    assert client.get(f"{API}/openapi.json", auth=False).status_code == 401
    # A person opening the docs page is sent to sign in, and back.
    docs = client.get(f"{API}/docs", auth=False)
    assert docs.status_code == 302 and docs.headers["Location"] == "/auth/login?next=%2Fapi%2Fv1%2Fdocs"
    page = client.get(f"{API}/docs").get_data(as_text=True)
    # Every asset of the docs page is served by the app itself: no CDN.
    assert "/static/console/vendor/swagger-ui/swagger-ui-bundle.js" in page
    assert re.findall(r'(?:src|href)="([^"]+)"', page) and not re.findall(r'(?:src|href)="(?:https?:)?//', page)
    bundle = client.get("/static/console/vendor/swagger-ui/swagger-ui-bundle.js", auth=False)
    assert bundle.status_code == 200 and len(bundle.data) > 100_000
    bundle.close()
    spec = client.get(f"{API}/openapi.json")
    assert spec.status_code == 200
    schemes = spec.json["components"]["securitySchemes"]
    assert schemes["ApiToken"]["type"] == "http" and schemes["ApiToken"]["scheme"] == "bearer"
    assert (schemes["Session"]["type"], schemes["Session"]["in"], schemes["Session"]["name"]) == (
        "apiKey", "cookie", "session")
    assert client.get(f"{API}/docs").status_code == 200
    make_user("xem", ("viewer", None))
    browser = signed_in(app, "xem")
    assert browser.get(f"{API}/openapi.json").json["components"]["securitySchemes"] == schemes
    assert browser.get(f"{API}/docs").status_code == 200



def test_a_subtree_admin_cannot_adopt_an_account_from_elsewhere(app: Any) -> None:
    from ivr_service.core.access import Grant, Role
    from ivr_service.services import access as access_service

    svc = app.extensions["sipas"]
    now = svc.clock()
    with svc.db.begin() as session:
        from ivr_service.services import campaigns as campaign_service

        province = campaign_service.create_agency(session, "TINH", "Tỉnh", now).id
        district = campaign_service.create_agency(session, "HUYEN", "Huyện", now, parent_id=province).id
        other = campaign_service.create_agency(session, "KHAC", "Tỉnh khác", now).id
        access_service.create_user(session, "qt-huyen", "mat-khau-dai-du", now, grants=[Grant(Role.ADMIN, district)])
        outsider = access_service.create_user(session, "ben-ngoai", "mat-khau-dai-du", now,
                                              grants=[Grant(Role.VIEWER, other)]).id
        roleless = access_service.create_user(session, "chua-co", "mat-khau-dai-du", now).id
    client = app.test_client()
    login = client.post("/auth/login", json={"username": "qt-huyen", "password": "mat-khau-dai-du"})
    headers = {"X-CSRFToken": login.json["csrf_token"]}
    for user_id in (outsider, roleless):
        adopted = client.put(f"/api/v1/users/{user_id}/grants", json={"role": "manager", "agency_id": district},
                             headers=headers, auth=False)
        assert adopted.status_code == 404, adopted.json
        taken = client.delete(f"/api/v1/users/{user_id}/grants?agency_id={district}", headers=headers, auth=False)
        assert taken.status_code == 404
    with svc.db.begin() as session:
        assert [g.agency_id for g in access_service.get_user(session, outsider).grants] == [other]
        assert access_service.get_user(session, roleless).grants == []


@pytest.mark.parametrize("trusted", [0, 1])
def test_behind_a_trusted_proxy_each_user_has_their_own_address(make_settings: Callable[..., Any], clock: Any,
                                                                trusted: int) -> None:
    """SIPAS_TRUSTED_PROXIES=1 (one nginx): the audit log records the address the proxy
    forwarded, not the proxy's; with 0 the header is ignored, so nobody can forge it."""
    proxied = create_app(make_settings(trusted_proxies=trusted), clock=clock)
    try:
        browser = Browser(proxied, address="10.0.0.2")      # the proxy
        response = browser.client.post("/auth/login", json={"username": "ai-do", "password": "sai-mat-khau-1"},
                                       headers={"X-Forwarded-For": "203.0.113.7"}, auth=False)
        assert response.status_code == 401
        [failed] = audit_rows(proxied, "login_failed")
        assert failed.address == ("203.0.113.7" if trusted else "10.0.0.2")
    finally:
        proxied.extensions["sipas"].db.dispose()
