"""Command line: ``python -m ivr_service <command>``. Calls the same services as the API."""

from __future__ import annotations

import functools
import getpass
import json
import logging
import secrets
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import click
from werkzeug.serving import make_server

from .app import create_app
from .container import Services
from .core.access import TOKEN_SCOPES, Grant, Role
from .core.questionnaire import QuestionnaireError
from .core.sampling import RULES, SampleRule
from .persistence import migrate
from .services import access, audit, campaigns, frames, programmes, results, transactions
from .services import qr as qr_service
from .services import sampling_report as sampling_report_service
from .services.audit import Actor
from .services.errors import ServiceError
from .services.qr_poster import poster_svg
from .settings import PROJECT_ROOT, Settings, SettingsError

DEMO_FRAME = PROJECT_ROOT / "config" / "demo" / "transactions.csv"
DEMO_AGENCY = ("DEMO-STNMT", "Sở Tài nguyên và Môi trường (demo)")
# The demo calls simulated citizens only, so it may declare an always-open window and
# fast retries; real campaigns keep the Decree 91 defaults.
DEMO_WINDOW: dict[str, Any] = {"weekdays": list(range(7)), "parts": [["00:00", "23:59:59.999999"]],
                               "public_holidays": None}
DEMO_RETRY: dict[str, Any] = {"max_attempts": 3, "delays": {"busy": 1, "no_answer": 1, "failed": 1, "machine": 1,
                                                            "partial": 1, "break_off": 1, "canceled": 1},
                              "min_gap_s": 0}  # simulated citizens: no 24 h per-number cap
DEMO_CALLS_PER_SECOND = 100.0
DEMO_TRANSACTIONS = 40
DEMO_PROCEDURES = (("Đất đai", "Cấp giấy chứng nhận quyền sử dụng đất"),
                   ("Môi trường", "Cấp giấy phép môi trường"),
                   ("Tài nguyên nước", "Cấp giấy phép khai thác nước dưới đất"))


# Commands run by whoever can reach the service's configuration and database.
CLI_ACTOR = Actor(f"cli:{getpass.getuser()}")


class ConfigurationError(click.ClickException):
    """A setting or questionnaire file is wrong: nothing was started (exit code 2)."""

    exit_code = 2


class SipasGroup(click.Group):
    """Maps the errors every command may meet, once: a message naming the problem and a
    non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            raise ConfigurationError(f"configuration error: {exc}") from None
        except QuestionnaireError as exc:
            raise ConfigurationError(f"questionnaire error: {exc}") from None
        except ServiceError as exc:
            raise click.ClickException(exc.message) from None


def _app() -> Any:
    return create_app(Settings.from_env())


def pass_services(command: Callable[..., Any]) -> Callable[..., Any]:
    """Build the app from the environment and pass its services as the first argument."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        return command(_app().extensions["sipas"], *args, **kwargs)
    return run


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@click.group(cls=SipasGroup)
def cli() -> None:
    """SIPAS telephone survey service."""


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
@pass_services
def create_agency(svc: Services, code: str, name: str, rule: str | None, n: int | None, margin: float | None) -> None:
    sample_rule = None
    if rule:
        sample_rule = {"kind": rule, **({"n": n} if n else {}), **({"margin": margin} if margin else {})}
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, code, name, svc.clock(), sample_rule=sample_rule)
    click.echo(f"agency {agency.id} {agency.code}")


def _none_or(parse: Any) -> Any:
    """A click converter that reads 'none' as None (clears a setting)."""
    def convert(value: str | None) -> Any:
        if value is None or value.strip().lower() == "none":
            return None
        return parse(value)
    return convert


def _moment(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected ISO 8601 with an offset, e.g. 2026-12-01T08:00+07:00, got {value!r}") \
            from None


def _json_object(value: str) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"expected a JSON object, got {value!r}")
    return data


