"""Agencies, campaigns, frames and results; the database schema."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from ..container import Services
from ..core.sampling import RULES
from ..persistence import migrate
from ..persistence.models import Agency
from ..services import audit, call_costs, campaigns, frames, results
from ..services import sampling_report as sampling_report_service
from ..services.call_costs import Costing
from ..settings import Settings
from .base import (
    CLI_ACTOR,
    _column_map,
    _echo_json,
    _float,
    _int,
    _json_object,
    _moment,
    _none_or,
    _plan,
    cli,
    pass_services,
)


@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    url = Settings.from_env().database_url
    migrate.upgrade(url, revision)
    click.echo(f"database at revision {migrate.current(url)}")


@db.command("downgrade")
@click.argument("revision", default="-1")
def db_downgrade(revision: str) -> None:
    url = Settings.from_env().database_url
    migrate.downgrade(url, revision)
    click.echo(f"database at revision {migrate.current(url)}")


@db.command("check")
def db_check() -> None:
    """Fail if the models and the migrated database differ."""
    diffs = migrate.differences(Settings.from_env().database_url)
    if diffs:
        raise click.ClickException("models and migrations differ:\n" + "\n".join(map(str, diffs)))
    click.echo("models and migrations agree")


@cli.command("create-agency")
@click.argument("code")
@click.argument("name")
@click.option("--rule", type=click.Choice(RULES), default=None, help="Sample-size rule (default seed002 tiers)")
@click.option("--n", type=int, default=None, help="Sample size for --rule fixed")
@click.option("--margin", type=float, default=None, help="e for --rule slovin/cochran (default 0.05)")
@click.option("--retention-days", type=int, default=None,
              help="Days its closed campaigns keep personal data (default SIPAS_RETENTION_DAYS)")
@pass_services
def create_agency(svc: Services, code: str, name: str, rule: str | None, n: int | None, margin: float | None,
                  retention_days: int | None) -> None:
    sample_rule = None
    if rule:
        sample_rule = {"kind": rule, **({"n": n} if n else {}), **({"margin": margin} if margin else {})}
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, code, name, svc.clock(), sample_rule=sample_rule,
                                         retention_days=retention_days)
    click.echo(f"agency {agency.id} {agency.code}")


@cli.command("agency-retention")
@click.argument("code")
@click.argument("days")
@pass_services
def agency_retention(svc: Services, code: str, days: str) -> None:
    """Set how many days an agency's closed campaigns keep personal data ('default': SIPAS_RETENTION_DAYS)."""
    if days == "default":
        value = None
    elif days.isdigit():
        value = int(days)
    else:
        raise click.BadParameter(f"expected a number of days or 'default', got {days!r}", param_hint="DAYS")
    with svc.db.begin() as session:
        agency = session.scalar(select(Agency).where(Agency.code == code))
        if agency is None:
            raise click.ClickException(f"agency {code!r} not found")
        before = agency.retention_days
        campaigns.set_retention(session, agency.id, value)
        audit.record(session, CLI_ACTOR, "agency_retention_changed", svc.clock(), target=f"agency:{agency.id}",
                     agency_id=agency.id, before=before, after=value)
    click.echo(f"agency {code}: personal data kept {value if value is not None else 'SIPAS_RETENTION_DAYS'}"
               f"{' days' if value is not None else ''} after a campaign closes")




# _campaign_options so that 'none' can clear a setting in configure-campaign.
_CAMPAIGN_OPTIONS = (
    ("--timezone", "timezone", None, "IANA zone of the calling window (default: SIPAS_TIMEZONE)"),
    ("--window", "window", _json_object,
     'Calling window as JSON, e.g. \'{"weekdays": [0,1,2,3,4], "parts": [["08:00","11:30"],["13:30","17:00"]], '
     '"closed_dates": ["2027-02-15"]}\' (default: Mon–Sat 08:00–17:00, no VN public holidays)'),
    ("--retry", "retry", _json_object,
     'Retry policy as JSON, e.g. \'{"max_attempts": 3, "delays": {"busy": 900}, "min_gap_s": 86400}\''),
    ("--calls-per-second", "calls_per_second", _float, "Campaign pace (the sender's pace also applies)"),
    ("--language", "language", None, "vi or en"),
    ("--resume-mode", "resume_mode", None, "resume or restart an interrupted questionnaire"),
    ("--starts-at", "starts_at", _none_or(_moment), "No attempt before, e.g. 2026-12-01T08:00+07:00 ('none' clears)"),
    ("--ends-at", "ends_at", _none_or(_moment), "No attempt after; the campaign then closes ('none' clears)"),
    ("--target-completes", "target_completes", _none_or(_int), "Close after this many completes ('none' clears)"),
    ("--channel-plan", "channel_plan", _none_or(_plan), "e.g. voice:3,sms:1 ('none' clears)"),
    ("--hotline", "hotline", _none_or(str), "The agency's line said at the end of a call, e.g. 1022 ('none' clears)"),
)


