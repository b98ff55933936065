"""What messages did and cost, per campaign or programme: delivery and reach, spending and
its forecast. Read-only; re-exported by :mod:`services.messaging`.

**Reach.** A message counts as having *reached* the citizen when its provider reported it
delivered and that provider's reports are trusted (a messaging account's own
``trusted_delivery``; without an account, ``core.delivery.TRUSTED_DELIVERY``: not Twilio's
in Vietnam, which only say the carrier took it), or when its survey link was
opened (``SurveyLink.opened_at``), whatever the report said.

**Cost.** A message's price (VND) is recorded when the provider accepts it (``sent_at``
set). Spent = the sum of those prices. The forecast for the rest of the current reporting
period assumes the current daily rate goes on::

    elapsed  = (now − start of the period) in days (fractional; local midnight of its first day)
    left     = (end of the period − now) in days  (local midnight after its last day)
    rate     = spent in the period / elapsed        (VND per day)
    forecast = rate × left                           (the rest of the period)
    total    = spent in the period + forecast

Before the period has begun (or with nothing spent) the forecast is 0.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..core import delivery
from ..core.programmes import period_end_instant, period_of
from ..persistence.models import Campaign, Message, MessageStatus, MessagingAccount, Programme, SurveyLink
from .errors import NotFound, invalid

DAY = timedelta(days=1)


def _campaign_ids(session: Session, programme_id: int | None, campaign_id: int | None) -> list[int]:
    if (programme_id is None) == (campaign_id is None):
        raise invalid("programme_id", "give either a programme or a campaign")
    if campaign_id is not None:
        if session.get(Campaign, campaign_id) is None:
            raise NotFound(f"campaign {campaign_id} not found")
        return [campaign_id]
    if session.get(Programme, programme_id) is None:
        raise NotFound(f"programme {programme_id} not found")
    return list(session.scalars(select(Campaign.id).where(Campaign.programme_id == programme_id)))


def delivery_summary(session: Session, *, programme_id: int | None = None,
                     campaign_id: int | None = None) -> dict[str, Any]:
    """Messages of a programme's campaigns (or of one campaign): counts by state, failures
    by reason, messages whose link was opened, and how many reached the citizen (see the
    module docstring); ``delivered_unconfirmed`` are reported delivered by a provider whose
    reports are not trusted, link not opened."""
    ids = _campaign_ids(session, programme_id, campaign_id)
    opened = case((SurveyLink.opened_at.is_not(None), True), else_=False)
    rows = session.execute(
        select(Message.provider, Message.status, Message.error_code, opened.label("opened"),
               MessagingAccount.trusted_delivery, func.count())
        .outerjoin(SurveyLink, SurveyLink.attempt_id == Message.attempt_id)
        .outerjoin(MessagingAccount, MessagingAccount.id == Message.account_id)
        .where(Message.campaign_id.in_(ids))
        .group_by(Message.provider, Message.status, Message.error_code, opened,
                  MessagingAccount.trusted_delivery)).all()
    by_state: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    total = link_opened = reached = unconfirmed = 0
    for provider, status, code, was_opened, account_trusted, n in rows:
        total += n
        by_state[status.value] += n
        if status in (MessageStatus.UNDELIVERED, MessageStatus.FAILED, MessageStatus.EXPIRED):
            by_reason[delivery.failure_of(provider, code).reason] += n
        link_opened += n if was_opened else 0
        trusted_delivery = status is MessageStatus.DELIVERED and delivery.trusted(provider, account_trusted)
        if was_opened or trusted_delivery:
            reached += n
        elif status is MessageStatus.DELIVERED:
            unconfirmed += n
    links_opened = session.scalar(select(func.count()).select_from(SurveyLink).where(
        SurveyLink.campaign_id.in_(ids), SurveyLink.opened_at.is_not(None))) or 0
    return {"messages": total, "by_state": dict(sorted(by_state.items())),
            "by_reason": dict(sorted(by_reason.items())), "link_opened": link_opened,
            "links_opened": links_opened, "reached": reached, "delivered_unconfirmed": unconfirmed}


def _spending(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per campaign: messages the provider accepted, their segments, spent (VND) and how
    many have no price (sent while no price table was configured)."""
    rows = session.execute(
        select(Message.campaign_id, func.count(), func.coalesce(func.sum(Message.segments), 0),
               func.coalesce(func.sum(Message.price), 0.0),
               func.count().filter(Message.price.is_(None)))
        .where(Message.campaign_id.in_(ids), Message.sent_at.is_not(None))
        .group_by(Message.campaign_id)).all()
    result: dict[int, dict[str, Any]] = {cid: {"messages": 0, "segments": 0, "spent": 0.0, "unpriced": 0}
                                         for cid in ids}
    for cid, messages, segments, spent, unpriced in rows:
        result[cid or 0] = {"messages": messages, "segments": int(segments), "spent": round(float(spent or 0), 2),
                            "unpriced": unpriced}
    return result


def forecast(spent: float, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    """The forecast of the module docstring for a period from ``start`` to ``end`` (UTC)."""
    elapsed = max((min(now, end) - start) / DAY, 0.0)
    left = max((end - max(now, start)) / DAY, 0.0)
    rate = spent / elapsed if elapsed > 0 else 0.0
    rest = rate * left
    return {"days_elapsed": round(elapsed, 4), "days_left": round(left, 4), "daily_rate": round(rate, 2),
            "forecast_rest": round(rest, 2), "forecast_total": round(spent + rest, 2)}


def cost_summary(session: Session, *, now: datetime, programme_id: int | None = None,
                 campaign_id: int | None = None) -> dict[str, Any]:
    """Spending of a programme (by reporting period, and in total) or of one campaign,
    with the forecast for the rest of the current period (see the module docstring)."""
    ids = _campaign_ids(session, programme_id, campaign_id)
    spending = _spending(session, ids)
    campaigns = {c.id: c for c in session.scalars(select(Campaign).where(Campaign.id.in_(ids)))}
    programme = None
    if programme_id is not None:
        programme = session.get(Programme, programme_id)
    elif campaigns[ids[0]].programme_id is not None:
        programme = session.get(Programme, campaigns[ids[0]].programme_id)
    zone = programme.timezone if programme is not None else "UTC"
    periods = []
    current: dict[str, Any] | None = None
    today = now.astimezone(ZoneInfo(zone)).date()
    this_period = period_of(programme.period, today) if programme is not None else None
    for cid in sorted(ids, key=lambda c: (campaigns[c].period_start is None, campaigns[c].period_start, c)):
        campaign = campaigns[cid]
        row: dict[str, Any] = {"campaign_id": cid, "name": campaign.name, "period_start": campaign.period_start,
                               "period_end": campaign.period_end, **spending[cid]}
        if campaign.period_start is not None and campaign.period_end is not None:
            start = datetime.combine(campaign.period_start, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)
            end = period_end_instant(campaign.period_end, zone)
            if (this_period is not None and campaign.period_start == this_period.start) or start <= now < end:
                current = {"campaign_id": cid, "label": this_period.label if this_period else None,
                           "spent": row["spent"], **forecast(row["spent"], start, end, now)}
        periods.append(row)
    totals = {key: sum(p[key] for p in periods) for key in ("messages", "segments", "spent", "unpriced")}
    totals["spent"] = round(totals["spent"], 2)
    return {"currency": "VND", "as_of": now, **totals, "periods": periods, "current_period": current}
