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
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session, joinedload

from .. import metrics
from ..core import flow
from ..core.flow import AnswerStatus, Event, Response
from ..core.messages import normal_code
from ..core.policy import Outcome
from ..core.questionnaire import Item, Questionnaire, QuestionnaireRegistry, Text
from ..persistence.models import (
    FINAL_ATTEMPT_STATUSES,
    Agency,
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


class _Stored(NamedTuple):
    id: int
    attempt_id: int
    item_id: str
    value: int | None
    status: str
    digits: str


@dataclass(frozen=True)
class _Link:
    """What a page or an answer needs of a link: the link, its attempt, campaign, agency,
    contact, the contact's interview and its answers in the order they were stored. Read
    by one Core statement on the form's requests (:func:`_read`), or made of the ORM
    objects where those are loaded anyway (:func:`_view`)."""

    id: int
    code: str
    expires_at: datetime
    finished_at: datetime | None
    attempt_id: int
    attempt_status: AttemptStatus
    outcome: str | None
    answered_at: datetime | None
    campaign_id: int
    questionnaire_key: str
    language: str
    resume_mode: str
    campaign_status: CampaignStatus
    agency: str
    contact_id: int
    contact_status: ContactStatus
    interview_id: int | None
    answers: tuple[_Stored, ...]


_LINKS, _ATTEMPTS = cast(Table, SurveyLink.__table__), cast(Table, Attempt.__table__)
_CAMPAIGNS = Campaign.__table__
_AGENCIES, _CONTACTS = Agency.__table__, Contact.__table__
_INTERVIEWS, _ANSWERS = cast(Table, Interview.__table__), cast(Table, Answer.__table__)
# Built once (Core, no ORM): the form's page and answer are its busiest requests.
_READ = (
    select(_LINKS.c.id, _LINKS.c.code, _LINKS.c.expires_at, _LINKS.c.finished_at,
           _ATTEMPTS.c.id, _ATTEMPTS.c.status, _ATTEMPTS.c.outcome, _ATTEMPTS.c.answered_at,
           _CAMPAIGNS.c.id, _CAMPAIGNS.c.questionnaire_key, _CAMPAIGNS.c.language, _CAMPAIGNS.c.resume_mode,
           _CAMPAIGNS.c.status, _AGENCIES.c.name, _CONTACTS.c.id, _CONTACTS.c.status, _INTERVIEWS.c.id,
           _ANSWERS.c.id, _ANSWERS.c.attempt_id, _ANSWERS.c.item_id, _ANSWERS.c.value, _ANSWERS.c.status,
           _ANSWERS.c.digits)
    .select_from(_LINKS.join(_ATTEMPTS, _ATTEMPTS.c.id == _LINKS.c.attempt_id)
                 .join(_CAMPAIGNS, _CAMPAIGNS.c.id == _ATTEMPTS.c.campaign_id)
                 .join(_AGENCIES, _AGENCIES.c.id == _CAMPAIGNS.c.agency_id)
                 .join(_CONTACTS, _CONTACTS.c.id == _ATTEMPTS.c.contact_id)
                 .outerjoin(_INTERVIEWS, _INTERVIEWS.c.contact_id == _CONTACTS.c.id)
                 .outerjoin(_ANSWERS, _ANSWERS.c.interview_id == _INTERVIEWS.c.id))
    .order_by(_ANSWERS.c.id))
_READ_BY_CODE = _READ.where(_LINKS.c.code == bindparam("code"))
_READ_BY_ID = _READ.where(_LINKS.c.id == bindparam("link"))
_LOCK = select(_LINKS.c.id).where(_LINKS.c.code == bindparam("code")).with_for_update()
_COUNT_OPEN = (update(_LINKS).where(_LINKS.c.id == bindparam("link"))
               .values(opens=_LINKS.c.opens + 1, opened_at=func.coalesce(_LINKS.c.opened_at, bindparam("now"))))
_ADD_INTERVIEW = insert(_INTERVIEWS).returning(_INTERVIEWS.c.id)
_ADD_ANSWER = insert(_ANSWERS)
# The SET clauses of these take the columns of the parameters given.
_SET_ANSWER = update(_ANSWERS).where(_ANSWERS.c.id == bindparam("answer"))
_DROP_ANSWERS = delete(_ANSWERS).where(_ANSWERS.c.id.in_(bindparam("answers", expanding=True)))
_SET_INTERVIEW = update(_INTERVIEWS).where(_INTERVIEWS.c.id == bindparam("interview"))
_SET_ATTEMPT = update(_ATTEMPTS).where(_ATTEMPTS.c.id == bindparam("attempt"))


def _normal(code: str) -> str | None:
    return normal_code(code.strip()) if len(code) <= 12 else None


def _read(session: Session, statement: Any, params: dict[str, Any]) -> _Link | None:
    rows = session.connection().execute(statement, params).all()
    if not rows:
        return None
    answers = tuple(_Stored(*row[17:]) for row in rows if row[17] is not None)
    values: list[Any] = [*rows[0][:17], answers]
    return _Link(*values)


def _view(link: SurveyLink, attempt: Attempt) -> _Link:
    campaign, contact = attempt.campaign, attempt.contact
    interview = contact.interview
    answers = tuple(_Stored(a.id, a.attempt_id, a.item_id, a.value, a.status, a.digits)
                    for a in (interview.answers if interview is not None else ()))
    return _Link(link.id, link.code, link.expires_at, link.finished_at, attempt.id, attempt.status, attempt.outcome,
                 attempt.answered_at, campaign.id, campaign.questionnaire_key, campaign.language, campaign.resume_mode,
                 campaign.status, campaign.agency.name, contact.id, contact.status,
                 interview.id if interview is not None else None, answers)


def _find(session: Session, code: str, lock: bool) -> SurveyLink | None:
    normal = _normal(code)
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
            joinedload(Attempt.contact).joinedload(Contact.interview).selectinload(Interview.answers),
        )
    ).unique().one()


