"""SIPAS telephone and SMS survey service."""

from .app import create_app

__all__ = ["create_app"]
