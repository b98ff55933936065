"""Post-transaction programmes, the transaction feed and QR posters."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from ..container import Services
from ..services import audit, campaigns, programmes, transactions
from ..services import qr as qr_service
from ..services.qr_poster import poster_svg
from .base import (
    CLI_ACTOR,
    _agency_option,
    _column_map,
    _echo_json,
    _float,
    _int,
    _none_or,
    _plan,
    cli,
    pass_services,
)

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