def campaign_options(command: Any) -> Any:
    for flag, name, _, help_text in reversed(_CAMPAIGN_OPTIONS):
        command = click.option(flag, name, default=None, help=help_text)(command)
    command = click.option("--speech/--no-speech", "speech_input", default=None,
                           help="Accept spoken answers as well as keys on calls")(command)
    return click.option("--spread/--no-spread", "spread", default=None,
                        help="Spread first attempts over the open days left before --ends-at")(command)


def _campaign_options(values: dict[str, Any]) -> dict[str, Any]:
    """The options given on the command line, converted."""
    converters = {name: convert for _, name, convert, _ in _CAMPAIGN_OPTIONS}
    given = {}
    for name, value in values.items():
        if value is None:
            continue
        convert = converters.get(name)
        try:
            given[name] = convert(value) if convert else value
        except click.BadParameter as exc:
            flag = next(f for f, n, _, _ in _CAMPAIGN_OPTIONS if n == name)
            raise click.BadParameter(exc.message, param_hint=flag) from None
    return given


@cli.command("create-campaign")
@click.option("--agency-id", type=int, required=True)
@click.option("--name", required=True)
@click.option("--questionnaire", default="sipas-2024", show_default=True)
@campaign_options
@pass_services
def create_campaign(svc: Services, agency_id: int, name: str, questionnaire: str, **options: Any) -> None:
    """Create a draft campaign (default: the Decree 91 calling window and retry policy)."""
    given = _campaign_options(options)
    given.setdefault("timezone", svc.settings.timezone)
    with svc.db.begin() as session:
        campaign = campaigns.create_campaign(session, svc.registry, agency_id=agency_id, name=name,
                                             questionnaire=questionnaire, now=svc.clock(), **given)
    click.echo(f"campaign {campaign.id} ({campaign.status.value})")


@cli.command("configure-campaign")
@click.argument("campaign_id", type=int)
@click.option("--name", default=None)
@click.option("--questionnaire", default=None, help="Only while the campaign is a draft")
@campaign_options
@pass_services
def configure_campaign(svc: Services, campaign_id: int, **options: Any) -> None:
    """Change the settings given; the others stay. Prints the campaign's settings."""
    given = _campaign_options(options)
    if not given:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    with svc.db.begin() as session:
        campaign = campaigns.configure_campaign(session, svc.registry, campaign_id, given)
        config = campaigns.campaign_config(campaign)
    _echo_json({"id": campaign_id, **config})


@cli.command("import-frame")
@click.argument("campaign_id", type=int)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rule", type=click.Choice(RULES), default=None, help="Default: the agency's rule (seed002 tiers)")
@click.option("--n", type=int, default=None, help="Sample size for --rule fixed")
@click.option("--seed", type=int, default=None, help="Random seed (recorded on the campaign)")
@click.option("--margin", type=float, default=0.05, show_default=True, help="e for --rule slovin/cochran")
@click.option("--encoding", default=None, help="e.g. cp1258 for legacy Vietnamese files")
@click.option("--reserve", type=float, default=0.0, show_default=True, help="Reserve pool as a share of the sample")
@click.option("--replicates", type=int, default=1, show_default=True, help="Reserve waves")
@click.option("--recent-days", type=int, default=90, show_default=True,
              help="Exclude numbers called in the last N days (0: off)")


@click.option("--column", "columns", multiple=True, metavar="NAME=HEADER",
              help="Map a column we do not recognise, e.g. --column 'phone=ĐT di động'")


