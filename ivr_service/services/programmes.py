"""Post-transaction programmes: create, configure, list, deactivate; and the campaign of
each reporting period.

A programme belongs to one agency (one active programme per agency) and decides which
reported transactions become invitations (``services/transactions.py``). Its results fall
into reporting periods, one campaign per period (``Campaign.programme_id`` with
``period_start``), created race-safely by :func:`period_campaign` when the period's first
selected transaction arrives. The campaign copies the programme's questionnaire, message
window, time zone and channel plan; it runs until its period has ended and its contacts
are settled (``campaigns.close_if_done``), and takes answers until ``ends_at`` (the local
end of the period plus the link lifetime and a day), so invitations sent late in the
period can still be answered.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core import messages
from ..core.names import check_name
from ..core.policy import CallingWindow
from ..core.programmes import PERIODS, SHARE_MODES, Period, message_window, period_end_instant, period_of
from ..core.questionnaire import QuestionnaireRegistry
from ..persistence.models import Agency, Campaign, CampaignStatus, Programme
from ..settings import LOOPBACK
from . import message_reports, messaging_accounts, results
from .campaigns import MAX_ID, check_sms_mode, get_agency, progress, validate_channel_plan
from .errors import Conflict, InvalidInput, NotFound, invalid

# The longest link code (core.messages: 8–10 characters); templates are checked with it.
LINK_CODE_MAX = 10
NAME_MAX = 180          # the period campaign's name adds " — 2026-Q4"
MAX_DELAY_MINUTES = 7 * 24 * 60
MAX_RECENT_DAYS = 730
MAX_LINK_DAYS = 30
MAX_SEGMENTS = 5
MAX_SEED = 2**31 - 1
_BRANDNAME = re.compile(r"^[A-Za-z0-9 .\-]{1,11}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

# Unaccented so it fits one GSM-7 segment with both links on a host of up to 36
# characters; it ends with the link that refuses further messages (Decree 91/2020).
DEFAULT_TEMPLATE = "Moi Ong/Ba danh gia ho so vua nhan: {link} Tu choi tin: {stop}"
DEFAULT_PLAN: list[dict[str, Any]] = [{"channel": "sms", "max_attempts": 1}]

# What create_programme takes and configure_programme may change ("accented" is an input
# flag: keep the templates' diacritics instead of removing them).
FIELDS = ("name", "questionnaire", "share_mode", "share", "expected_response", "seed", "delay_minutes",
          "recent_days", "period", "timezone", "window", "ends_on", "public_host", "link_days",
          "reminder_hours", "max_segments", "sender", "template", "reminder_template", "channel_plan")
_COLUMNS = {"questionnaire": "questionnaire_key"}
# A period's campaign is keyed by its start: once one exists these would split periods.
_FIXED_ONCE_RUNNING = frozenset({"period", "timezone"})


def link_length(public_host: str) -> int:
    """Characters of the longest link a message carries: ``<host>/s/<code>/stop``."""
    return len(public_host) + len("/s/") + LINK_CODE_MAX + len("/stop")


def create_programme(session: Session, registry: QuestionnaireRegistry, *, agency_id: int, name: str,
                     now: datetime, default_host: str, questionnaire: str = "sipas-2024",
                     accented: bool = False, **settings: Any) -> Programme:
    """A new active programme for ``agency_id``; Conflict when the agency has one already.
    ``default_host``: the public host of the links when ``public_host`` is not given
    (``SIPAS_SURVEY_BASE_URL``, else ``SIPAS_PUBLIC_BASE_URL``). ``routing``: messaging
    account ids in the order tried (None: the installation's provider)."""
    routing = settings.pop("routing", None)
    unknown = sorted(set(settings) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown setting(s) {', '.join(unknown)}; expected {', '.join(FIELDS)}",
                           field=unknown[0])
    if isinstance(agency_id, bool) or not isinstance(agency_id, int) or not 1 <= agency_id <= MAX_ID:
        raise invalid("agency_id", f"expected a whole number from 1 to {MAX_ID}, got {agency_id!r}")
    get_agency(session, agency_id)
    # Lock the agency row: two concurrent creations for one agency queue here, and the
    # second sees the first's programme.
    session.execute(select(Agency.id).where(Agency.id == agency_id).with_for_update())
    existing = active_programme_id(session, agency_id)
    if existing is not None:
        raise Conflict(f"agency {agency_id} already has an active programme ({existing}); "
                       "deactivate it first", field="agency_id")
    timezone = settings.get("timezone", "Asia/Ho_Chi_Minh")
    config = {
        "name": name, "questionnaire": questionnaire, "share_mode": "seed003", "share": None,
        "expected_response": 0.5, "seed": 0, "delay_minutes": 120, "recent_days": 90, "period": "quarter",
        "timezone": timezone, "window": None, "ends_on": None, "public_host": default_host, "link_days": 7,
        "reminder_hours": 72, "max_segments": 1, "sender": None, "template": DEFAULT_TEMPLATE,
        "reminder_template": None, "channel_plan": None,
    }
    config.update({k: v for k, v in settings.items() if k != "public_host" or v is not None})
    validated = _validated(registry, config, accented=accented, today=_local_date(now, config["timezone"]),
                           changed=set(config))
    programme = Programme(agency_id=agency_id, active=True, created_at=now,
                          routing=messaging_accounts.check_routing(session, agency_id, routing),
                          **{_COLUMNS.get(k, k): v for k, v in validated.items()})
    session.add(programme)
    session.flush()
    if validated["reminder_hours"] is None:
        # The ORM reads None at insert as "not given" and applies the column default (72).
        programme.reminder_hours = None
        session.flush()
    return programme


def active_programme_id(session: Session, agency_id: int) -> int | None:
    return session.scalar(select(Programme.id).where(Programme.agency_id == agency_id,
                                                     Programme.active.is_(True)).limit(1))


def get_programme(session: Session, programme_id: int, lock: bool = False) -> Programme:
    found = session.get(Programme, programme_id, with_for_update=lock) if 1 <= programme_id <= MAX_ID else None
    if found is None:
        raise NotFound(f"programme {programme_id} not found")
    return found


def list_programmes(session: Session, within: set[int] | None = None) -> list[Programme]:
    """Every programme, or those of the agencies in ``within``."""
    query = select(Programme).order_by(Programme.id)
    return list(session.scalars(query if within is None else query.where(Programme.agency_id.in_(within))))


def programme_config(programme: Programme) -> dict[str, Any]:
    return {key: getattr(programme, _COLUMNS.get(key, key)) for key in FIELDS}


def configure_programme(session: Session, registry: QuestionnaireRegistry, programme_id: int,
                        changes: dict[str, Any], now: datetime, accented: bool = False) -> Programme:
    """Change an active programme's settings. The message settings apply to the next
    message; questionnaire, window and channel plan are copied into each period's campaign
    (the window and plan also into the running ones); period and time zone are fixed once
    a period has begun; ``routing`` applies to the next message."""
    changes = dict(changes)
    routing_given, routing = "routing" in changes, changes.pop("routing", None)
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown setting(s) {', '.join(unknown)}; expected {', '.join(FIELDS)}",
                           field=unknown[0])
    programme = get_programme(session, programme_id, lock=True)
    if not programme.active:
        raise Conflict(f"programme {programme_id} is deactivated; create a new one")
    current = programme_config(programme)
    changed = {k: v for k, v in changes.items() if v != current[k]}
    if accented and ("template" in changes or "reminder_template" in changes):
        changed.update({k: changes[k] for k in ("template", "reminder_template") if k in changes})
    if changed.keys() & _FIXED_ONCE_RUNNING and _has_periods(session, programme_id):
        key = sorted(changed.keys() & _FIXED_ONCE_RUNNING)[0]
        raise Conflict(f"{key}: cannot change once a reporting period has begun; deactivate the programme and "
                       "create a new one", field=key)
    if "timezone" in changed and "window" not in changed:
        changed["window"] = {**current["window"], "timezone": changed["timezone"]}
    merged = {**current, **changed}
    # Templates not being set are checked as stored (a new host or segment limit must
    # still fit them), never rewritten.
    validated = _validated(registry, merged, accented=accented, today=_local_date(now, merged["timezone"]),
                           changed=set(changed))
    for key in changed:
        setattr(programme, _COLUMNS.get(key, key), validated[key])
    if routing_given:
        programme.routing = messaging_accounts.check_routing(session, programme.agency_id, routing)
    if changed.keys() & {"window", "channel_plan"}:
        for campaign in session.scalars(select(Campaign).where(
                Campaign.programme_id == programme_id,
                Campaign.status.in_([CampaignStatus.RUNNING, CampaignStatus.PAUSED]))):
            campaign.window = programme.window
            campaign.channel_plan = programme.channel_plan
    return programme


