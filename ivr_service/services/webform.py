"""The web form behind an SMS invitation's short link, and the stop-messages page.

The protocol (the web layer, the simulator and the QR form rely on it):

* **Opening never uses a link up.** ``open_link`` reads the link's state and the item to
  show; it counts an open (first ``opened_at``, ``opens``) only for a person (the web layer
  leaves out HEAD requests and link-preview bots) and changes no answer.
* **Each answer is stored when submitted** (``answer``), as an ``Answer`` of the link's
  attempt, one row per (attempt, item): answering an item again (the back button) replaces
  the answer. The contact's ``Interview`` is made on the first answer (channel "web").
* **The last answer finishes the link**: when ``core.flow.next_item(..., "web")`` is None,
  the interview gets its disposition (``flow.disposition(..., "web")``), the link its
  ``finished_at``, the attempt COMPLETED with the outcome, and the contact is settled through
  ``contacts.settle_contact`` like every channel. A finished, expired or closed link
  accepts nothing.
* **Refusal** (``stop``, or a "no" at a web consent item): the number goes on the
  do-not-contact list at once (every campaign and channel) and this contact ends as
  refused (AAPOR 2.11), unless it was already finished.

Concurrency: every write locks the ``survey_links`` row first (``SELECT … FOR UPDATE``), so
two submits of the same item, a submit racing the stop page, or the last answer racing the
link's expiry are applied one after the other. Whoever settles a link's attempt elsewhere
(the messaging service at expiry) takes the same lock first. SQLite serialises writers
anyway (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from .. import metrics
from ..core import flow
from ..core.flow import AnswerStatus, Event, Response
from ..core.messages import normal_code
from ..core.policy import Outcome
from ..core.questionnaire import Item, Questionnaire, QuestionnaireRegistry, Text
from ..persistence.models import (
    FINAL_ATTEMPT_STATUSES,
    Answer,
    Attempt,
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Interview,
    InterviewStatus,
    SurveyLink,
)
from .contacts import finish_contact, opt_out, settle_contact
from .errors import Conflict, NotFound, invalid
from .voice import responses_for

CHANNEL = "web"
OPT_OUT_SOURCE = "web"


class LinkStatus(StrEnum):
    UNKNOWN = "unknown"      # no such link (or not a link code at all)
    EXPIRED = "expired"      # past expires_at, never finished
    FINISHED = "finished"    # answered to the end, refused, or its contact/campaign is closed
    LIVE = "live"            # answers are taken


_OUTCOME = {
    flow.Disposition.COMPLETE: Outcome.COMPLETED,
    flow.Disposition.PARTIAL: Outcome.PARTIAL,
    flow.Disposition.BREAK_OFF: Outcome.BREAK_OFF,
    flow.Disposition.REFUSED: Outcome.REFUSED,
}


@dataclass(frozen=True)
class LinkState:
    """What the citizen's page shows for a link."""

    status: LinkStatus
    code: str
    language: str = "vi"
    agency: str | None = None
    item: Item | None = None                 # LIVE: the item to show
    section_title: Text | None = None
    position: int = 0                        # "câu 3/26": the item's place among the items asked
    total: int = 0
    previous: str | None = None              # the answered item before it (the Back link)
    chosen: str | None = None                # the key already chosen for it (back button)
    answered: int = 0                        # items answered so far
    outcome: str | None = None               # FINISHED: the attempt's outcome, if any
    answered_here: bool = False              # FINISHED: the form was answered to its end here
    answers: dict[str, str] = field(default_factory=dict)


class LinkClosed(Conflict):
    """An answer sent to a link that no longer takes answers; ``state`` says why."""

    def __init__(self, state: LinkState) -> None:
        reason = {LinkStatus.EXPIRED: "has expired", LinkStatus.FINISHED: "is already finished"}
        super().__init__(f"link: this survey link {reason.get(state.status, 'is closed')}", field="link")
        self.state = state


class NotAsked(Conflict):
    """An answer for an item that is neither the current one nor an earlier one asked."""


# ----------------------------------------------------------------------------- reading


