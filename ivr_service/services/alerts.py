"""Alerts: tell a unit's leaders, by mail and webhook, when citizens are dissatisfied.

One round (:func:`check`, the worker's ``alerts`` job, every minute):

1. **Count.** The period is the local calendar period (``SIPAS_ALERT_PERIOD``) holding
   ``now`` in ``SIPAS_TIMEZONE``. For every agency (``Campaign.agency_id``) with sampled
   interviews that ended in it, the answers of all its campaigns' complete and partial
   interviews are scored item by item (``results.respondents`` with a ``ScoreFilter`` on
   the period: the latest answer per item, as the scores count them). QR self-selected
   forms live in another table and never count. A unit whose campaigns use two
   questionnaires is counted per questionnaire; the first to cross on a criterion takes
   that (unit, criterion, period).
2. **Record.** Each criterion that crosses (``core.alerts.crossings``) is inserted into
   ``alerts`` with ``ON CONFLICT DO NOTHING`` on (agency, item, period): of all the
   workers doing the same sum, exactly one inserts the row, and only that one sends it.
   The inserter claims its first delivery in the same statement (``attempts`` = 1).
3. **Deliver**, after the commit: the mail to ``SIPAS_ALERT_EMAILS`` and the JSON POST to
   ``SIPAS_ALERT_WEBHOOK_URL``, each recorded as sent (``*_sent_at``) or failed
   (``*_error``) in its own transaction. A failed channel is retried on later rounds, at
   most :data:`MAX_ATTEMPTS` deliveries in all, each claimed by a compare-and-set on
   ``attempts`` so two workers never retry the same alert at once; a channel once sent is
   never sent again. A worker killed between claim and record leaves the claim to expire
   (``next_attempt_at``) and the channel is tried again: the mail's Message-ID and the
   webhook's ``X-SIPAS-Alert-Id`` stay the same so a receiver can drop the repeat.

No recipient configured: alerts are still recorded and shown in the console, nothing is
sent. Alerts carry no phone number or name; the logs only their ids.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session, selectinload

from ..core import alerts as rules
from ..core.programmes import Period, period_of
from ..core.questionnaire import QuestionnaireError, QuestionnaireRegistry
from ..core.scoring import SMALL_CELL, Respondent
from ..persistence.db import Database, dialect_insert
from ..persistence.models import Alert, Campaign, Interview
from ..providers.notify import DeliveryFailed, Mail, Notifier
from ..settings import Settings
from .campaigns import MAX_ID
from .errors import NotFound
from .results import COUNTED, ScoreFilter, respondents

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_DELAY = timedelta(minutes=1)          # times the attempt number: 1, 2, 3, 4 minutes
# Alerts older than this are not sent any more (e.g. recipients configured weeks later).
MAX_AGE = timedelta(days=1)


@dataclass(frozen=True)
class AlertConfig:
    period: str = "month"
    timezone: str = "Asia/Ho_Chi_Minh"
    min_answers: int = SMALL_CELL
    emails: tuple[str, ...] = ()
    webhook_url: str | None = None
    webhook_secret: str | None = None
    console_url: str = "http://127.0.0.1:5000"      # SIPAS_PUBLIC_BASE_URL

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertConfig:
        return cls(settings.alert_period, settings.timezone, settings.alert_min_answers, settings.alert_emails,
                   settings.alert_webhook_url, settings.alert_webhook_secret, settings.public_base_url)

    @property
    def sends(self) -> bool:
        return bool(self.emails or self.webhook_url)

    def link(self, alert_id: int) -> str:
        return f"{self.console_url.rstrip('/')}/alerts/{alert_id}"


@dataclass
class Round:
    """What one round did: the alerts it recorded, and the deliveries it made."""

    created: list[int] = field(default_factory=list)
    sent: int = 0
    failed: int = 0


def current_period(config: AlertConfig, now: datetime) -> Period:
    return period_of(config.period, now.astimezone(ZoneInfo(config.timezone)).date())


def check(db: Database, registry: QuestionnaireRegistry, now: datetime, config: AlertConfig,
          notifier: Notifier) -> Round:
    """One round: record the alerts the current period calls for, then deliver the owed ones."""
    result = Round(created=record(db, registry, now, config))
    if config.sends:
        for alert_id in result.created:             # claimed by their insert
            _deliver(db, registry, alert_id, now, config, notifier, result)
    for alert_id in _claim_due(db, now, config):
        _deliver(db, registry, alert_id, now, config, notifier, result)
    return result


def record(db: Database, registry: QuestionnaireRegistry, now: datetime, config: AlertConfig) -> list[int]:
    """Insert the alerts of the current period not yet recorded; returns the ids this call
    inserted (a concurrent worker's inserts are not among them)."""
    period = current_period(config, now)
    filters = ScoreFilter(ended_from=period.start, ended_to=period.end)
    created: list[int] = []
    with db.begin() as session:
        groups = _units(session, filters, config.timezone)
    for (agency_id, key), campaign_ids in sorted(groups.items()):
        try:
            q = registry.get(key)
        except QuestionnaireError as exc:     # one unit's broken file must not stop the others' alerts
            log.error("alerts: agency %s: %s", agency_id, exc)
            continue
        with db.begin() as session:
            done = set(session.scalars(select(Alert.item_id).where(Alert.agency_id == agency_id,
                                                                   Alert.period == period.label)))
            if {item.id for item in q.rated_items} <= done:
                continue
            people: list[Respondent] = [p.respondent for campaign_id in campaign_ids
                                        for p in respondents(session, q, campaign_id, filters, config.timezone)]
            for score in rules.crossings(rules.item_scores(q, people), config.min_answers):
                if score.item_id in done:
                    continue
                inserted = _insert(session, agency_id, key, period.label, score.item_id, score.n,
                                   score.n_dissatisfied, now, config)
                if inserted is not None:
                    created.append(inserted)
                    log.info("alert %s: agency %s, %s, %s: %d of %d dissatisfied", inserted, agency_id,
                             score.item_id, period.label, score.n_dissatisfied, score.n)
    return created


def _units(session: Session, filters: ScoreFilter, zone: str) -> dict[tuple[int, str], list[int]]:
    """(agency, questionnaire) → the campaigns with counted interviews in the period."""
    query = (select(Campaign.agency_id, Campaign.questionnaire_key, Campaign.id)
             .join(Interview, Interview.campaign_id == Campaign.id)
             .where(Interview.status.in_(COUNTED)).distinct())
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for agency_id, key, campaign_id in session.execute(filters.apply(query, zone)):
        groups[(agency_id, key)].append(campaign_id)
    return {unit: sorted(ids) for unit, ids in groups.items()}


def _insert(session: Session, agency_id: int, key: str, period: str, item_id: str, n: int, dissatisfied: int,
            now: datetime, config: AlertConfig) -> int | None:
    table = Alert.__table__
    claimed = 1 if config.sends else 0
    statement = (dialect_insert(session)(table)
                 .values(agency_id=agency_id, item_id=item_id, period=period, questionnaire_key=key, n=n,
                         n_dissatisfied=dissatisfied, share=dissatisfied / n, created_at=now, attempts=claimed,
                         next_attempt_at=now + RETRY_DELAY if claimed else now)
                 .on_conflict_do_nothing(index_elements=[table.c.agency_id, table.c.item_id, table.c.period])
                 .returning(table.c.id))
    return session.scalar(statement)


def _owed(config: AlertConfig) -> list[ColumnElement[bool]]:
    """The conditions of an alert that still owes a configured channel."""
    owed: list[ColumnElement[bool]] = []
    if config.emails:
        owed.append(Alert.email_sent_at.is_(None))
    if config.webhook_url:
        owed.append(Alert.webhook_sent_at.is_(None))
    return owed


def _claim_due(db: Database, now: datetime, config: AlertConfig) -> list[int]:
    """Claim the alerts whose delivery failed (or was never made) and may be tried again."""
    owed = _owed(config)
    if not owed:
        return []
    claimed = []
    with db.begin() as session:
        due = session.execute(select(Alert.id, Alert.attempts).where(
            or_(*owed), Alert.attempts < MAX_ATTEMPTS, Alert.next_attempt_at <= now,
            Alert.created_at >= now - MAX_AGE).order_by(Alert.id).limit(100)).all()
    for alert_id, attempts in due:
        with db.begin() as session:
            # Compare-and-set: of two workers that saw the same row, one moves it on.
            moved = session.execute(update(Alert).where(Alert.id == alert_id, Alert.attempts == attempts).values(
                attempts=attempts + 1, next_attempt_at=now + RETRY_DELAY * (attempts + 1)))
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(alert_id)
    return claimed


def facts(session: Session, registry: QuestionnaireRegistry, alert: Alert, config: AlertConfig) -> rules.AlertFacts:
    agency = alert.agency
    q = registry.get(alert.questionnaire_key)
    text_vi, text_en = (q.item(alert.item_id).text.vi, q.item(alert.item_id).text.en) if q.has_item(
        alert.item_id) else (alert.item_id, None)
    return rules.AlertFacts(alert.id, agency.id, agency.name, agency.code, alert.item_id, text_vi, text_en,
                            alert.questionnaire_key, alert.period, alert.n, alert.n_dissatisfied, alert.share,
                            config.min_answers, alert.created_at, config.link(alert.id))


def _deliver(db: Database, registry: QuestionnaireRegistry, alert_id: int, now: datetime, config: AlertConfig,
             notifier: Notifier, result: Round) -> None:
    """Send the channels a claimed alert still owes, then record each outcome."""
    with db.begin() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return
        told = facts(session, registry, alert, config)
        email_owed = bool(config.emails) and alert.email_sent_at is None
        webhook_owed = bool(config.webhook_url) and alert.webhook_sent_at is None
    if email_owed:
        mail = Mail(config.emails, rules.subject(told), rules.body(told), f"<sipas-alert-{alert_id}@sipas>", now)
        _outcome(db, alert_id, "email", now, result, lambda: notifier.send_mail(mail))
    if webhook_owed and config.webhook_url:
        url = config.webhook_url
        raw = json.dumps(rules.payload(told), ensure_ascii=False).encode()
        headers = {"X-SIPAS-Alert-Id": str(alert_id)}
        if config.webhook_secret:
            headers[rules.SIGNATURE_HEADER] = rules.signature(config.webhook_secret, raw)
        _outcome(db, alert_id, "webhook", now, result, lambda: notifier.post(url, raw, headers))


def _outcome(db: Database, alert_id: int, channel: str, now: datetime, result: Round,
             send: Callable[[], None]) -> None:
    try:
        send()
    except DeliveryFailed as exc:
        result.failed += 1
        log.warning("alert %s: %s not delivered: %s", alert_id, channel, exc)
        values: dict[str, object] = {f"{channel}_error": str(exc)[:500]}
    else:
        result.sent += 1
        values = {f"{channel}_sent_at": now, f"{channel}_error": None}
    with db.begin() as session:
        session.execute(update(Alert).where(Alert.id == alert_id).values(**values))


# --- reading -----------------------------------------------------------------------------

def newest(session: Session, within: set[int] | None, limit: int, before_id: int | None = None) -> list[Alert]:
    """Alerts of the agencies ``within`` (None: all), newest first; page back with ``before_id``."""
    query = select(Alert).options(selectinload(Alert.agency)).order_by(Alert.id.desc()).limit(limit)
    if within is not None:
        query = query.where(Alert.agency_id.in_(within))
    if before_id is not None:
        query = query.where(Alert.id < before_id)
    return list(session.scalars(query))


def get_alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id) if 1 <= alert_id <= MAX_ID else None
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return alert


def campaigns_of(session: Session, alert: Alert, zone: str) -> list[tuple[int, str]]:
    """The campaigns (id, name) whose interviews the alert counted: its agency's, with its
    questionnaire, with counted interviews that ended in its period."""
    period = rules.period_from_label(alert.period)
    filters = ScoreFilter(ended_from=period.start, ended_to=period.end)
    query = (select(Campaign.id, Campaign.name).join(Interview, Interview.campaign_id == Campaign.id)
             .where(Campaign.agency_id == alert.agency_id, Campaign.questionnaire_key == alert.questionnaire_key,
                    Interview.status.in_(COUNTED)).distinct().order_by(Campaign.id))
    return [(campaign_id, name) for campaign_id, name in session.execute(filters.apply(query, zone))]


def delivery(alert: Alert, channel: str, config: AlertConfig) -> str:
    """A channel's state: ``sent``, ``failed`` (tries left or not), ``pending`` or ``off``."""
    if getattr(alert, f"{channel}_sent_at") is not None:
        return "sent"
    if getattr(alert, f"{channel}_error"):
        return "failed" if alert.attempts >= MAX_ATTEMPTS else "retrying"
    configured = bool(config.emails) if channel == "email" else bool(config.webhook_url)
    return "pending" if configured else "off"
