"""The operator console: server-rendered pages for watching and steering campaigns.

Jinja templates with htmx for the parts that refresh or submit in place; every asset is
served from ``static/`` (government networks often block CDNs) and every read-only page
works without JavaScript. Pages use the same services, access rules and agency scopes as
the JSON API: a page shows only what the signed-in operator's roles allow, and an object
outside their part of the agency tree answers 404. Vietnamese first, English on request
(``web/i18n.py``).

One module per area registers its routes on ``bp``: campaigns (the list), and the areas
added beside it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import generate_csrf

from ...core.access import Permission
from ..access import principal

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/console")


# The main menu: (endpoint, label, permission needed to see it); areas append theirs.
NAV: list[tuple[str, Any, str]] = [("console.campaigns", _l("Campaigns"), "campaigns:read")]

STATUS_LABELS = {"draft": _l("Draft"), "scheduled": _l("Scheduled"), "running": _l("Running"),
                 "paused": _l("Paused"), "completed": _l("Completed"), "cancelled": _l("Cancelled")}
CHANNEL_LABELS = {"voice": _l("Calls"), "sms": _l("SMS"), "web": _l("Web form")}


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"nav_items": lambda: NAV,
            "status_label": lambda value: STATUS_LABELS.get(value, value),
            "channel_label": lambda value: CHANNEL_LABELS.get(value, value)}


def render(template: str, **context: Any) -> str:
    """A console page: the template with the signed-in caller, what they may do, and the
    CSRF token every form and htmx request carries."""
    caller = principal()
    return render_template(template, caller=caller, may=lambda p: caller.holds(Permission(p)),
                           csrf_token=generate_csrf(), **context)


# One line per area (each registers its routes), so adding an area never conflicts with another.
# isort: off
from . import campaigns  # noqa: E402,F401
from . import monitor  # noqa: E402,F401
from . import settings  # noqa: E402,F401
from . import frames  # noqa: E402,F401
from . import scores  # noqa: E402,F401
from . import opt_outs  # noqa: E402,F401
from . import users  # noqa: E402,F401
from . import tokens  # noqa: E402,F401
from . import audit_log  # noqa: E402,F401
from . import alerts  # noqa: E402,F401
from . import reports  # noqa: E402,F401
# isort: on