def _find(session: Session, code: str, lock: bool) -> SurveyLink | None:
    normal = normal_code(code.strip()) if len(code) <= 12 else None
    if normal is None:
        return None
    query = select(SurveyLink).where(SurveyLink.code == normal)
    if lock:
        # The link row is the one lock every writer of this link takes first.
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def _attempt(session: Session, link: SurveyLink) -> Attempt:
    return session.scalars(
        select(Attempt).where(Attempt.id == link.attempt_id).options(
            joinedload(Attempt.campaign).joinedload(Campaign.agency),
            joinedload(Attempt.contact).joinedload(Contact.interview).joinedload(Interview.answers),
        )
    ).unique().one()


def _status(link: SurveyLink, attempt: Attempt, now: datetime) -> LinkStatus:
    if link.finished_at is not None:
        return LinkStatus.FINISHED
    if now >= link.expires_at:
        return LinkStatus.EXPIRED
    closed = (attempt.status in FINAL_ATTEMPT_STATUSES or attempt.contact.status is ContactStatus.DONE
              or attempt.campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED))
    return LinkStatus.FINISHED if closed else LinkStatus.LIVE


def _responses(q: Questionnaire, attempt: Attempt) -> dict[str, Response]:
    """The responses the form continues from: the contact's answers on every channel (latest
    per item; in restart mode only this link's), consent only as given on this link."""
    interview = attempt.contact.interview
    if interview is None:
        return {}
    return responses_for(q, interview.answers, attempt.id, attempt.campaign.resume_mode == "restart")


def _asked(q: Questionnaire, responses: dict[str, Response]) -> list[Item]:
    """The web items asked given these responses, in order (conditions that hold)."""
    return [i for i in q.items if CHANNEL in i.channels and flow.is_applicable(i, responses)]


def _key_of(item: Item, response: Response) -> str | None:
    if response.status is AnswerStatus.NO_OPINION:
        return item.scale.no_opinion_key
    for option in item.scale.options:
        if option.value == response.value:
            return option.key
    return None


def _state(q: Questionnaire, link: SurveyLink, attempt: Attempt, status: LinkStatus,
           show: str | None = None) -> LinkState:
    campaign = attempt.campaign
    base = LinkState(status=status, code=link.code, language=campaign.language, agency=campaign.agency.name,
                     outcome=attempt.outcome,
                     answered_here=link.finished_at is not None and attempt.outcome != Outcome.REFUSED.value)
    if status is not LinkStatus.LIVE:
        return base
    responses = _responses(q, attempt)
    asked = _asked(q, responses)
    keys = {i.id: k for i in asked if i.id in responses and (k := _key_of(i, responses[i.id])) is not None}
    current = flow.next_item(q, responses, CHANNEL)
    item = current
    if show is not None and show in keys:
        item = q.item(show)        # the back button: an item already answered
    if item is None:
        # Every item has an answer but the link was not finished (a crash between the two
        # cannot happen: both are one transaction); show the last one so it can be sent again.
        item = asked[-1] if asked else None
    if item is None:
        return base
    ids = [i.id for i in asked]
    position = ids.index(item.id) + 1 if item.id in ids else len(ids)
    previous = next((i for i in reversed(ids[:position - 1]) if i in keys), None)
    section = next(s for s in q.sections if s.id == item.section)
    return LinkState(status=status, code=link.code, language=campaign.language, agency=campaign.agency.name,
                     item=item, section_title=section.title, position=position, total=len(ids),
                     previous=previous, chosen=keys.get(item.id), answered=len(keys), answers=keys)


def open_link(session: Session, registry: QuestionnaireRegistry, code: str, now: datetime,
              is_person: bool, show: str | None = None) -> LinkState:
    """The link's state and the item to show (``show``: an item answered earlier, for the
    Back link; otherwise the first unanswered one). Counts the open of a person on a live
    link; never changes an answer or finishes anything."""
    link = _find(session, code, lock=False)
    if link is None:
        return LinkState(LinkStatus.UNKNOWN, code=code[:12])
    attempt = _attempt(session, link)
    status = _status(link, attempt, now)
    if status is LinkStatus.LIVE and is_person:
        # One statement, no lock: concurrent opens add up and never wait for an answer.
        session.execute(update(SurveyLink).where(SurveyLink.id == link.id).values(
            opens=SurveyLink.opens + 1, opened_at=func.coalesce(SurveyLink.opened_at, now)))
    q = registry.get(attempt.campaign.questionnaire_key)
    return _state(q, link, attempt, status, show)


