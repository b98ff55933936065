"""The console's languages: Vietnamese first, English on request (Flask-Babel).

Messages are written in English in the templates and code and translated into Vietnamese
in ``web/console/translations*/vi`` (one directory per area of the console, merged at
start-up). The locale is the one the operator chose (``/lang/<code>``, kept in the
session), else Vietnamese. Numbers, percentages and dates are formatted for that locale
(``1.234,5`` and ``12,5%`` in Vietnamese), times in the installation's time zone.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flask import Flask, redirect, request, session
from flask_babel import Babel, format_datetime, format_decimal, format_percent, get_locale
from werkzeug.wrappers import Response

from .access import public
from .urls import local_path

LOCALES = ("vi", "en")
CONSOLE = Path(__file__).parent / "console"
babel = Babel()


def locale() -> str:
    chosen = session.get("lang")
    return chosen if chosen in LOCALES else "vi"


def number(value: float | int | None, digits: int = 0) -> str:
    """``1234.5`` → ``1.234,5`` (vi) / ``1,234.5`` (en); ``–`` for nothing."""
    if value is None:
        return "–"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern)


def percent(value: float | None, digits: int = 1) -> str:
    """A share (0.125) as a percentage: ``12,5%`` (vi) / ``12.5%`` (en)."""
    if value is None:
        return "–"
    return format_percent(value, format="#,##0" + ("." + "0" * digits if digits else "") + "%")


def moment(value: datetime | None, fmt: str = "dd/MM/yyyy HH:mm") -> str:
    """A stored UTC time in the installation's zone, day first as Vietnamese write it."""
    if value is None:
        return "–"
    return format_datetime(value, fmt)


def _set_language(code: str) -> Response:
    if code in LOCALES:
        session["lang"] = code
    return redirect(local_path(request.args.get("next")))


def init_app(app: Flask, timezone: str) -> None:
    directories = sorted(str(path) for path in CONSOLE.glob("translations*") if path.is_dir())
    app.config.update(BABEL_DEFAULT_LOCALE="vi", BABEL_DEFAULT_TIMEZONE=timezone,
                      BABEL_TRANSLATION_DIRECTORIES=";".join(directories))
    babel.init_app(app, locale_selector=locale)
    app.jinja_env.filters.update(number=number, percent=percent, moment=moment)
    app.jinja_env.globals.update(get_locale=get_locale)
    _set_language._spec = {"hide": True}  # type: ignore[attr-defined]  # a page, not part of the API
    app.add_url_rule("/lang/<code>", "set_language", public(_set_language))
