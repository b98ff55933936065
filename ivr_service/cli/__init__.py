"""Command line: ``python -m ivr_service <command>``. Calls the same services as the API.

One module per area, each registering its commands on the group in :mod:`.base`.
"""

from __future__ import annotations

from . import accounts, campaigns, citizens, programmes, questionnaires, reports, server  # noqa: F401  (register)
from .base import CLI_ACTOR, cli
from .server import DEMO_TRANSACTIONS, load_demo, load_demo_programme

__all__ = ["CLI_ACTOR", "DEMO_TRANSACTIONS", "cli", "load_demo", "load_demo_programme", "main"]


def main() -> None:
    cli(standalone_mode=True)