def _plan(value: str) -> list[dict[str, Any]]:
    steps = []
    for part in value.split(","):
        channel, _, attempts = part.strip().partition(":")
        try:
            steps.append({"channel": channel, "max_attempts": int(attempts or 1)})
        except ValueError:
            raise click.BadParameter(f"expected CHANNEL:ATTEMPTS[,…] such as voice:3,sms:1, got {value!r}") from None
    return steps


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"expected a number, got {value!r}") from None


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"expected a whole number, got {value!r}") from None


# Options shared by create-campaign and configure-campaign; the converters run in
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
)


def campaign_options(command: Any) -> Any:
    for flag, name, _, help_text in reversed(_CAMPAIGN_OPTIONS):
        command = click.option(flag, name, default=None, help=help_text)(command)
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


def _column_map(pairs: tuple[str, ...]) -> dict[str, str] | None:
    mapping = {}
    for pair in pairs:
        name, sep, header = pair.partition("=")
        if not sep or not name.strip() or not header.strip():
            raise click.BadParameter(f"expected NAME=HEADER, got {pair!r}", param_hint="--column")
        mapping[name.strip()] = header.strip()
    return mapping or None


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
    with svc.db.begin() as session:
        _echo_json(asdict(campaigns.progress(session, campaign_id, svc.clock())))


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
        path = results.write_export(session, svc.registry, campaign_id, svc.settings.export_dir, svc.clock())
    click.echo(str(path))


# --- post-transaction programmes and the transaction feed ----------------------------------

_PROGRAMME_OPTIONS = (
    ("--questionnaire", "questionnaire", None, "Questionnaire with web items (default sipas-2024)"),
    ("--share-mode", "share_mode", None, "seed003 (default: the seed-003 share of the yearly volume) or fixed"),
    ("--share", "share", _none_or(_float), "With --share-mode fixed: the share invited, (0, 1]"),
    ("--expected-response", "expected_response", _float, "Expected response rate, (0, 1] (default 0.5)"),
    ("--seed", "seed", _int, "Salt of the per-transaction draw"),
    ("--delay-minutes", "delay_minutes", _int, "Invite this long after the result is returned (default 120)"),
    ("--recent-days", "recent_days", _int, "Not if invited in the last N days by any agency (default 90)"),
    ("--period", "period", None, "Reporting period: month, quarter (default) or half"),
    ("--timezone", "timezone", None, "IANA zone (default Asia/Ho_Chi_Minh)"),
    ("--ends-on", "ends_on", _none_or(str), "Last day of returned transactions taken, e.g. 2027-12-31"),
    ("--public-host", "public_host", None, "https host of the links (default SIPAS_SURVEY_BASE_URL)"),
    ("--link-days", "link_days", _int, "Days a link stays valid (default 7)"),
    ("--reminder-hours", "reminder_hours", _none_or(_int), "One reminder after N hours if never opened "
                                                           "('none': no reminder; default 72)"),
    ("--max-segments", "max_segments", _int, "Most SMS segments a message may need (default 1)"),
    ("--sender", "sender", _none_or(str), "Brandname (≤ 11 characters) or E.164 number"),
    ("--template", "template", None, "The invitation with {link}, ending with {stop}"),
    ("--reminder-template", "reminder_template", _none_or(str), "The reminder ('none': the invitation's)"),
    ("--channel-plan", "channel_plan", _plan, "e.g. sms:1 or sms:1,voice:2 (default sms:1)"),
)


def programme_options(command: Any) -> Any:
    for flag, name, _, help_text in reversed(_PROGRAMME_OPTIONS):
        command = click.option(flag, name, default=None, help=help_text)(command)
    return click.option("--accented", is_flag=True, help="Keep the templates' diacritics (UCS-2)")(command)


def _programme_options(values: dict[str, Any]) -> dict[str, Any]:
    converters = {name: convert for _, name, convert, _ in _PROGRAMME_OPTIONS}
    given = {}
    for name, value in values.items():
        if value is None:
            continue
        convert = converters[name]
        try:
            given[name] = convert(value) if convert else value
        except click.BadParameter as exc:
            flag = next(f for f, n, _, _ in _PROGRAMME_OPTIONS if n == name)
            raise click.BadParameter(exc.message, param_hint=flag) from None
    return given


