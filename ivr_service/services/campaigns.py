"""Agencies and campaigns: create, configure, change state, report progress."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, case, cast, exists, func, literal, select
from sqlalchemy.orm import Session

from ..core import twoway
from ..core.dispositions import response_rates
from ..core.messages import DAILY_CAP
from ..core.names import check_code, check_name
from ..core.policy import CallingWindow, Outcome, RetryPolicy
from ..core.programmes import period_end_instant
from ..core.questionnaire import QuestionnaireRegistry
from ..core.sampling import SampleRule
from ..persistence import tallies
from ..persistence.models import (
    LIVE_ATTEMPT_STATUSES,
    Agency,
    Attempt,
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    JobRun,
    Programme,
)
from . import buckets
from .contacts import finish_contact, finish_with_answers
from .errors import Conflict, InvalidInput, NotFound, invalid


def create_agency(session: Session, code: str, name: str, now: datetime,
                  sample_rule: dict[str, Any] | None = None, parent_id: int | None = None,
                  retention_days: int | None = None) -> Agency:
    """``sample_rule``: the agency's sample-size rule (kind, n, margin); seed-002 tiers if None.
    ``parent_id``: the agency above it in the tree (province → department → commune).
    ``retention_days``: how long its closed campaigns keep personal data (None: the setting)."""
    if retention_days is not None and not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise invalid("retention_days", f"expected a whole number of days from 1 to {MAX_RETENTION_DAYS}, "
                                        f"got {retention_days}")
    code, name = code.strip(), name.strip()
    if not code or not name:
        raise InvalidInput("agency: code and name are required", field="name" if code else "code")
    code, name = _checked("code", check_code, code), _checked("name", check_name, name)
    if sample_rule is not None:
        unknown = set(sample_rule) - {"kind", "n", "margin"}
        if unknown:
            raise invalid("sample_rule", f"unknown key(s) {sorted(unknown)}; use kind, n, margin")
        try:
            SampleRule(kind=sample_rule.get("kind", "seed002"), n=sample_rule.get("n"),
                       margin=sample_rule.get("margin", 0.05))
        except (ValueError, TypeError) as exc:
            raise invalid("sample_rule", str(exc)) from None
    if session.scalar(select(Agency.id).where(Agency.code == code)) is not None:
        raise Conflict(f"agency: code {code!r} is already used", field="code")
    if parent_id is not None:
        get_agency(session, parent_id)
    agency = Agency(code=code, name=name, sample_rule=sample_rule, parent_id=parent_id,
                    retention_days=retention_days, created_at=now)
    session.add(agency)
    session.flush()
    return agency


# Ids are INTEGER columns: a larger number names nothing (and would overflow the driver).
MAX_ID = 2**31 - 1
MAX_RETENTION_DAYS = 3650   # as SIPAS_RETENTION_DAYS allows


def set_retention(session: Session, agency_id: int, retention_days: int | None) -> Agency:
    """Change how long an agency's closed campaigns keep personal data (None: the setting).
    The purge reads it at its next run; a campaign already purged stays purged."""
    if retention_days is not None and not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise invalid("retention_days", f"expected a whole number of days from 1 to {MAX_RETENTION_DAYS}, "
                                        f"got {retention_days}")
    agency = get_agency(session, agency_id)
    agency.retention_days = retention_days
    return agency


def get_agency(session: Session, agency_id: int) -> Agency:
    agency = session.get(Agency, agency_id) if 1 <= agency_id <= MAX_ID else None
    if agency is None:
        raise NotFound(f"agency {agency_id} not found")
    return agency


def list_agencies(session: Session, within: set[int] | None = None) -> list[Agency]:
    """Every agency, or those in ``within`` (the caller's part of the tree)."""
    query = select(Agency).order_by(Agency.id)
    return list(session.scalars(query if within is None else query.where(Agency.id.in_(within))))


def list_campaigns(session: Session, within: set[int] | None = None) -> list[Campaign]:
    """Every campaign, or those of the agencies in ``within``."""
    query = select(Campaign).order_by(Campaign.id)
    return list(session.scalars(query if within is None else query.where(Campaign.agency_id.in_(within))))


def get_campaign(session: Session, campaign_id: int, lock: bool = False) -> Campaign:
    campaign = session.get(Campaign, campaign_id, with_for_update=lock) if 1 <= campaign_id <= MAX_ID else None
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


# Campaign settings: what create_campaign takes besides agency and clock, and what
# configure_campaign may change.
CONFIG_FIELDS = ("name", "questionnaire", "timezone", "window", "retry", "calls_per_second", "language",
                 "resume_mode", "period_start", "period_end", "starts_at", "ends_at", "target_completes",
                 "channel_plan", "spread", "speech_input", "hotline")
_DRAFT_ONLY = frozenset({"questionnaire", "timezone"})     # answers and windows depend on them
_NOT_WHILE_RUNNING = frozenset({"starts_at"})              # pause first, or it would stop mid-run
_COLUMNS = {"questionnaire": "questionnaire_key"}


def create_campaign(session: Session, registry: QuestionnaireRegistry, *, agency_id: int, name: str,
                    questionnaire: str, now: datetime, timezone: str = "Asia/Ho_Chi_Minh",
                    window: dict[str, Any] | None = None, retry: dict[str, Any] | None = None,
                    calls_per_second: float = 1.0, language: str = "vi", resume_mode: str = "resume",
                    period_start: date | None = None, period_end: date | None = None,
                    starts_at: datetime | None = None, ends_at: datetime | None = None,
                    target_completes: int | None = None, channel_plan: list[dict[str, Any]] | None = None,
                    spread: bool = False, speech_input: bool = False, hotline: str | None = None) -> Campaign:
    if isinstance(agency_id, bool) or not isinstance(agency_id, int) or not 1 <= agency_id <= MAX_ID:
        raise invalid("agency_id", f"expected a whole number from 1 to {MAX_ID}, got {agency_id!r}")
    get_agency(session, agency_id)
    config = _validated(registry, {
        "name": name, "questionnaire": questionnaire, "timezone": timezone, "window": window, "retry": retry,
        "calls_per_second": calls_per_second, "language": language, "resume_mode": resume_mode,
        "period_start": period_start, "period_end": period_end, "starts_at": starts_at, "ends_at": ends_at,
        "target_completes": target_completes, "channel_plan": channel_plan, "spread": spread,
        "speech_input": speech_input, "hotline": hotline})
    campaign = Campaign(agency_id=agency_id, created_at=now,
                        **{_COLUMNS.get(k, k): v for k, v in config.items()})
    session.add(campaign)
    session.flush()
    return campaign


def campaign_config(campaign: Campaign) -> dict[str, Any]:
    config = {key: getattr(campaign, _COLUMNS.get(key, key)) for key in CONFIG_FIELDS}
    config["channel_plan"] = config["channel_plan"] or None   # stored [] = no plan: voice by the retry policy
    return config


def configure_campaign(session: Session, registry: QuestionnaireRegistry, campaign_id: int,
                       changes: dict[str, Any]) -> Campaign:
    """Change a campaign's settings. A running campaign takes new windows, retries, pacing,
    end date, target and plan at its next dispatch round; the questionnaire and time zone
    change only in draft; a finished campaign changes no more."""
    unknown = sorted(set(changes) - set(CONFIG_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown setting(s) {', '.join(unknown)}; expected {', '.join(CONFIG_FIELDS)}",
                           field=unknown[0])
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
        raise Conflict(f"cannot configure campaign {campaign_id}: it is {campaign.status.value}")
    current = campaign_config(campaign)
    changed = {k: v for k, v in changes.items() if v != current[k]}
    for key in changed:
        if key in _DRAFT_ONLY and campaign.status is not CampaignStatus.DRAFT:
            raise Conflict(f"{key}: can change only while the campaign is a draft; it is {campaign.status.value}",
                           field=key)
        if key in _NOT_WHILE_RUNNING and campaign.status is CampaignStatus.RUNNING:
            raise Conflict(f"{key}: pause the campaign first; it is running", field=key)
    if "timezone" in changed and "window" not in changed:
        changed["window"] = {**current["window"], "timezone": changed["timezone"]}
    config = _validated(registry, {**current, **changed}, new_name="name" in changed)
    for key in changed:
        setattr(campaign, _COLUMNS.get(key, key), config[key])
    return campaign


def _checked(field: str, check: Callable[[object], str], value: object) -> str:
    """``check(value)`` (``core.names``), its ValueError as ``invalid(field, …)``."""
    try:
        return check(value)
    except ValueError as exc:
        raise invalid(field, str(exc)) from None


def _validated(registry: QuestionnaireRegistry, config: dict[str, Any], new_name: bool = True) -> dict[str, Any]:
    """Check a whole campaign configuration; returns it normalised (name stripped and
    composed, the window carrying the time zone, the channel plan in its stored form).
    ``new_name`` False leaves a stored name as it is (one stored before names were checked
    does not block other changes)."""
    config = dict(config)
    if new_name:
        config["name"] = _checked("name", check_name, config["name"])
    questionnaire = config["questionnaire"]
    if questionnaire not in registry.keys():
        raise invalid("questionnaire", f"unknown key {questionnaire!r}; available: {', '.join(registry.keys())}")
    registry.get(questionnaire)  # fails here, not mid-call, if the file is broken
    for key in ("window", "retry"):
        if config[key] is not None and not isinstance(config[key], dict):
            raise invalid(key, f"expected an object, got {config[key]!r}")
    config["window"] = {**(config["window"] or {}), "timezone": config["timezone"]}
    config["retry"] = config["retry"] or {}
    for key, parse in (("window", CallingWindow.from_dict), ("retry", RetryPolicy.from_dict)):
        try:
            parse(config[key])
        except ValueError as exc:
            raise InvalidInput(str(exc), field=key) from None
    rate = config["calls_per_second"]
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1000:
        raise invalid("calls_per_second", f"expected more than 0 and at most 1000, got {rate!r}")
    if config["language"] not in ("vi", "en"):
        raise invalid("language", f"expected vi or en, got {config['language']!r}")
    if config["resume_mode"] not in ("resume", "restart"):
        raise invalid("resume_mode", f"expected resume or restart, got {config['resume_mode']!r}")
    starts_at, ends_at = config["starts_at"], config["ends_at"]
    for label, moment in (("starts_at", starts_at), ("ends_at", ends_at)):
        if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
            shown = moment.isoformat() if isinstance(moment, datetime) else repr(moment)
            raise invalid(label, f"expected a date-time with a time zone, got {shown}")
        if moment is not None:
            try:
                moment.astimezone(UTC)   # how it is stored; 9999-12-31T23:00-01:00 has no UTC form
            except OverflowError:
                raise invalid(label, f"expected a date-time between the years 1 and 9999 in UTC, "
                                     f"got {moment.isoformat()}") from None
    if starts_at and ends_at and not starts_at < ends_at:
        raise invalid("ends_at", "must be after starts_at")
    period_start, period_end = config["period_start"], config["period_end"]
    if period_start and period_end and period_end < period_start:
        raise invalid("period_end", "must not be before period_start")
    target = config["target_completes"]
    if target is not None and (isinstance(target, bool) or not isinstance(target, int)
                               or not 1 <= target <= 10_000_000):
        raise invalid("target_completes", f"expected a positive whole number, got {target!r}")
    if not isinstance(config["spread"], bool):
        raise invalid("spread", f"expected true or false, got {config['spread']!r}")
    if not isinstance(config["speech_input"], bool):
        raise invalid("speech_input", f"expected true or false, got {config['speech_input']!r}")
    config["hotline"] = check_hotline(config["hotline"])
    if config["spread"] and ends_at is None:
        raise invalid("spread", "needs ends_at (attempts are spread over the open days left)")
    plan = config["channel_plan"]
    config["channel_plan"] = validate_channel_plan(plan) if plan is not None else []
    check_sms_mode(registry, config["questionnaire"], config["channel_plan"])
    return config


HOTLINE = re.compile(r"\+?[0-9]+(?:[ .-][0-9]+)*")


def check_hotline(value: Any) -> str | None:
    """A line citizens can call, as it is written ("1022", "0261 3822 123"); said digit
    by digit at the end of a call. Empty means none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or not HOTLINE.fullmatch(value.strip()) \
            or not 3 <= sum(c.isdigit() for c in value) <= 15 or len(value.strip()) > 20:
        raise invalid("hotline", f"expected a phone number of 3 to 15 digits such as 1022 or 0261 3822 123, "
                                 f"got {value!r}")
    return value.strip()


# The channels a campaign's plan may name (not the channels a questionnaire item is asked
# on: that is ``core.questionnaire.CHANNELS``).
PLAN_CHANNELS = ("voice", "sms")


def validate_channel_plan(plan: Any) -> list[dict[str, Any]]:
    """``[{"channel": "voice", "max_attempts": 3}, {"channel": "sms", "max_attempts": 1}]``:
    the channels in the order they are tried, each at most once."""
    if not isinstance(plan, list) or not plan:
        raise invalid("channel_plan", 'expected a non-empty list of steps such as '
                                      '[{"channel": "voice", "max_attempts": 3}]')
    steps, seen = [], set()
    for number, step in enumerate(plan, start=1):
        if not isinstance(step, dict) or set(step) - {"channel", "max_attempts", "mode", "session_hours"}:
            raise _step_error(number, f"expected keys channel and max_attempts (and for sms mode, "
                                      f"session_hours), got {step!r}")
        channel, attempts = step.get("channel"), step.get("max_attempts", 1)
        if channel not in PLAN_CHANNELS:
            raise _step_error(number, f"channel must be one of {', '.join(PLAN_CHANNELS)}, "
                                f"got {channel!r}")
        if channel in seen:
            raise _step_error(number, f"channel {channel!r} appears twice")
        if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 20:
            raise _step_error(number, f"max_attempts must be 1 to 20, got {attempts!r}")
        seen.add(channel)
        steps.append({"channel": channel, "max_attempts": attempts, **_sms_mode(number, channel, step)})
    return steps


def _sms_mode(number: int, channel: str, step: dict[str, Any]) -> dict[str, Any]:
    """An sms step's ``mode``: "link" (an invitation with a link to the web form, the
    default) or "two_way" (questions answered by reply, see core.twoway), whose session
    lasts ``session_hours``. Stored only when not the default."""
    if channel != "sms":
        if set(step) & {"mode", "session_hours"}:
            raise _step_error(number, "mode and session_hours belong to the sms step")
        return {}
    mode = step.get("mode", twoway.LINK)
    if mode not in twoway.MODES:
        raise _step_error(number, f"mode must be one of {', '.join(twoway.MODES)}, got {mode!r}")
    hours = step.get("session_hours")
    if hours is not None and (mode != twoway.TWO_WAY or not isinstance(hours, int) or isinstance(hours, bool)
                              or not 1 <= hours <= twoway.MAX_SESSION_HOURS):
        raise _step_error(number, f"session_hours (two_way mode only) must be 1 to "
                                  f"{twoway.MAX_SESSION_HOURS}, got {hours!r}")
    if mode == twoway.LINK:
        return {}
    return {"mode": mode, "session_hours": hours or twoway.DEFAULT_SESSION_HOURS}


def check_sms_mode(registry: QuestionnaireRegistry, questionnaire: str, plan: list[dict[str, Any]]) -> None:
    """A two-way plan must fit its questionnaire in the 24 h message cap (core.twoway)."""
    if twoway.sms_mode(plan).two_way:
        try:
            twoway.check_capacity(registry.get(questionnaire), DAILY_CAP)
        except ValueError as exc:
            raise invalid("channel_plan", str(exc)) from None


def _step_error(number: int, detail: str) -> InvalidInput:
    return InvalidInput(f"channel_plan step {number}: {detail}", field="channel_plan")


_TRANSITIONS = {
    "start": ({CampaignStatus.DRAFT}, CampaignStatus.RUNNING),
    "pause": ({CampaignStatus.RUNNING, CampaignStatus.SCHEDULED}, CampaignStatus.PAUSED),
    "resume": ({CampaignStatus.PAUSED}, CampaignStatus.RUNNING),
    "cancel": ({CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED},
               CampaignStatus.CANCELLED),
}


def possible_actions(status: CampaignStatus) -> tuple[str, ...]:
    """The actions of :func:`transition` a campaign in ``status`` allows, in their order."""
    return tuple(action for action, (allowed, _) in _TRANSITIONS.items() if status in allowed)


def transition(session: Session, campaign_id: int, action: str, now: datetime,
               registry: QuestionnaireRegistry | None = None) -> Campaign:
    """Change a campaign's state. Cancelling closes it: waiting contacts get their final
    disposition (pass ``registry`` so partial interviews are classified by their answers);
    calls in progress finish and their contacts are closed when they end."""
    if action not in _TRANSITIONS:
        raise invalid("action", f"expected one of {', '.join(_TRANSITIONS)}, got {action!r}")
    campaign = get_campaign(session, campaign_id, lock=True)
    allowed, target = _TRANSITIONS[action]
    if campaign.status not in allowed:
        raise Conflict(f"cannot {action} campaign {campaign_id}: it is {campaign.status.value}")
    if action == "start":
        contacts = session.scalar(select(func.count()).select_from(Contact).where(Contact.campaign_id == campaign.id))
        if not contacts:
            raise Conflict(f"cannot start campaign {campaign_id}: it has no sampled contacts yet")
        campaign.started_at = now
        if campaign.starts_at is not None and campaign.starts_at > now:
            target = CampaignStatus.SCHEDULED
    if action == "resume" and campaign.starts_at is not None and campaign.starts_at > now:
        target = CampaignStatus.SCHEDULED
    if target is CampaignStatus.CANCELLED:
        close(session, campaign, now, CampaignStatus.CANCELLED, registry)
        return campaign
    campaign.status = target
    return campaign


@dataclass(frozen=True)
class Advanced:
    """What :func:`advance` did: campaigns started on schedule, campaigns closed."""

    started: list[int]
    closed: list[int]


def advance(session: Session, now: datetime, registry: QuestionnaireRegistry | None = None) -> Advanced:
    """Move every campaign along its lifecycle: start scheduled campaigns whose start has
    come, close running or paused ones that are done (every contact final, target reached,
    or past their end). Campaigns another worker holds are left for the next round."""
    started, closed = [], []
    for campaign in session.scalars(select(Campaign).where(Campaign.status == CampaignStatus.SCHEDULED)
                                    .with_for_update(skip_locked=True)):
        if campaign.starts_at is None or campaign.starts_at <= now:
            campaign.status = CampaignStatus.RUNNING
            started.append(campaign.id)
    for campaign in session.scalars(select(Campaign).where(Campaign.status.in_(
            [CampaignStatus.RUNNING, CampaignStatus.PAUSED])).with_for_update(skip_locked=True)):
        if close_if_done(session, campaign, now, registry):
            closed.append(campaign.id)
    return Advanced(started, closed)


def all_settled(session: Session, now: datetime) -> bool:
    """Nothing is left to do now (``serve --exit-when-done``): no campaign is running,
    every completed one has its final export, and the reporting periods of post-transaction
    programmes (which run until their period ends) have no contact due and no invitation
    waiting to be sent; their open links wait for citizens."""
    busy = session.scalar(select(func.count()).select_from(Campaign).where(
        ((Campaign.status == CampaignStatus.RUNNING) & Campaign.programme_id.is_(None))
        | _final_export_owed()))
    if busy:
        return False
    periods = select(Campaign.id).where(Campaign.status == CampaignStatus.RUNNING, Campaign.programme_id.is_not(None))
    due = session.scalar(select(func.count()).select_from(Contact).where(
        Contact.campaign_id.in_(periods), Contact.status == ContactStatus.PENDING, Contact.next_attempt_at <= now))
    unsent = session.scalar(select(func.count()).select_from(Attempt).where(
        Attempt.campaign_id.in_(periods), Attempt.status == AttemptStatus.QUEUED))
    return not due and not unsent


# A job_runs row named so marks a campaign whose final export was written and later removed
# by SIPAS_EXPORT_RETENTION_DAYS (services.export_retention): it is not written again.
EXPORT_REMOVED = "export-removed"


def export_removed_period(campaign_id: int) -> str:
    return f"campaign-{campaign_id}"


def _final_export_owed() -> ColumnElement[bool]:
    removed = select(JobRun.period).where(
        JobRun.name == EXPORT_REMOVED, JobRun.period == literal("campaign-") + cast(Campaign.id, String))
    return (Campaign.status == CampaignStatus.COMPLETED) & Campaign.export_path.is_(None) & ~exists(removed)


def unexported(session: Session) -> list[int]:
    """Completed campaigns without their final export yet."""
    return list(session.scalars(select(Campaign.id).where(_final_export_owed()).order_by(Campaign.id)))


def latest_exported(session: Session) -> Campaign | None:
    return session.scalars(select(Campaign).where(Campaign.export_path.is_not(None))
                           .order_by(Campaign.id.desc()).limit(1)).first()


def completes(session: Session, campaign_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Contact).where(
        Contact.campaign_id == campaign_id, Contact.disposition == "1.1")) or 0


def close_if_done(session: Session, campaign: Campaign, now: datetime,
                  registry: QuestionnaireRegistry | None = None) -> bool:
    """Complete a running or paused campaign when every contact is final, or when its
    target of completes is reached or its end has passed; then every contact still waiting
    gets its final disposition and the response rates are recorded."""
    if campaign.status not in (CampaignStatus.RUNNING, CampaignStatus.PAUSED):
        return False
    if _period_open(session, campaign, now):
        return False
    counts = dict(session.execute(select(Contact.status, func.count()).where(
        Contact.campaign_id == campaign.id, Contact.status.in_([ContactStatus.PENDING, ContactStatus.ACTIVE]))
        .group_by(Contact.status)).all())
    pending, active = counts.get(ContactStatus.PENDING, 0), counts.get(ContactStatus.ACTIVE, 0)
    if pending or active:
        if campaign.status is CampaignStatus.PAUSED:
            return False
        ended = campaign.ends_at is not None and now >= campaign.ends_at
        reached = campaign.target_completes is not None and completes(session, campaign.id) >= campaign.target_completes
        if not (ended or reached):
            return False
        if active:
            return False  # calls in progress finish first; nothing new is dialled meanwhile
    close(session, campaign, now, CampaignStatus.COMPLETED, registry)
    return True


def _period_open(session: Session, campaign: Campaign, now: datetime) -> bool:
    """A reporting period of an active programme takes transactions until the period has
    ended (local midnight after ``period_end``): it stays open even with every contact done."""
    if campaign.programme_id is None or campaign.period_end is None:
        return False
    active = session.scalar(select(Programme.active).where(Programme.id == campaign.programme_id))
    return bool(active) and now < period_end_instant(campaign.period_end, campaign.timezone)


def close(session: Session, campaign: Campaign, now: datetime, status: CampaignStatus,
          registry: QuestionnaireRegistry | None = None) -> None:
    """Give every waiting contact its final disposition (by its last attempt and any
    answers), record the AAPOR rates and set ``status``."""
    q = registry.get(campaign.questionnaire_key) if registry is not None else None
    waiting = session.scalars(select(Contact).where(Contact.campaign_id == campaign.id,
                                                    Contact.status == ContactStatus.PENDING)).all()
    last = dict(session.execute(
        select(Attempt.contact_id, Attempt.outcome).where(Attempt.campaign_id == campaign.id)
        .order_by(Attempt.id)).all()) if waiting else {}
    for contact in waiting:
        previous = last.get(contact.id)
        outcome = Outcome(previous) if previous else None
        if q is not None:
            finish_with_answers(session, q, contact, outcome, now)
        else:
            finish_contact(session, contact, outcome, now)
    codes = session.scalars(select(Contact.disposition).where(
        Contact.campaign_id == campaign.id, Contact.disposition.is_not(None))).all()
    rates = response_rates([code for code in codes if code is not None])
    campaign.rates = {"counts": dict(rates.counts), "e": rates.e, "values": dict(rates.values)}
    campaign.status = status
    campaign.completed_at = now


@dataclass(frozen=True)
class Progress:
    campaign_id: int
    status: str
    contacts: int
    by_status: dict[str, int]
    by_disposition: dict[str, int]
    attempts: int
    attempts_by_status: dict[str, int]
    attempts_last_hour: int
    # The last 24 hours by the campaign's local clock hour, oldest first; the last entry is
    # the current (unfinished) hour: [{"hour": "2026-11-17T09:00:00+07:00", "attempts": 12}, …]
    attempts_per_hour: list[dict[str, Any]]
    calls_in_progress: int
    rates: dict[str, float | None]


def hour_starts(now: datetime, tz: str, hours: int = 24) -> list[datetime]:
    """The starts (UTC) of the last ``hours`` local clock hours, oldest first, the last one
    holding ``now``. Hours are counted on the UTC timeline, so a daylight-saving change
    gives 24 distinct hours, labelled by their local wall time."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    # Truncate in local time: zones with half-hour offsets start their hours at :30 UTC.
    current = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    return [current - timedelta(hours=h) for h in range(hours - 1, -1, -1)]


def closed_counts(session: Session, column: Any, where: tuple[Any, ...], starts: list[datetime]) -> list[int]:
    """Rows per period ``[starts[i], starts[i + 1])`` of ``column`` for every period but the
    last: one index range, bucketed by a CASE over the periods' starts (the same SQL on
    PostgreSQL and SQLite, and periods that follow a campaign's zone)."""
    if len(starts) < 2:
        return []
    bucket = case(*[(column >= start, i) for i, start in reversed(list(enumerate(starts[:-1])))], else_=-1)
    counted: dict[int, int] = dict(session.execute(
        select(bucket, func.count()).where(*where, column >= starts[0], column < starts[-1]).group_by(bucket)).all())
    return [counted.get(i, 0) for i in range(len(starts) - 1)]


def progress(session: Session, campaign_id: int, now: datetime, closed: buckets.Closed | None = None) -> Progress:
    """Counts for the dashboard, API and CLI. Statuses and dispositions come from the
    trigger-kept tallies (a few rows, whatever the campaign's size); the hourly series is an
    index range scan over the last 24 hours (``scripts/bench/progress_query.py``), of the
    current hour only when ``closed`` keeps the hours before it (a page that polls)."""
    campaign = get_campaign(session, campaign_id)
    counted = tallies.tallies(session, campaign_id)
    by_status: dict[str, int] = {s.value: 0 for s in ContactStatus}
    by_disposition: dict[str, int] = {}
    for key, count in counted["contact"].items():
        status, _, disposition = key.partition(":")
        by_status[status] = by_status.get(status, 0) + count
        if disposition:
            by_disposition[disposition] = by_disposition.get(disposition, 0) + count
    attempts_by_status = {s.value: 0 for s in AttemptStatus}
    attempts_by_status.update(counted["attempt"])
    starts = hour_starts(now, campaign.timezone)
    of_campaign = (Attempt.campaign_id == campaign_id,)
    def per_period(periods: list[datetime]) -> list[int]:
        return closed_counts(session, Attempt.created_at, of_campaign, periods)

    earlier = closed.counts(("attempts_per_hour", campaign_id, campaign.timezone), starts, per_period) \
        if closed is not None else per_period(starts)
    hour_ago = now - timedelta(hours=1)
    current, last_hour = session.execute(
        select(func.sum(case((Attempt.created_at >= starts[-1], 1), else_=0)),
               func.sum(case((Attempt.created_at >= hour_ago, 1), else_=0)))
        .where(*of_campaign, Attempt.created_at >= min(starts[-1], hour_ago))).one()
    per_hour = [*earlier, int(current or 0)]
    zone = ZoneInfo(campaign.timezone)
    rates = response_rates(by_disposition).values if by_disposition else {}
    return Progress(
        campaign_id=campaign_id, status=campaign.status.value,
        contacts=sum(by_status.values()), by_status=by_status,
        by_disposition=dict(sorted(by_disposition.items())),
        attempts=sum(attempts_by_status.values()), attempts_by_status=attempts_by_status,
        attempts_last_hour=int(last_hour or 0),
        attempts_per_hour=[{"hour": start.astimezone(zone).isoformat(), "attempts": per_hour[i]}
                           for i, start in enumerate(starts)],
        calls_in_progress=sum(attempts_by_status[s.value] for s in LIVE_ATTEMPT_STATUSES),
        rates=dict(rates),
    )
