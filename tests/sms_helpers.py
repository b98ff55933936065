"""Helpers shared by the SMS tests: SMS campaigns (with or without a programme), a
recording messaging provider, claim-and-send rounds and signed status callbacks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from ivr_service.persistence.models import Campaign, Contact, Programme
from ivr_service.providers import MessageRequest, MessageSent, ProviderError
from ivr_service.services import messaging
from ivr_service.services.messaging import ClaimedMessage, MessagePacing

HOST = "https://khaosat.daknong.gov.vn"
TEMPLATE = "So TNMT Dak Nong moi Ong/ba danh gia dich vu da su dung: {link} Tu choi: {stop}"
# 07:00–22:00 every day, as programme campaigns have (Decree 91/2020).
MESSAGE_WINDOW = {"weekdays": list(range(7)), "parts": [["07:00", "22:00"]], "public_holidays": None}


@dataclass
class RecordingMessenger:
    """The provider boundary: records every message it is asked to send; ``errors``
    are raised in order first."""

    name: str = "twilio"
    requests: list[MessageRequest] = field(default_factory=list)
    errors: list[ProviderError] = field(default_factory=list)

    def send_message(self, request: MessageRequest) -> MessageSent:
        self.requests.append(request)
        if self.errors:
            raise self.errors.pop(0)
        return MessageSent("SM" + uuid.uuid4().hex)

    def close(self) -> None:
        pass


def sms_campaign(app: Any, make_campaign: Any, numbers: list[str], *, programme: bool = True,
                 plan: list[dict[str, Any]] | None = None, name: str = "Quý 4", **options: Any) -> int:
    """A started campaign whose contacts are at the SMS step (``plan``'s first step when
    given), with a programme (template, host, reminders) unless ``programme=False``."""
    svc = app.extensions["sipas"]
    plan = plan or [{"channel": "sms", "max_attempts": 1}]
    reminder_hours = options.pop("reminder_hours", 72)
    link_days = options.pop("link_days", 7)
    options.setdefault("window", MESSAGE_WINDOW)
    campaign_id = make_campaign(numbers, app=app, name=name, channel_plan=plan, **options)
    with svc.db.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        session.execute(update(Contact).where(Contact.campaign_id == campaign_id)
                        .values(channel=plan[0]["channel"], next_attempt_at=svc.clock()))
        if programme:
            row = Programme(agency_id=campaign.agency_id, name=f"Sau giao dịch {name}",
                            questionnaire_key=campaign.questionnaire_key, template=TEMPLATE, public_host=HOST,
                            reminder_hours=reminder_hours, link_days=link_days, channel_plan=plan,
                            window=MESSAGE_WINDOW, sender="SoTNMT")
            session.add(row)
            session.flush()
            campaign.programme_id = row.id
    return campaign_id


def pacing(rate: float = 1000.0, lease_s: float = 60) -> MessagePacing:
    return MessagePacing("twilio", rate, timedelta(seconds=lease_s))


def claim(app: Any, rate: float = 1000.0, batch: int = 100, now: datetime | None = None,
          lease_s: float = 60, reminders: bool = True) -> list[ClaimedMessage]:
    svc = app.extensions["sipas"]
    return messaging.claim_messages(svc.db, pacing(rate, lease_s), now or svc.clock(), batch,
                                    registry=svc.registry, default_host="http://sipas.test",
                                    reminders=reminders)


def status_url(token: str) -> str:
    return f"http://sipas.test/sms/{token}/status"


def send(app: Any, messenger: Any, claimed: list[ClaimedMessage], lease_s: float = 60) -> None:
    svc = app.extensions["sipas"]
    for item in claimed:
        messaging.send(svc.db, svc.registry, messenger, item, status_url, svc.clock, timedelta(seconds=lease_s))


def round_(app: Any, messenger: Any, rate: float = 1000.0) -> list[ClaimedMessage]:
    claimed = claim(app, rate)
    send(app, messenger, claimed)
    return claimed


def contacts(app: Any, campaign_id: int | None = None) -> list[Contact]:
    with app.extensions["sipas"].db.begin() as session:
        query = select(Contact).order_by(Contact.id)
        if campaign_id is not None:
            query = query.where(Contact.campaign_id == campaign_id)
        return list(session.scalars(query))


def callback(client: Any, token: str, status: str, sid: str, **form: str) -> Any:
    return client.post(f"/sms/{token}/status", data={"MessageSid": sid, "MessageStatus": status, **form})
