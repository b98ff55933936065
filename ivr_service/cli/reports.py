"""CCHC reports on request: one agency node for a period, or one campaign."""

from __future__ import annotations

from pathlib import Path

import click

from ..container import Services
from ..services import period_reports
from .base import CLI_ACTOR, _agency_option, cli, pass_services


@cli.command("report")
@click.option("--agency", default=None, help="The agency node's code (or id): its whole subtree, rolled up")
@click.option("--campaign", type=int, default=None, help="A campaign id")
@click.option("--period", default=None,
              help="2026-11 (month), 2026-Q4 (quarter) or 2026-H2 (half-year); needed with --agency, "
                   "a campaign without one is reported whole")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Directory the workbook is written into")
@pass_services
def report(svc: Services, agency: str | None, campaign: int | None, period: str | None, lang: str,
           out: Path) -> None:
    """Write the report workbook (XLSX, no phone number or name) and print its path."""
    if (agency is None) == (campaign is None):
        raise click.UsageError("give --agency CODE or --campaign ID")
    agency_id = _agency_option(agency, svc)
    out.mkdir(parents=True, exist_ok=True)
    with svc.db.begin() as session:
        path = period_reports.write(session, svc.registry, svc.clock(), out, agency_id=agency_id,
                                    campaign_id=campaign, period=period, lang=lang,
                                    options=period_reports.ReportOptions.from_settings(svc.settings),
                                    actor=CLI_ACTOR)
    click.echo(str(path))