def _status(link: _Link, now: datetime) -> LinkStatus:
    if link.finished_at is not None:
        return LinkStatus.FINISHED
    if now >= link.expires_at:
        return LinkStatus.EXPIRED
    closed = (link.attempt_status in FINAL_ATTEMPT_STATUSES or link.contact_status is ContactStatus.DONE
              or link.campaign_status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED))
    return LinkStatus.FINISHED if closed else LinkStatus.LIVE


def _responses(q: Questionnaire, link: _Link) -> dict[str, Response]:
    """The responses the form continues from: the contact's answers on every channel (latest
    per item; in restart mode only this link's), consent only as given on this link."""
    return responses_for(q, link.answers, link.attempt_id, link.resume_mode == "restart")


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


def _state(q: Questionnaire, link: _Link, status: LinkStatus, show: str | None = None) -> LinkState:
    base = LinkState(status=status, code=link.code, language=link.language, agency=link.agency,
                     outcome=link.outcome,
                     answered_here=link.finished_at is not None and link.outcome != Outcome.REFUSED.value)
    if status is not LinkStatus.LIVE:
        return base
    responses = _responses(q, link)
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
    return LinkState(status=status, code=link.code, language=link.language, agency=link.agency,
                     item=item, section_title=section.title, position=position, total=len(ids),
                     previous=previous, chosen=keys.get(item.id), answered=len(keys), answers=keys)


def open_link(session: Session, registry: QuestionnaireRegistry, code: str, now: datetime,
              is_person: bool, show: str | None = None) -> LinkState:
    """The link's state and the item to show (``show``: an item answered earlier, for the
    Back link; otherwise the first unanswered one). Counts the open of a person on a live
    link; never changes an answer or finishes anything."""
    normal = _normal(code)
    link = _read(session, _READ_BY_CODE, {"code": normal}) if normal is not None else None
    if link is None:
        return LinkState(LinkStatus.UNKNOWN, code=code[:12])
    status = _status(link, now)
    if status is LinkStatus.LIVE and is_person:
        # One statement, no lock: concurrent opens add up and never wait for an answer.
        session.connection().execute(_COUNT_OPEN, {"link": link.id, "now": now})
    return _state(registry.get(link.questionnaire_key), link, status, show)


# ----------------------------------------------------------------------------- writing


def _check(q: Questionnaire, link: _Link, item_id: str) -> tuple[Item, dict[str, Response]]:
    """The item answered and the responses before the answer; InvalidInput or NotAsked
    when the item is not one of the web form or not asked now."""
    if not q.has_item(item_id) or CHANNEL not in q.item(item_id).channels:
        raise invalid("item", f"{item_id[:40]!r} is not an item of the web form of {q.key}")
    item = q.item(item_id)
    responses = _responses(q, link)
    current = flow.next_item(q, responses, CHANNEL)
    if not flow.is_applicable(item, responses) or (
            item_id not in responses and (current is None or current.id != item_id)):
        raise NotAsked(f"item: {item_id} is not asked now; the current item is "
                       f"{current.id if current else 'none'}", field="item")
    return item, responses