@cli.group()
def programme() -> None:
    """Post-transaction programmes: whom to invite after a result is returned."""


@programme.command("create")
@click.option("--agency", required=True, help="Agency id or code")
@click.option("--name", required=True)
@programme_options
@pass_services
def programme_create(svc: Services, agency: str, name: str, accented: bool, **options: Any) -> None:
    """Create the agency's active programme (one per agency)."""
    agency_id = _agency_option(agency, svc)
    assert agency_id is not None
    now = svc.clock()
    with svc.db.begin() as session:
        created = programmes.create_programme(
            session, svc.registry, agency_id=agency_id, name=name, now=now, accented=accented,
            default_host=svc.settings.survey_base_url or svc.settings.public_base_url, **_programme_options(options))
        audit.record(session, CLI_ACTOR, "programme_created", now, target=f"programme:{created.id}",
                     agency_id=agency_id, name=created.name)
    click.echo(f"programme {created.id} for agency {agency_id}")


@programme.command("configure")
@click.argument("programme_id", type=int)
@click.option("--name", default=None)
@programme_options
@pass_services
def programme_configure(svc: Services, programme_id: int, name: str | None, accented: bool,
                        **options: Any) -> None:
    """Change the settings given; the others stay."""
    given = _programme_options(options) | ({"name": name} if name is not None else {})
    if not given:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    now = svc.clock()
    with svc.db.begin() as session:
        changed = programmes.configure_programme(session, svc.registry, programme_id, given, now, accented)
        audit.record(session, CLI_ACTOR, "programme_configured", now, target=f"programme:{programme_id}",
                     agency_id=changed.agency_id, changed=sorted(given))
        _echo_json({"id": programme_id, **programmes.programme_config(changed)})


@programme.command("list")
@pass_services
def programme_list(svc: Services) -> None:
    """One line per programme: id, agency, active, period, name."""
    with svc.db.begin() as session:
        for found in programmes.list_programmes(session):
            click.echo(f"{found.id}\tagency {found.agency_id}\t{'active' if found.active else 'inactive'}\t"
                       f"{found.period}\t{found.name}")


@programme.command("show")
@click.argument("programme_id", type=int)
@pass_services
def programme_show(svc: Services, programme_id: int) -> None:
    """The programme's settings and its reporting periods (counts, rates, service index)."""
    with svc.db.begin() as session:
        found = programmes.get_programme(session, programme_id)
        _echo_json({"id": found.id, "agency_id": found.agency_id, "active": found.active,
                    **programmes.programme_config(found),
                    "periods": programmes.period_summaries(session, svc.registry, programme_id, svc.clock())})


@programme.command("deactivate")
@click.argument("programme_id", type=int)
@pass_services
def programme_deactivate(svc: Services, programme_id: int) -> None:
    """Stop inviting; the period campaigns finish with the contacts they have."""
    now = svc.clock()
    with svc.db.begin() as session:
        found = programmes.deactivate_programme(session, programme_id)
        audit.record(session, CLI_ACTOR, "programme_deactivated", now, target=f"programme:{programme_id}",
                     agency_id=found.agency_id)
    click.echo(f"programme {programme_id} deactivated")


@cli.command("import-transactions")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--atomic", is_flag=True, help="Store nothing if any row is invalid")
@click.option("--encoding", default=None, help="e.g. cp1258 for legacy Vietnamese files")
@click.option("--column", "columns", multiple=True, metavar="NAME=HEADER",
              help="Map a column we do not recognise, e.g. --column 'code=Số biên nhận'")
