"""``citizen show|erase``: a citizen's request about their personal data, answered by an
administrator at the server (the same services as ``/api/v1/citizens/*``, audited as
``cli:<user>``; the number is never written to the log in clear)."""

from __future__ import annotations

from dataclasses import asdict

import click

from ..container import Services
from ..core.access import mask_phone
from ..services import retention
from ..services.contacts import phone_number
from .base import CLI_ACTOR, _echo_json, cli, pass_services


@cli.group()
def citizen() -> None:
    """A citizen's request: what is held about a number, or erase it."""


@citizen.command("show")
@click.option("--phone", required=True, help="The number as the citizen gives it, e.g. 0912345678")
@click.option("--reason", required=True, help="Who asked, how and when (kept in the audit log)")
@pass_services
def show(svc: Services, phone: str, reason: str) -> None:
    """What the service holds about the number, by the number and by its hash."""
    with svc.db.begin() as session:
        held = retention.holdings(session, CLI_ACTOR, phone, reason, svc.clock(), svc.settings.phone_hash_key)
    _echo_json(asdict(held))


@citizen.command("erase")
@click.option("--phone", required=True, help="The number as the citizen gives it, e.g. 0912345678")
@click.option("--reason", required=True, help="Who asked, how and when (kept in the audit log)")
@pass_services
def erase(svc: Services, phone: str, reason: str) -> None:
    """Erase the number's personal data everywhere; a refusal stays honoured, by hash."""
    with svc.db.begin() as session:
        counts = retention.erase(session, CLI_ACTOR, phone, reason, svc.clock(), svc.settings.phone_hash_key)
    result = asdict(counts)
    result.pop("campaigns")
    _echo_json({"phone": mask_phone(phone_number(phone)), "erased": result})