def deactivate_programme(session: Session, programme_id: int) -> Programme:
    """No more invitations from this programme; its period campaigns finish with the
    contacts they have (they may close before their period ends)."""
    programme = get_programme(session, programme_id, lock=True)
    if not programme.active:
        raise Conflict(f"programme {programme_id} is already deactivated")
    programme.active = False
    return programme


def _has_periods(session: Session, programme_id: int) -> bool:
    return session.scalar(select(Campaign.id).where(Campaign.programme_id == programme_id).limit(1)) is not None


def _local_date(now: datetime, timezone: Any) -> date:
    try:
        return now.astimezone(ZoneInfo(timezone)).date()
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return now.astimezone(UTC).date()     # the zone itself is refused by _validated


def _whole(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(field, f"expected a whole number from {low} to {high}, got {value!r}")
    return value


def _fraction(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise invalid(field, f"expected more than 0 and at most 1, got {value!r}")
    return float(value)


def public_host(value: Any) -> str:
    """An https URL (http only for a loopback host, for development), without a trailing
    slash, query or fragment."""
    if not isinstance(value, str) or not value.strip():
        raise invalid("public_host", f"expected an https URL such as https://khaosat.example.gov.vn, got {value!r}")
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise invalid("public_host", f"expected an https URL such as https://khaosat.example.gov.vn, got {value!r}")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise invalid("public_host", f"must use https (http only for {', '.join(LOOPBACK)}), got {value!r}")
    if len(value) > 200:
        raise invalid("public_host", f"at most 200 characters, got {len(value)}")
    return value


def _template(field: str, value: Any, accented: bool, host: str, max_segments: int) -> str:
    if not isinstance(value, str):
        raise invalid(field, f"expected text, got {value!r}")
    text = messages.nfc(value) if accented else messages.unaccent(value)
    try:
        messages.check_template(text, link_length(host), max_segments)
    except ValueError as exc:
        raise invalid(field, str(exc)) from None
    return text


def _validated(registry: QuestionnaireRegistry, config: dict[str, Any], *, accented: bool, today: date,
               changed: set[str]) -> dict[str, Any]:
    """Check a whole programme configuration; returns it normalised. ``changed``: the keys
    being set now (an end date in the past is refused only when it is being set; templates
    are rewritten, unaccented, only when set)."""
    config = dict(config)
    try:
        config["name"] = check_name(config["name"], NAME_MAX)
    except ValueError as exc:
        raise invalid("name", str(exc)) from None
    key = config["questionnaire"]
    if key not in registry.keys():
        raise invalid("questionnaire", f"unknown key {key!r}; available: {', '.join(registry.keys())}")
    if not any("web" in item.channels for item in registry.get(key).items):
        raise invalid("questionnaire", f"{key!r} asks nothing on the web channel; choose a questionnaire "
                                       "with web items")
    mode = config["share_mode"]
    if mode not in SHARE_MODES:
        raise invalid("share_mode", f"expected one of {', '.join(SHARE_MODES)}, got {mode!r}")
    if mode == "fixed":
        config["share"] = _fraction("share", config["share"])
    elif config["share"] is not None:
        raise invalid("share", "only with share_mode fixed (seed003 takes the share from the agency's volume)")
    config["expected_response"] = _fraction("expected_response", config["expected_response"])
    _whole("seed", config["seed"], 0, MAX_SEED)
    _whole("delay_minutes", config["delay_minutes"], 0, MAX_DELAY_MINUTES)
    _whole("recent_days", config["recent_days"], 0, MAX_RECENT_DAYS)
    if config["period"] not in PERIODS:
        raise invalid("period", f"expected one of {', '.join(PERIODS)}, got {config['period']!r}")
    timezone = config["timezone"]
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise invalid("timezone", f"expected an IANA time zone such as Asia/Ho_Chi_Minh, got {timezone!r}") from None
    window = config["window"]
    if window is not None and not isinstance(window, dict):
        raise invalid("window", f"expected an object, got {window!r}")
    window = {**(window or message_window(timezone)), "timezone": timezone}
    try:
        config["window"] = CallingWindow.from_dict(window).to_dict()
    except ValueError as exc:
        raise InvalidInput(str(exc), field="window") from None
    ends_on = config["ends_on"]
    if ends_on is not None:
        if isinstance(ends_on, str):
            try:
                ends_on = date.fromisoformat(ends_on)
            except ValueError:
                raise invalid("ends_on", f"expected a date such as 2027-12-31, got {ends_on!r}") from None
        if not isinstance(ends_on, date) or isinstance(ends_on, datetime):
            raise invalid("ends_on", f"expected a date such as 2027-12-31, got {ends_on!r}")
        if "ends_on" in changed and ends_on < today:
            raise invalid("ends_on", f"must not be in the past (today is {today.isoformat()})")
        config["ends_on"] = ends_on
    config["public_host"] = host = public_host(config["public_host"])
    link_days = _whole("link_days", config["link_days"], 1, MAX_LINK_DAYS)
    if config["reminder_hours"] is not None:
        _whole("reminder_hours", config["reminder_hours"], 1, link_days * 24)
    max_segments = _whole("max_segments", config["max_segments"], 1, MAX_SEGMENTS)
    sender = config["sender"]
    if sender is not None:
        if not isinstance(sender, str) or not (_BRANDNAME.fullmatch(sender) or _E164.fullmatch(sender)):
            raise invalid("sender", "expected a brandname of at most 11 characters (A-Z a-z 0-9 space . -) "
                                    f"or an E.164 number such as +84912345678, got {sender!r}")
    for field in ("template", "reminder_template"):
        if config[field] is None:
            if field == "template":
                raise invalid("template", "required")
            continue
        if field in changed:
            config[field] = _template(field, config[field], accented, host, max_segments)
        else:
            _template(field, config[field], True, host, max_segments)
    plan = validate_channel_plan(config["channel_plan"] if config["channel_plan"] is not None else DEFAULT_PLAN)
    if not any(step["channel"] == "sms" for step in plan):
        raise invalid("channel_plan", "a post-transaction programme invites by SMS: the plan needs an sms step")
    check_sms_mode(registry, config["questionnaire"], plan)
    config["channel_plan"] = plan
    return config


# --- reporting periods ----------------------------------------------------------------------

def period_for(programme: Programme, returned_at: datetime) -> Period:
    return period_of(programme.period, returned_at.astimezone(ZoneInfo(programme.timezone)).date())


def period_campaign(session: Session, programme: Programme, returned_at: datetime, now: datetime) -> Campaign:
    """The campaign of the reporting period holding ``returned_at``, created if it is the
    period's first. Race-safe: the insert runs in a savepoint and a concurrent creator's
    row (unique programme and period start) is read back instead."""
    period = period_for(programme, returned_at)
    found = _period_row(session, programme.id, period.start)
    if found is not None:
        return found
    campaign = Campaign(
        agency_id=programme.agency_id, name=f"{programme.name} — {period.label}",
        questionnaire_key=programme.questionnaire_key, status=CampaignStatus.RUNNING,
        timezone=programme.timezone, language="vi", period_start=period.start, period_end=period.end,
        window=dict(programme.window or message_window(programme.timezone)), retry={}, calls_per_second=1.0,
        ends_at=period_end_instant(period.end, programme.timezone) + timedelta(days=programme.link_days + 1),
        channel_plan=list(programme.channel_plan or DEFAULT_PLAN), programme_id=programme.id,
        created_at=now, started_at=now)
    try:
        with session.begin_nested():
            session.add(campaign)
    except IntegrityError:
        found = _period_row(session, programme.id, period.start)
        if found is None:
            raise
        return found
    return campaign


def _period_row(session: Session, programme_id: int, start: date) -> Campaign | None:
    return session.scalar(select(Campaign).where(Campaign.programme_id == programme_id,
                                                 Campaign.period_start == start))


def period_campaigns(session: Session, programme_id: int) -> list[Campaign]:
    return list(session.scalars(select(Campaign).where(Campaign.programme_id == programme_id)
                                .order_by(Campaign.period_start)))


def period_summaries(session: Session, registry: QuestionnaireRegistry, programme_id: int,
                     now: datetime) -> list[dict[str, Any]]:
    """Each reporting period's campaign with its counts, AAPOR rates and service index."""
    programme = get_programme(session, programme_id)
    summaries = []
    for campaign in period_campaigns(session, programme_id):
        counted = progress(session, campaign.id, now)
        costs = message_reports.cost_summary(session, campaign_id=campaign.id, now=now)
        scores = results.campaign_scores(session, registry, campaign.id)
        assert campaign.period_start is not None
        summaries.append({
            "campaign_id": campaign.id, "name": campaign.name,
            "label": period_of(programme.period, campaign.period_start).label,
            "period_start": campaign.period_start, "period_end": campaign.period_end,
            "status": campaign.status.value, "contacts": counted.contacts, "by_status": counted.by_status,
            "by_disposition": counted.by_disposition, "rates": counted.rates,
            "n_respondents": scores.n_respondents, "service_index": scores.service_index,
            "weighted_service_index": scores.weighted_service_index,
            "delivery": message_reports.delivery_summary(session, campaign_id=campaign.id),
            "cost": costs["periods"][0]})
    return summaries