@pass_services
def import_transactions(svc: Services, path: Path, atomic: bool, encoding: str | None,
                        columns: tuple[str, ...]) -> None:
    """Report the returned dossiers of a CSV or XLSX export (headers in Vietnamese or
    English: mã hồ sơ, mã đơn vị, thủ tục, lĩnh vực, số điện thoại, ngày trả kết quả, cán bộ).
    Prints each rejected row and a summary; exits 1 when a row was rejected."""
    rows, records, read = transactions.read_file(path, encoding, _column_map(columns))
    now = svc.clock()
    with svc.db.begin() as session:
        reported = transactions.report(session, now, records, source="file", actor=CLI_ACTOR, atomic=atomic)
    for ignored in read.ignored_rows:
        click.echo(f"row {ignored['row']}: ignored ({ignored['reason']})")
    for number, result in zip(rows, reported.results, strict=True):
        if result.status in ("error", "not_stored"):
            click.echo(f"row {number}: {result.message}")
    counts = reported.counts
    decisions = ", ".join(f"{k} {v}" for k, v in sorted(reported.decisions.items())) or "none"
    click.echo(f"{counts['created']} created, {counts['duplicate']} duplicate, {counts['error']} error, "
               f"{counts['not_stored']} not stored; decisions: {decisions}")
    if counts["error"]:
        sys.exit(1)


def load_demo(app: Any, frame: Path = DEMO_FRAME, n: int = 200, seed: int = 2024) -> int:
    """Create the demo agency and a running demo campaign of ``n`` contacts sampled from the shipped frame."""
    svc = app.extensions["sipas"]
    now = svc.clock()
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, f"{DEMO_AGENCY[0]}-{now:%Y%m%d%H%M%S%f}", DEMO_AGENCY[1], now)
        campaign = campaigns.create_campaign(
            session, svc.registry, agency_id=agency.id, name=f"Demo {now:%Y-%m-%d %H:%M}",
            questionnaire="sipas-2024", now=now, timezone=svc.settings.timezone, window=DEMO_WINDOW,
            retry=DEMO_RETRY, calls_per_second=DEMO_CALLS_PER_SECOND)
        frames.import_and_sample(session, campaign, frame, SampleRule("fixed", n), seed, now)
        campaigns.transition(session, campaign.id, "start", now)
        return campaign.id


def load_demo_programme(app: Any, agency_code: str, count: int = DEMO_TRANSACTIONS) -> tuple[int, dict[str, int]]:
    """A post-transaction programme for the demo agency, fed ``count`` dossiers
    returned in the last hour, as a one-stop-shop system would report them; returns the
    programme and the feed's decisions. Invitations go out at once (no delay, always-open
    window: simulated citizens only) and simulated citizens open the link and answer."""
    svc = app.extensions["sipas"]
    now = svc.clock()
    with svc.db.begin() as session:
        agency = next(a for a in campaigns.list_agencies(session) if a.code == agency_code)
        programme = programmes.create_programme(
            session, svc.registry, agency_id=agency.id, name="Khảo sát sau giao dịch (demo)", now=now,
            default_host=svc.settings.survey_base_url or svc.settings.public_base_url,
            share_mode="fixed", share=0.8, delay_minutes=0, reminder_hours=None,
            window={**DEMO_WINDOW, "timezone": svc.settings.timezone}, timezone=svc.settings.timezone)
        records = [transactions.Record(   # Vinaphone-style numbers (091…), different on every run
            agency=agency_code, code=f"DEMO-{now:%y%m%d}-{i:04d}",
            phone=f"091{(now.microsecond + i * 7919) % 10**7:07d}",
            returned_at=now - timedelta(minutes=count - i), field=DEMO_PROCEDURES[i % 3][0],
            procedure=DEMO_PROCEDURES[i % 3][1]) for i in range(count)]
        reported = transactions.report(session, now, records, source="api", actor=CLI_ACTOR)
        return programme.id, reported.decisions


DEMO_ADMIN = "demo-admin"


def demo_admin(app: Any) -> tuple[str, str]:
    """An installation-wide admin for the demo with a fresh password, and a fresh API token."""
    svc = app.extensions["sipas"]
    now = svc.clock()
    password = secrets.token_urlsafe(12)
    with svc.db.begin() as session:
        user = access.find_user(session, DEMO_ADMIN)
        if user is None:
            user = access.create_user(session, DEMO_ADMIN, password, now, "Quản trị demo",
                                      grants=[Grant(Role.ADMIN, None)])
        else:
            access.set_password(session, user, password)
        issued = access.create_token(session, "demo", TOKEN_SCOPES, None, now, created_by=user.id)
        audit.record(session, CLI_ACTOR, "demo_admin_reset", now, target=f"user:{user.id}")
    return password, issued.secret


