from __future__ import annotations

from flask import current_app

from ..container import Services


def services() -> Services:
    return current_app.extensions["sipas"]
