"""The citizen's side: the survey form behind an SMS link, the stop-messages page and the
anonymous QR form. Public pages (the link code is the credential), tiny and fast, usable
on a cheap phone over a slow connection without JavaScript; they share no template or
access rule with the operators' pages."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("survey", __name__, template_folder="templates", static_folder="static",
               static_url_path="/survey-static")

from . import form, qr  # noqa: E402,F401  (routes register on bp)