@cli.command("demo")
def demo() -> None:
    """Load the demo agency and transaction list, sample it and start the campaign; print
    how to sign in."""
    app = _app()
    campaign_id = load_demo(app)
    with app.extensions["sipas"].db.begin() as session:
        agency_code = campaigns.get_campaign(session, campaign_id).agency.code
    programme_id, decisions = load_demo_programme(app, agency_code)
    password, token = demo_admin(app)
    base = app.extensions["sipas"].settings.public_base_url
    click.echo(f"demo campaign {campaign_id} is running")
    click.echo(f"demo post-transaction programme {programme_id}: {DEMO_TRANSACTIONS} dossiers reported "
               f"({', '.join(f'{n} {d}' for d, n in sorted(decisions.items()))}); the invitations go out now")
    click.echo(f"sign in at {base}/auth/login as {DEMO_ADMIN} / {password}")
    click.echo(f"or call the API: curl -H 'Authorization: Bearer {token}' "
               f"{base}/api/v1/campaigns/{campaign_id}/progress")




@cli.command("worker")
def worker() -> None:
    """Run a worker process (dispatch and housekeeping) until interrupted."""
    from .worker import Worker

    app = _app()
    runner = Worker(app)
    try:
        runner.scheduler(blocking=True).start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        runner.close()


@cli.command("serve")
@click.option("--exit-when-done", is_flag=True, help="Stop once no campaign is running and all are exported.")
def serve(exit_when_done: bool) -> None:
    """All-in-one: web server and worker in one process (the embedded default)."""
    from .worker import Worker

    app = _app()
    settings = app.extensions["sipas"].settings
    if settings.log_level.upper() != "DEBUG":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per webhook is noise
    base = urlsplit(settings.public_base_url)
    server = make_server(base.hostname or "127.0.0.1", base.port or 80, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="web", daemon=True)
    thread.start()
    click.echo(f"SIPAS survey service at {settings.public_base_url}/  (API docs: "
               f"{settings.public_base_url}/api/v1/docs)")
    runner = Worker(app)
    scheduler = runner.scheduler(blocking=False)
    done = threading.Event()
    if exit_when_done:
        def check() -> None:
            if _all_done(app, runner.messenger):
                done.set()
        scheduler.add_job(check, "interval", seconds=1, id="exit-when-done", max_instances=1, coalesce=True)
    scheduler.start()
    try:
        done.wait() if exit_when_done else thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=True)
        runner.close()
        server.shutdown()
    _report(app)


def _all_done(app: Any, messenger: Any) -> bool:
    """Nothing left to do, and no simulated citizen still reading or answering a message."""
    svc = app.extensions["sipas"]
    if getattr(messenger, "busy", lambda: False)():
        return False
    with svc.db.begin() as session:
        return campaigns.all_settled(session, svc.clock())


def _report(app: Any) -> None:
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        campaign = campaigns.latest_exported(session)
        if campaign is not None:
            click.echo(f"campaign {campaign.id} {campaign.status.value}; export: {campaign.export_path}")
        for programme in programmes.list_programmes(session):
            for period in programmes.period_summaries(session, svc.registry, programme.id, svc.clock()):
                click.echo(_period_line(programme.name, period))


def _period_line(name: str, period: dict[str, Any]) -> str:
    """One line per programme period: invitations, forms answered, what is still open."""
    by = period["by_disposition"]
    waiting = period["by_status"].get("active", 0) + period["by_status"].get("pending", 0)
    index = period["service_index"]
    return (f"programme {name!r} {period['label']}: {period['contacts']} invited, {by.get('1.1', 0)} forms complete, "
            f"{by.get('1.2', 0) + by.get('2.12', 0)} partial or broken off, {by.get('2.11', 0)} refused, "
            f"{waiting} links still open; service index "
            + (f"{index:.1f} %" if index is not None else "n/a"))


def main() -> None:
    cli(standalone_mode=True)


# --- users, tokens, audit --------------------------------------------------------------------