def answer(session: Session, registry: QuestionnaireRegistry, code: str, item_id: str, key: str | None,
           now: datetime) -> LinkState:
    """Store the answer ``key`` to ``item_id`` and return the state after it (the next item,
    or FINISHED). The item must be the current one or one answered earlier (back button).

    Raises NotFound (unknown link), LinkClosed (finished or expired), InvalidInput naming
    ``answer`` or ``item``, NotAsked (an item that is not asked now).

    The form's answers, in a session of their own: the link is locked, then read, in two
    Core statements (read after the lock, so answers committed by whoever held it are
    seen), and written in two or three (the answer, the interview; the attempt on the
    first answer). The answer that finishes the form goes through :func:`record` (ORM).
    """
    normal = _normal(code)
    # Core statements on the session's connection: the ORM's execute adds nothing here.
    conn = session.connection()
    locked = conn.execute(_LOCK, {"code": normal}).first() if normal is not None else None
    link = _read(session, _READ_BY_ID, {"link": locked[0]}) if locked is not None else None
    if link is None:
        raise NotFound(f"link: no survey link {code[:12]!r}", field="link")
    q = registry.get(link.questionnaire_key)
    status = _status(link, now)
    if status is not LinkStatus.LIVE:
        raise LinkClosed(_state(q, link, status))
    item, responses = _check(q, link, item_id)
    response = _response(q, item, key)
    responses[item_id] = response
    stored = next((a for a in link.answers if a.attempt_id == link.attempt_id and a.item_id == item_id), None)
    answers = [a._replace(value=response.value, status=response.status.value, digits=response.digits)
               if a is stored else a for a in link.answers]
    if stored is None:
        answers.append(_Stored(0, link.attempt_id, item_id, response.value, response.status.value, response.digits))
    dropped = _unasked(q, answers, link.attempt_id, responses)
    next_item = flow.next_item(q, responses, CHANNEL)
    if next_item is None:
        return record(session, registry, code, item_id, lambda _q, _item: response, now)

    interview_id = link.interview_id
    if interview_id is None:
        interview_id = conn.execute(_ADD_INTERVIEW, {
            "contact_id": link.contact_id, "campaign_id": link.campaign_id, "channel": CHANNEL,
            "questionnaire_key": link.questionnaire_key, "started_at": now}).scalar_one()
    values = {"value": response.value, "status": response.status.value, "digits": response.digits,
              "answered_at": now}
    if stored is None:
        conn.execute(_ADD_ANSWER, {"interview_id": interview_id, "attempt_id": link.attempt_id,
                                   "item_id": item_id, **values})
    else:
        conn.execute(_SET_ANSWER, {"answer": stored.id, **values})
    if dropped:
        conn.execute(_DROP_ANSWERS, {"answers": [a.id for a in dropped if a.id]})
    # The interview's channel is the one it was last answered on (voice → SMS plans).
    conn.execute(_SET_INTERVIEW, {"interview": interview_id, "channel": CHANNEL, "current_item": next_item.id})
    if link.answered_at is None or link.attempt_status is AttemptStatus.QUEUED:
        queued = link.attempt_status is AttemptStatus.QUEUED
        conn.execute(_SET_ATTEMPT, {"attempt": link.attempt_id, "answered_at": link.answered_at or now,
                                    "status": AttemptStatus.IN_PROGRESS if queued else link.attempt_status})
    kept = tuple(a for a in answers if not any(a is d for d in dropped))
    return _state(q, replace(link, interview_id=interview_id, answers=kept), LinkStatus.LIVE)


def _unasked(q: Questionnaire, answers: list[_Stored], attempt_id: int,
             responses: dict[str, Response]) -> list[_Stored]:
    """A changed earlier answer can make later items no longer asked (screening "yes" →
    "no"): their answers on this link are to be removed, so scores never count them.
    Takes them out of ``responses``; returns them."""
    dropped = []
    for stored in answers:
        if (stored.attempt_id == attempt_id and q.has_item(stored.item_id)
                and not flow.is_applicable(q.item(stored.item_id), responses)):
            dropped.append(stored)
            responses.pop(stored.item_id, None)
    return dropped


def record(session: Session, registry: QuestionnaireRegistry, code: str, item_id: str,
           response_of: Callable[[Questionnaire, Item], Response], now: datetime) -> LinkState:
    """:func:`answer` with the response given by ``response_of(q, item)``, through the ORM:
    the two-way SMS session passes the responses ``flow.step`` made ("unanswered"
    included) and goes on with the objects it holds; the form's last answer finishes the
    link, the attempt and the contact here."""
    link = _find(session, code, lock=True)
    if link is None:
        raise NotFound(f"link: no survey link {code[:12]!r}", field="link")
    attempt = _attempt(session, link)
    q = registry.get(attempt.campaign.questionnaire_key)
    status = _status(_view(link, attempt), now)
    if status is not LinkStatus.LIVE:
        raise LinkClosed(_state(q, _view(link, attempt), status))
    item, responses = _check(q, _view(link, attempt), item_id)
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
        session.flush()
        return _state(q, _view(link, attempt), LinkStatus.FINISHED)
    session.flush()
    return _state(q, _view(link, attempt), LinkStatus.LIVE)


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
    normal = _normal(code)
    if normal is None:
        return None
    return session.scalar(select(Campaign.language).join(SurveyLink, SurveyLink.campaign_id == Campaign.id)
                          .where(SurveyLink.code == normal))

