"""Signing in and out: cookie sessions for people (Flask-Login), with failed sign-ins
rate-limited per account and per address (Flask-Limiter) and recorded in the audit log.

Sessions are signed cookies (HttpOnly, SameSite=Lax, Secure when the public URL is
https) that last ``SIPAS_SESSION_HOURS``; signing in starts a new session, and changing a
password or deactivating a user ends every session signed in before.

``POST /auth/login`` takes a form (the sign-in page, with its CSRF token) or JSON
(scripts; a browser cannot send JSON cross-site without a CORS preflight, which this
service never grants, so JSON sign-ins need no CSRF token).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from apiflask import APIBlueprint
from flask import Flask, Request, Response, redirect, render_template, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, login_user, logout_user
from flask_wtf.csrf import generate_csrf

from ..core.access import Principal
from ..services import access, audit
from ..services.audit import Actor
from .access import csrf, principal, public, requires
from .context import services
from .urls import WEBHOOK_BLUEPRINTS, local_path

bp = APIBlueprint("auth", __name__, url_prefix="/auth", enable_openapi=False)
login_manager = LoginManager()


class RequestLimiter(Limiter):
    """Flask-Limiter, whose check before every request returns at once for the providers'
    webhooks: they are signed (checked before anything is read) and arrive in bursts from
    the providers' few addresses, so no limit applies to them, nor its cost per request
    (about 4 % of a key press, profiled, as a request filter that the check consults only
    after identifying the request and its limits)."""

    def _check_request_limit(self, callable_name: str | None = None, in_middleware: bool = True) -> None:
        if in_middleware and request.blueprint in WEBHOOK_BLUEPRINTS:
            return
        super()._check_request_limit(callable_name, in_middleware)


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, opened without building their signer when the
    request carries no session cookie (API tokens, the providers' webhooks): Flask then
    gives a new empty session all the same, after building it (about 3 % of such a
    request, profiled)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


limiter = RequestLimiter(key_func=get_remote_address, default_limits=[])


# Failed sign-ins only (successful ones are not counted). Fixed windows: a person who
# mistyped is never locked out for longer than the window.
PER_ACCOUNT = "5 per minute;30 per hour"
PER_ADDRESS = "30 per minute;300 per hour"
WRONG = "Sai tên đăng nhập hoặc mật khẩu / wrong username or password"


class SessionUser:
    """What Flask-Login keeps: the user id and the session version it was signed in with."""

    def __init__(self, principal: Principal, version: int) -> None:
        self.principal = principal
        self.version = version

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.principal.id}:{self.version}"


@login_manager.user_loader
def _load(session_id: str) -> SessionUser | None:
    user_id, _, version = session_id.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    svc = services()
    with svc.db.begin() as db_session:
        found = access.user_principal(db_session, int(user_id), int(version))
    return SessionUser(found, int(version)) if found is not None else None


def _username() -> str:
    """The rate-limit key of the account a sign-in names."""
    if request.is_json:
        data = request.get_json(silent=True)
        value = data.get("username", "") if isinstance(data, dict) else ""
    else:
        value = request.form.get("username", "")
    return "account:" + str(value).strip().lower()[:60]


def _failed(response: Response) -> bool:
    return response.status_code == 401


def _page(error: str | None = None, status: int = 200) -> Response:
    page = render_template("console/login.html", error=error, next=_next(), csrf_token=generate_csrf())
    return Response(page, status=status, mimetype="text/html")


def _next() -> str:
    """Where to go after signing in: a path of this site only (no open redirect)."""
    return local_path(request.values.get("next"))


@bp.get("/login")
@public
def login_page() -> Response:
    return _page()


@bp.post("/login")
@public
@limiter.limit(PER_ADDRESS, deduct_when=_failed)
@limiter.limit(PER_ACCOUNT, key_func=_username, deduct_when=_failed)
def login() -> Any:
    as_json = request.is_json
    if as_json:
        data = request.get_json(silent=True)
        data = data if isinstance(data, dict) else {}
    else:
        csrf.protect()
        data = request.form
    username, password = str(data.get("username", ""))[:60], str(data.get("password", ""))[:1000]
    svc = services()
    now = svc.clock()
    found, version = None, 0
    with svc.db.begin() as db_session:
        user = access.authenticate(db_session, username, password, now)
        if user is not None:
            audit.record(db_session, Actor(f"user:{user.id} {user.username}", request.remote_addr), "login", now,
                         target=f"user:{user.id}")
            found = access.user_principal(db_session, user.id)
            version = user.session_version
    if user is None or found is None:
        with svc.db.begin() as db_session:
            audit.record(db_session, Actor("anonymous", request.remote_addr), "login_failed", now,
                         username=username.strip().lower())
        message = WRONG
        if as_json:
            return {"message": message, "field": None, "detail": {}}, 401
        return _page(message, status=401)
    session.clear()                      # a new session at every sign-in (no fixation)
    session.permanent = True
    login_user(SessionUser(found, version))
    if as_json:
        return {"user": found.name, "csrf_token": generate_csrf()}
    return redirect(_next())


@bp.post("/logout")
@requires(None)
def logout() -> Any:
    svc = services()
    with svc.db.begin() as db_session:
        audit.record(db_session, Actor.of(principal(), request.remote_addr), "logout", svc.clock())
    logout_user()
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language       # the console keeps speaking the operator's language
    if request.form:                     # the console's sign-out button
        return redirect("/auth/login")
    return Response(status=204)


@bp.get("/me")
@requires(None)
def me() -> dict[str, Any]:
    """Who the caller is, what it may do where, and a CSRF token for cookie writes."""
    caller = principal()
    return {"kind": caller.kind, "id": caller.id, "name": caller.name,
            "grants": [{"agency_id": node, "permissions": sorted(p.value for p in permissions)}
                       for permissions, node in caller.grants],
            "csrf_token": generate_csrf()}


def init_app(app: Flask, session_hours: float, storage_uri: str, secure: bool) -> None:
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_SECURE=secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=session_hours),
        # Writes are checked by the access guard, only when the caller used the cookie.
        WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None, WTF_CSRF_SSL_STRICT=secure,
        RATELIMIT_STORAGE_URI=storage_uri, RATELIMIT_HEADERS_ENABLED=True,
    )
    app.session_interface = CookieSessions()
    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    csrf.init_app(app)
    limiter.init_app(app)
    app.register_blueprint(bp)