# ----------------------------------------------------------------------------- writing


def _live(session: Session, registry: QuestionnaireRegistry, code: str,
          now: datetime) -> tuple[SurveyLink, Attempt, Questionnaire]:
    link = _find(session, code, lock=True)
    if link is None:
        raise NotFound(f"link: no survey link {code[:12]!r}", field="link")
    attempt = _attempt(session, link)
    q = registry.get(attempt.campaign.questionnaire_key)
    status = _status(link, attempt, now)
    if status is not LinkStatus.LIVE:
        raise LinkClosed(_state(q, link, attempt, status))
    return link, attempt, q


def answer(session: Session, registry: QuestionnaireRegistry, code: str, item_id: str, key: str | None,
           now: datetime) -> LinkState:
    """Store the answer ``key`` to ``item_id`` and return the state after it (the next item,
    or FINISHED). The item must be the current one or one answered earlier (back button).

    Raises NotFound (unknown link), LinkClosed (finished or expired), InvalidInput naming
    ``answer`` or ``item``, NotAsked (an item that is not asked now)."""
    return record(session, registry, code, item_id, lambda q, item: _response(q, item, key), now)


def record(session: Session, registry: QuestionnaireRegistry, code: str, item_id: str,
           response_of: Callable[[Questionnaire, Item], Response], now: datetime) -> LinkState:
    """:func:`answer` with the response given by ``response_of(q, item)`` (the two-way SMS
    session passes the responses ``flow.step`` made, "unanswered" included)."""
    link, attempt, q = _live(session, registry, code, now)
    if not q.has_item(item_id) or CHANNEL not in q.item(item_id).channels:
        raise invalid("item", f"{item_id[:40]!r} is not an item of the web form of {q.key}")
    item = q.item(item_id)
    responses = _responses(q, attempt)
    current = flow.next_item(q, responses, CHANNEL)
    if not flow.is_applicable(item, responses) or (
            item_id not in responses and (current is None or current.id != item_id)):
        raise NotAsked(f"item: {item_id} is not asked now; the current item is "
                       f"{current.id if current else 'none'}", field="item")
    response = response_of(q, item)

    contact, campaign = attempt.contact, attempt.campaign
    interview = contact.interview
    if interview is None:
        interview = Interview(contact_id=contact.id, campaign_id=campaign.id, channel=CHANNEL,
                              questionnaire_key=campaign.questionnaire_key, started_at=now)
        session.add(interview)
        contact.interview = interview
        session.flush()
    # The interview's channel is the one it was last answered on (voice → SMS plans).
    interview.channel = CHANNEL
    stored = next((a for a in interview.answers if a.attempt_id == attempt.id and a.item_id == item_id), None)
    if stored is None:
        stored = Answer(interview_id=interview.id, attempt_id=attempt.id, item_id=item_id)
        interview.answers.append(stored)
    stored.value, stored.status, stored.digits = response.value, response.status.value, response.digits
    stored.answered_at = now
    responses[item_id] = response
    _drop_unasked(session, q, interview, attempt, responses)
    attempt.answered_at = attempt.answered_at or now
    attempt.status = AttemptStatus.IN_PROGRESS if attempt.status is AttemptStatus.QUEUED else attempt.status
    next_item = flow.next_item(q, responses, CHANNEL)
    interview.current_item = next_item.id if next_item else None
    if next_item is None:
        _finish(session, q, link, attempt, interview, responses, now)
        return _state(q, link, attempt, LinkStatus.FINISHED)
    session.flush()
    return _state(q, link, attempt, LinkStatus.LIVE)


def _response(q: Questionnaire, item: Item, key: str | None) -> Response:
    keys = ", ".join(item.scale.valid_keys)
    if key is None or not key.strip():
        raise invalid("answer", f"choose one of the options of item {item.id} ({keys})")
    event, response = flow.interpret(q, item, key.strip()[:8])
    if event is not Event.RECORDED or response is None:
        raise invalid("answer", f"{key[:8]!r} is not an option of item {item.id}; expected one of {keys}")
    return response


