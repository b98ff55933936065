"""Application factory."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime

from apiflask import APIFlask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import logs, metrics
from .container import Services
from .core import estimate, optout
from .core.questionnaire import Questionnaire, QuestionnaireRegistry
from .persistence.db import Database
from .persistence.files import restrict_umask
from .persistence.models import utcnow
from .settings import Settings, SettingsError


def create_app(settings: Settings | None = None, clock: Callable[[], datetime] = utcnow) -> APIFlask:
    """Build the web app. Settings come from the environment unless given; settings and
    questionnaire files are validated here, so a bad value stops start-up with a message
    naming it (``SettingsError`` / ``QuestionnaireError``)."""
    # Before anything is written: exports, reports and the SQLite database are private to
    # the service's user (persistence.files).
    restrict_umask()
    if settings is None:
        settings = Settings.from_env()
    else:
        settings.validate()
    logs.configure(settings.log_level, settings.log_format)
    metrics.check_directory()
    # A line per job run, or per run skipped because the previous one is still busy, is noise.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    app = APIFlask(__name__, title="SIPAS survey service", version="1.0",
                   spec_path="/api/v1/openapi.json", docs_path="/api/v1/docs")
    app.config.update(SECRET_KEY=settings.secret_key or secrets.token_hex(32), SETTINGS=settings, JSON_SORT_KEYS=False,
                      MAX_CONTENT_LENGTH=int(settings.max_request_mb * 1024 * 1024),
                      MAX_JSON_BYTES=int(settings.max_json_kb * 1024))
    app.config["INFO"] = {"description": "Telephone and SMS surveys of citizen satisfaction with "
                                         "public administrative services (SIPAS)."}
    log = logging.getLogger(__name__)
    if settings.provider == "simulator":
        log.warning("SIPAS_PROVIDER is simulator: no real calls are placed and the answers are invented "
                    "by simulated citizens (development and tests only)")
    if not settings.validate_signatures:
        log.warning("SIPAS_VALIDATE_SIGNATURES is off: webhooks are accepted without a signature "
                    "(simulator only; never in production)")
    registry = QuestionnaireRegistry(settings.questionnaire_dir)
    questionnaires = registry.load_all()
    check_call_length(questionnaires, settings)
    # Only here are the questionnaires known: a refusal word that is also an answer word
    # would opt out a citizen answering a two-way survey.
    clash = optout.clashes(settings.opt_out_words, optout.answer_words(registry))
    if clash:
        raise SettingsError(f"SIPAS_OPT_OUT_WORDS: {', '.join(clash)} also answer a questionnaire's questions; "
                            f"remove them from the list")
    app.extensions["sipas"] = Services(
        settings=settings, db=Database(settings.database_url, settings.phone_hash_key), registry=registry, clock=clock,
        voices={"vi": settings.voice_vi, "en": settings.voice_en},
    )

    from .web import access, api, auth, console, errors, i18n, messages, observability, survey, voice, zns

    # Every asset of the API docs page is served from here (no CDN). docs.css is Swagger UI's
    # style with its low-contrast colours darkened. Without deep links an operation's path is
    # plain text, not a link inside its expand button (axe: nested-interactive); the servers
    # drop-down has no label of its own.
    vendor = "/static/console/vendor/swagger-ui/"
    app.config.update(SWAGGER_UI_CSS="/static/console/docs.css", SWAGGER_UI_BUNDLE_JS=vendor + "swagger-ui-bundle.js",
                      SWAGGER_UI_STANDALONE_PRESET_JS=vendor + "swagger-ui-standalone-preset.js",
                      DOCS_FAVICON="/static/console/favicon.svg",
                      SWAGGER_UI_CONFIG={"deepLinking": False, "onComplete": (
                          "function () { var s = document.getElementById('servers');"
                          " if (s) { s.setAttribute('aria-label', 'Servers'); } }")})
    errors.init_app(app)
    i18n.init_app(app, settings.timezone)
    auth.init_app(app, session_hours=settings.session_hours, storage_uri=settings.ratelimit_storage,
                  secure=settings.public_base_url.startswith("https://"))
    observability.init_app(app)     # request ids first: the guard's refusals carry one too
    app.before_request(access.guard)
    app.security_schemes = {   # stated in the OpenAPI document
        "ApiToken": {"type": "http", "scheme": "bearer", "description": "An API token: sipas_<prefix>_<secret>"},
        "Session": {"type": "apiKey", "in": "cookie", "name": "session",
                    "description": "A console sign-in (POST /auth/login); writes need the X-CSRFToken header"},
    }
    app.config["SECURITY_SCHEMES"] = app.security_schemes
    app.register_blueprint(api.bp)
    app.register_blueprint(voice.bp)
    app.register_blueprint(messages.bp)
    app.register_blueprint(survey.bp)
    app.register_blueprint(zns.bp)
    app.register_blueprint(console.bp)

    if settings.trusted_proxies:
        # Only as many hops as configured: a client cannot forge its address through a
        # header the proxy passed on untouched.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]

    @app.get("/healthz")
    @app.doc(hide=True)
    @access.public
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def check_call_length(questionnaires: list[Questionnaire], settings: Settings) -> None:
    """Stop start-up when a complete call would be longer than ``SIPAS_MAX_CALL_SECONDS``
    (core.estimate: the longest path, with the speech hint and the agency's line)."""
    if not settings.max_call_seconds:
        return
    over = estimate.too_long(questionnaires, settings.max_call_seconds, settings.call_pace)
    if over:
        calls = "; ".join(estimate.describe(found, found.longest) for found in over)
        raise SettingsError(
            f"SIPAS_MAX_CALL_SECONDS: a complete call would take longer than the limit of "
            f"{settings.max_call_seconds} s "
            f"(with the speech hint, the agency's line {estimate.SAMPLE_HOTLINE} and the agency name "
            f"{estimate.SAMPLE_AGENCY!r}; SIPAS_SPEAKING_RATE {settings.speaking_rate:g} characters a second): "
            f"{calls}. Shorten the questionnaire's texts or say its instructions once (flow.instructions: first), "
            f"or raise the limit (0: no check)")