@pass_services
def import_frame(svc: Services, campaign_id: int, path: Path, rule: str | None, n: int | None, seed: int | None,
                 margin: float, encoding: str | None, reserve: float, replicates: int, recent_days: int,
                 columns: tuple[str, ...]) -> None:
    """Import a transaction list into a draft campaign and draw the sample."""
    sample_rule = frames.sample_rule(rule, n, margin)
    report = frames.import_file(svc.db, campaign_id, path, sample_rule,
                                seed if seed is not None else int(svc.clock().timestamp()),
                                svc.clock(), encoding=encoding, reserve_share=reserve,
                                replicates=replicates, recent_days=recent_days,
                                column_map=_column_map(columns), max_rows=svc.settings.max_frame_rows,
                                actor=CLI_ACTOR, file_name=path.name)
    _echo_json(report.to_dict())




@cli.command("preview-frame")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--encoding", default=None, help="e.g. cp1258 for legacy Vietnamese files")
@click.option("--column", "columns", multiple=True, metavar="NAME=HEADER", help="Map an unrecognised column")
@pass_services
def preview_frame(svc: Services, path: Path, encoding: str | None, columns: tuple[str, ...]) -> None:
    """Validate a transaction list and report what an import would do; stores nothing."""
    _echo_json(frames.preview_file(svc.db, path, svc.clock(), encoding=encoding, column_map=_column_map(columns),
                                   max_rows=svc.settings.max_frame_rows).to_dict())


@cli.command("sampling-report")
@click.argument("campaign_id", type=int)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write XLSX and CSV files into this directory")


@pass_services
def sampling_report(svc: Services, campaign_id: int, out: Path | None) -> None:
    """Per stratum and total: frame rows, eligible, excluded by reason, drawn, reserve."""
    with svc.db.begin() as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        click.echo(sampling_report_service.sampling_table(session, campaign).to_string(index=False))
        if out is not None:
            click.echo(str(sampling_report_service.write_sampling_report(session, campaign, out, svc.clock())))


@cli.command("release-reserve")
@click.argument("campaign_id", type=int)
@pass_services
def release_reserve(svc: Services, campaign_id: int) -> None:
    """Release the next reserve wave of a campaign's sample."""
    with svc.db.begin() as session:
        released = frames.release_reserve(session, campaigns.get_campaign(session, campaign_id, lock=True),
                                          svc.clock())
    click.echo(f"released {released} reserve contacts")


@cli.command("frame-template")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def frame_template(path: Path) -> None:
    """Write the XLSX template of the accepted transaction-list layout (Vietnamese)."""
    path.write_bytes(sampling_report_service.frame_template())
    click.echo(str(path))


@cli.command("campaign")
@click.argument("action", type=click.Choice(["start", "pause", "resume", "cancel"]))
@click.argument("campaign_id", type=int)
@click.option("--reason", default=None, help="Why (required to pause or cancel); kept in the audit log")
@pass_services
def campaign_action(svc: Services, action: str, campaign_id: int, reason: str | None) -> None:
    """Start, pause, resume or cancel a campaign."""
    if action in ("pause", "cancel") and not (reason or "").strip():
        raise click.UsageError(f"--reason is required to {action} a campaign")
    now = svc.clock()
    with svc.db.begin() as session:
        campaign = campaigns.transition(session, campaign_id, action, now, svc.registry)
        audit.record(session, CLI_ACTOR, f"campaign_{action}", now, target=f"campaign:{campaign_id}",
                     agency_id=campaign.agency_id, **({"reason": reason.strip()} if reason else {}))
    click.echo(f"campaign {campaign.id} is {campaign.status.value}")


@cli.command("progress")
@click.argument("campaign_id", type=int)
@pass_services
def progress(svc: Services, campaign_id: int) -> None:
    """Counts, rates, and the calls' length and cost (as GET /api/v1/campaigns/<id>/progress)."""
    with svc.db.begin() as session:
        progress = campaigns.progress(session, campaign_id, svc.clock())
        calls = call_costs.campaign_costs(session, svc.registry, campaign_id, Costing.from_settings(svc.settings))
        _echo_json({**asdict(progress), "calls": asdict(calls)})


@cli.command("scores")
@click.argument("campaign_id", type=int)
@pass_services
def scores(svc: Services, campaign_id: int) -> None:
    with svc.db.begin() as session:
        _echo_json(asdict(results.campaign_scores(session, svc.registry, campaign_id)))


@cli.command("export")
@click.argument("campaign_id", type=int)
@pass_services
def export(svc: Services, campaign_id: int) -> None:
    with svc.db.begin() as session:
        path = results.write_export(session, svc.registry, campaign_id, svc.settings.export_dir, svc.clock(),
                                    costing=Costing.from_settings(svc.settings))
    click.echo(str(path))