def _drop_unasked(session: Session, q: Questionnaire, interview: Interview, attempt: Attempt,
                  responses: dict[str, Response]) -> None:
    """A changed earlier answer can make later items no longer asked (screening "yes" →
    "no"): their answers on this link are removed, so scores never count them."""
    for stored in list(interview.answers):
        if (stored.attempt_id == attempt.id and q.has_item(stored.item_id)
                and not flow.is_applicable(q.item(stored.item_id), responses)):
            interview.answers.remove(stored)
            session.delete(stored)
            responses.pop(stored.item_id, None)


def _finish(session: Session, q: Questionnaire, link: SurveyLink, attempt: Attempt, interview: Interview,
            responses: dict[str, Response], now: datetime) -> None:
    """The form reached its end: disposition, link, attempt and contact."""
    disposition = flow.disposition(q, responses, CHANNEL)
    outcome = _OUTCOME[disposition]
    interview.status = InterviewStatus(disposition.value)
    interview.ended_at = now
    link.finished_at = now
    _end_attempt(attempt, outcome, now)
    contact, campaign = attempt.contact, attempt.campaign
    if outcome in (Outcome.COMPLETED, Outcome.REFUSED):
        settle_contact(session, q, contact, campaign, outcome, now, previous_start=attempt.created_at)
    else:
        # Every item was asked (answers given by voice earlier may have been left
        # unanswered): nothing is left to resume, as for a call that reached its end.
        finish_contact(session, contact, outcome, now)
    if outcome is Outcome.REFUSED:
        opt_out(session, contact.phone_e164, OPT_OUT_SOURCE, now, campaign.id)


def _end_attempt(attempt: Attempt, outcome: Outcome, now: datetime) -> None:
    attempt.status = AttemptStatus.COMPLETED
    attempt.outcome = outcome.value
    metrics.ATTEMPTS.labels(channel=attempt.channel, outcome=outcome.value).inc()
    attempt.ended_at = now
    attempt.lease_until = None


@dataclass(frozen=True)
class Stopped:
    code: str
    language: str
    was_finished: bool       # the contact had already ended before the refusal


def stop(session: Session, registry: QuestionnaireRegistry, code: str, now: datetime) -> Stopped:
    """The citizen refuses further messages: the number goes on the do-not-contact list at
    once (every pending contact of it, in every campaign and channel, stops), and this
    link's contact ends as refused (2.11) unless it had already ended. Works on expired and
    finished links too; stopping twice changes nothing more."""
    link = _find(session, code, lock=True)
    if link is None:
        raise NotFound(f"link: no survey link {code[:12]!r}", field="link")
    attempt = _attempt(session, link)
    contact, campaign = attempt.contact, attempt.campaign
    was_finished = contact.status is ContactStatus.DONE
    if not was_finished:
        q = registry.get(campaign.questionnaire_key)
        if attempt.status not in FINAL_ATTEMPT_STATUSES:
            _end_attempt(attempt, Outcome.REFUSED, now)
        if link.finished_at is None:
            link.finished_at = now
        interview = contact.interview
        if interview is not None and interview.status is InterviewStatus.IN_PROGRESS:
            interview.status = InterviewStatus.REFUSED
            interview.ended_at = now
        settle_contact(session, q, contact, campaign, Outcome.REFUSED, now, previous_start=attempt.created_at)
    opt_out(session, contact.phone_e164, OPT_OUT_SOURCE, now, campaign.id)
    return Stopped(code=link.code, language=campaign.language, was_finished=was_finished)


def link_language(session: Session, code: str) -> str | None:
    """The campaign language of a link (None if unknown), for pages that only need that."""
    normal = normal_code(code.strip()) if len(code) <= 12 else None
    if normal is None:
        return None
    return session.scalar(select(Campaign.language).join(SurveyLink, SurveyLink.campaign_id == Campaign.id)
                          .where(SurveyLink.code == normal))