def _agency_option(value: str | None, svc: Services) -> int | None:
    """--agency as an id or a code; none means the whole installation."""
    if value is None:
        return None
    with svc.db.begin() as session:
        found = next((a.id for a in campaigns.list_agencies(session) if str(a.id) == value or a.code == value), None)
    if found is None:
        raise click.BadParameter(f"no agency with id or code {value!r}", param_hint="--agency")
    return found


@cli.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--agency", default=None, help="Agency id or code the role applies to (with its subtree); "
                                             "omit for the whole installation")
@click.option("--display-name", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of a prompt")
@pass_services
def create_user(svc: Services, username: str, role: str, agency: str | None, display_name: str | None,
                password_stdin: bool) -> None:
    """Create a user (on a fresh install: the first admin, with no --agency)."""
    agency_id = _agency_option(agency, svc)
    password = (sys.stdin.readline().rstrip("\n") if password_stdin
                else str(click.prompt("password", hide_input=True, confirmation_prompt=True)))
    now = svc.clock()
    with svc.db.begin() as session:
        user = access.create_user(session, username, password, now, display_name,
                                  grants=[Grant(Role(role), agency_id)])
        audit.record(session, CLI_ACTOR, "user_created", now, target=f"user:{user.id}", username=user.username)
        audit.record(session, CLI_ACTOR, "role_granted", now, target=f"user:{user.id}", agency_id=agency_id,
                     role=role)
    click.echo(f"user {user.id} {user.username}: {role} on {agency or 'the whole installation'}")


@cli.command("grant")
@click.argument("username")
@click.argument("role", type=click.Choice([r.value for r in Role]))
@click.option("--agency", default=None, help="Agency id or code; omit for the whole installation")
@pass_services
def grant(svc: Services, username: str, role: str, agency: str | None) -> None:
    """Give a user a role on an agency node (replacing their role there)."""
    agency_id = _agency_option(agency, svc)
    now = svc.clock()
    with svc.db.begin() as session:
        user = _user_named(session, username)
        access.grant_role(session, user.id, role, agency_id, now)
        audit.record(session, CLI_ACTOR, "role_granted", now, target=f"user:{user.id}", agency_id=agency_id,
                     role=role)
    click.echo(f"{username}: {role} on {agency or 'the whole installation'}")


def _user_named(session: Any, username: str) -> Any:
    user = access.find_user(session, username)
    if user is None:
        raise click.BadParameter(f"no user {username!r}", param_hint="USERNAME")
    return user


@cli.command("create-token")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(sorted(TOKEN_SCOPES)),
              help="A permission the token holds; repeat for several")
@click.option("--agency", default=None, help="Agency id or code (with its subtree); omit for all agencies")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None, help="Expire after N days")
@pass_services
def create_token(svc: Services, name: str, scopes: tuple[str, ...], agency: str | None,
                 expires_days: int | None) -> None:
    """Issue an API token for a system (a one-stop-shop, a script). Printed once."""
    agency_id = _agency_option(agency, svc)
    now = svc.clock()
    expires = now + timedelta(days=expires_days) if expires_days else None
    with svc.db.begin() as session:
        issued = access.create_token(session, name, scopes, agency_id, now, expires_at=expires)
        audit.record(session, CLI_ACTOR, "token_created", now, target=f"token:{issued.token.id}",
                     agency_id=agency_id, prefix=issued.token.prefix, scopes=issued.token.scopes)
    click.echo(f"token {issued.token.id} ({issued.token.prefix}); store it now, it is not shown again:")
    click.echo(issued.secret)


@cli.command("revoke-token")
@click.argument("token_id", type=int)
@pass_services
def revoke_token(svc: Services, token_id: int) -> None:
    now = svc.clock()
    with svc.db.begin() as session:
        token = access.revoke_token(session, token_id, now)
        audit.record(session, CLI_ACTOR, "token_revoked", now, target=f"token:{token.id}",
                     agency_id=token.agency_id, prefix=token.prefix)
    click.echo(f"token {token_id} revoked")


@cli.command("audit")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--action", default=None, help="Only this action, e.g. campaign_pause")
@pass_services
def audit_log(svc: Services, limit: int, action: str | None) -> None:
    """The audit log, newest first, one JSON object per line."""
    with svc.db.begin() as session:
        for entry in audit.entries(session, limit, action=action):
            click.echo(json.dumps({"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor,
                                   "action": entry.action, "target": entry.target, "agency_id": entry.agency_id,
                                   "address": entry.address, "detail": entry.detail}, ensure_ascii=False))


# --- QR posters at the counter ----------------------------------------------------------------

@cli.group("qr")
def qr_group() -> None:
    """QR posters leading to the anonymous, self-selected form (kept apart from campaigns)."""


@qr_group.command("create")
@click.option("--agency", required=True, help="Agency id or code")
@click.option("--label", required=True, help='The counter, e.g. "Quầy 1"')
@click.option("--questionnaire", default=qr_service.DEFAULT_QUESTIONNAIRE, show_default=True)
@click.option("--host", default=None, help="Public https origin; default SIPAS_SURVEY_BASE_URL, else "
                                           "SIPAS_PUBLIC_BASE_URL")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the A4 poster (SVG) here")
@pass_services
def qr_create(svc: Services, agency: str, label: str, questionnaire: str, host: str | None,
              out: Path | None) -> None:
    agency_id = _agency_option(agency, svc)
    assert agency_id is not None
    now = svc.clock()
    with svc.db.begin() as session:
        poster = qr_service.create_poster(session, svc.registry, agency_id, label,
                                          host or svc.settings.survey_base_url or svc.settings.public_base_url,
                                          now, questionnaire=questionnaire)
        audit.record(session, CLI_ACTOR, "qr_poster_created", now, target=f"qr_poster:{poster.id}",
                     agency_id=agency_id, label=poster.label, code=poster.code)
        svg = poster_svg(poster, campaigns.get_agency(session, agency_id).name)
        line = f"poster {poster.id} {poster.code} {qr_service.poster_url(poster)}"
    if out is not None:
        out.write_text(svg, encoding="utf-8")
        line += f" -> {out}"
    click.echo(line)


@qr_group.command("list")
@click.option("--agency", default=None, help="Agency id or code; default every agency")
@pass_services
def qr_list(svc: Services, agency: str | None) -> None:
    agency_id = _agency_option(agency, svc)
    with svc.db.begin() as session:
        for poster in qr_service.list_posters(session, agency_id):
            state = "active" if poster.active else "inactive"
            click.echo(f"{poster.id}\t{poster.code}\t{state}\tagency {poster.agency_id}\t{poster.label}\t"
                       f"{qr_service.poster_url(poster)}")


@qr_group.command("export")
@click.option("--poster", "poster_id", type=int, default=None, help="One poster's forms")
@click.option("--agency", default=None, help="Every poster of this agency (id or code)")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="First day (in SIPAS_TIMEZONE)")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Last day, included")
@pass_services
def qr_export(svc: Services, poster_id: int | None, agency: str | None, first: datetime, last: datetime) -> None:
    """Write the self-selected QR responses' scores and answers (XLSX and CSV), apart from
    every campaign's export."""
    if (poster_id is None) == (agency is None):
        raise click.UsageError("give --poster or --agency")
    agency_id = _agency_option(agency, svc)
    zone = ZoneInfo(svc.settings.timezone)   # days as the agency counts them, like the API
    start, end = first.replace(tzinfo=zone), (last + timedelta(days=1)).replace(tzinfo=zone)
    now = svc.clock()
    with svc.db.begin() as session:
        path = qr_service.export(session, svc.registry, svc.settings.export_dir, start=start, end=end, now=now,
                                 poster_id=poster_id, agency_id=agency_id)
        target = f"qr_poster:{poster_id}" if poster_id is not None else f"agency:{agency_id}"
        if poster_id is not None:
            agency_id = qr_service.get_poster(session, poster_id).agency_id
        audit.record(session, CLI_ACTOR, "qr_export_written", now, target=target, agency_id=agency_id,
                     file=path.name)
    click.echo(str(path))
