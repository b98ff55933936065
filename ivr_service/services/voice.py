"""The voice interview: answer a call, apply each key press, record call outcomes.

Called by the telephony webhooks with already-parsed parameters. Each function runs in
one transaction; the caller commits before it renders the reply, so an answer is stored
before the next question is asked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple, Protocol, cast

from sqlalchemy import Table, Update, bindparam, insert, select, update
from sqlalchemy.orm import Session, joinedload

from .. import logs, metrics
from ..core import flow, speech
from ..core.flow import AnswerStatus, Event, Finish, Response
from ..core.policy import CallingWindow, Outcome
from ..core.prompts import Why, instructions_for, spoken_number
from ..core.questionnaire import Item, Questionnaire, QuestionnaireRegistry
from ..persistence.db import dialect_insert
from ..persistence.models import (
    FINAL_ATTEMPT_STATUSES,
    Agency,
    Answer,
    Attempt,
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Contact,
    Interview,
    InterviewStatus,
    NumberCall,
)
from .contacts import Answered, finish_contact, finished, next_step, opt_out, settle_contact
from .errors import Conflict, NotFound, invalid

log = logging.getLogger(__name__)

CALL_STATUSES = {
    "queued": AttemptStatus.INITIATED, "initiated": AttemptStatus.INITIATED,
    "ringing": AttemptStatus.RINGING, "in-progress": AttemptStatus.IN_PROGRESS,
    "completed": AttemptStatus.COMPLETED, "busy": AttemptStatus.BUSY,
    "no-answer": AttemptStatus.NO_ANSWER, "failed": AttemptStatus.FAILED,
    "canceled": AttemptStatus.CANCELED,
}
_RANK = {AttemptStatus.QUEUED: 0, AttemptStatus.INITIATED: 1, AttemptStatus.RINGING: 2,
         AttemptStatus.IN_PROGRESS: 3}


@dataclass(frozen=True)
class VoiceReply:
    """What to say next; the web layer renders it as TwiML."""

    language: str
    notices: tuple[str, ...] = ()          # said before the prompt (intro, "invalid key" …)
    item: Item | None = None               # gather a key for this item
    instructions: str | None = None        # how to answer, said after the item (core.prompts)
    closing: tuple[str, ...] = ()          # said before hanging up
    keys_hint: tuple[str, ...] = ()        # valid keys, after an invalid key (scales without instructions)
    speech: bool = False                   # gather spoken answers as well as keys


@dataclass(frozen=True)
class Spoken:
    """A spoken answer as the provider reported it (Twilio's SpeechResult and Confidence)."""

    text: str
    confidence: float | None


def _attempt(session: Session, attempt_id: int) -> Attempt:
    """The attempt, row-locked, with its campaign, contact, interview and answers (ORM
    objects: reconciliation, and a key press after the call ended).

    Two statements: lock, then load. A statement that waited for the lock sees the locked
    row as committed by the request it waited for, but every joined row (the interview, its
    answers) as they were when it started, so a duplicate webhook delivered at the same
    moment would apply again what the first one just stored. The load, a new statement,
    reads after the lock is held.
    """
    locked = session.scalar(select(Attempt.id).where(Attempt.id == attempt_id).with_for_update())
    if locked is None:
        raise NotFound(f"unknown call attempt {attempt_id!r}")
    query = select(Attempt).where(Attempt.id == locked).execution_options(populate_existing=True).options(
        joinedload(Attempt.campaign),
        # The answers by a second SELECT: joined, each of them would bring the attempt's,
        # campaign's, contact's and interview's columns again, to be parsed again.
        joinedload(Attempt.contact).joinedload(Contact.interview).selectinload(Interview.answers),
    )
    attempt = session.scalars(query).unique().one()
    logs.bind(campaign=attempt.campaign_id, attempt=attempt.id)
    return attempt


def _check_sid(session: Session, attempt_id: int, provider_id: str | None, call_sid: str) -> None:
    """Refuse ``call_sid`` for an attempt bound to another call, or already bound to
    another attempt (which would break the unique provider_id). The latter is looked up
    only when the attempt has no call yet, so the callbacks of a bound call cost no query."""
    if provider_id is None:
        other = session.scalar(select(Attempt.id).where(Attempt.provider_id == call_sid))
        if other is not None:
            log.warning("CallSid %s refused for attempt %s: it is bound to attempt %s", call_sid, attempt_id, other)
            raise Conflict(f"CallSid {call_sid!r} belongs to another call attempt", field="CallSid")
    elif provider_id != call_sid:
        raise Conflict(f"CallSid {call_sid!r} does not belong to this attempt", field="CallSid")


class Stored(Answered, Protocol):
    """An answer as stored, with the call it was given on."""

    @property
    def attempt_id(self) -> int: ...


class Voiced(Protocol):
    """What the prompts need of a campaign (a :class:`Campaign`, or what a key press reads of one)."""

    @property
    def language(self) -> str: ...
    @property
    def speech_input(self) -> bool: ...
    @property
    def hotline(self) -> str | None: ...


def responses_for(q: Questionnaire, answers: Iterable[Stored], attempt_id: int,
                  restart: bool) -> dict[str, Response]:
    """The responses the flow continues from on the call of attempt ``attempt_id``, from
    the interview's ``answers`` in the order they were stored.

    Every answer row is kept; per item the latest counts. Consent is asked on every call,
    so only this call's consent counts; in restart mode only this call's answers count.
    """
    result: dict[str, Response] = {}
    for answer in answers:
        if not q.has_item(answer.item_id):
            continue
        this_call = answer.attempt_id == attempt_id
        if (restart or q.item(answer.item_id).kind == "consent") and not this_call:
            continue
        result[answer.item_id] = Response(answer.value, AnswerStatus(answer.status), answer.digits)
    return result


def _prompt(q: Questionnaire, responses: dict[str, Response], campaign: Voiced,
            notices: tuple[str, ...] = (), previous: Item | None = None,
            heard: frozenset[str] = frozenset(), why: Why = Why.NEXT) -> VoiceReply:
    """Ask the next item (with its scale's instructions where they help), or close the call."""
    lang = campaign.language
    item = flow.next_item(q, responses, "voice")
    if item is None:
        return VoiceReply(lang, notices, closing=_closing(q, responses, campaign))
    instructions = instructions_for(q.instructions, item, previous, heard, why)
    return VoiceReply(lang, notices, item=item, instructions=instructions.get(lang) if instructions else None,
                      speech=campaign.speech_input)


def _closing(q: Questionnaire, responses: dict[str, Response], campaign: Voiced) -> tuple[str, ...]:
    """The goodbye that fits how the call ended: a refusal is confirmed, silence at the
    consent question is not thanked for a survey, a finished survey is thanked and told
    where to say more."""
    lang = campaign.language
    finish = flow.finish_of(q, responses, "voice")
    if finish is Finish.REFUSED:
        return (q.messages["refused"].get(lang),)
    if finish is Finish.NO_CONSENT:
        return (q.messages["no_consent"].get(lang),)
    thanks = q.messages["thanks"].get(lang)
    if not campaign.hotline:
        return (thanks,)
    return (q.messages["closing_contact"].get(lang).replace("{hotline}", spoken_number(campaign.hotline)), thanks)


def _heard(q: Questionnaire, answers: Iterable[Stored], attempt_id: int) -> set[str]:
    """The scales already explained on this call: those of the items answered on it."""
    return {q.item(a.item_id).scale.id for a in answers if a.attempt_id == attempt_id and q.has_item(a.item_id)}


class _Answered(NamedTuple):
    attempt_id: int
    item_id: str
    value: int | None
    status: str
    digits: str


@dataclass(frozen=True)
class _Call:
    """What a key press needs of its call: the attempt (locked), its campaign's voice
    settings, the contact, the interview and its answers in the order they were stored."""

    attempt_id: int
    status: AttemptStatus
    provider_id: str | None
    number: int
    outcome: str | None
    campaign_id: int
    questionnaire_key: str
    language: str
    speech_input: bool
    hotline: str | None
    resume_mode: str
    phone_e164: str
    attempt_count: int
    interview_id: int | None
    retries: int
    repeats: int
    last_request_key: str | None
    answers: tuple[_Answered, ...]
    answered_at: datetime | None = None
    agency: str = ""                       # read only when the call is answered
    contact_id: int = 0

    def may_answer_late(self) -> bool:
        """Whether a key press that arrives after its call's final status still counts.

        A caller may hang up on the last key: the provider then reports the call's end
        while that key is still on its way, and the end can be applied first. The key
        counts when the call was answered by a person and ended normally, and the contact
        has not been called again since."""
        return (self.status is AttemptStatus.COMPLETED and self.outcome != Outcome.MACHINE.value
                and self.attempt_count == self.number)


_A, _CAMPAIGNS, _CONTACTS = cast(Table, Attempt.__table__), Campaign.__table__, cast(Table, Contact.__table__)
_AGENCIES = Agency.__table__
_INTERVIEWS, _ANSWERS = cast(Table, Interview.__table__), cast(Table, Answer.__table__)
# Built once (Core, no ORM): a key press is the busiest request there is. They run on the
# session's connection (``session.connection().execute``), not through ``session.execute``,
# whose ORM layer (autoflush, execution options, ORM result setup) costs about 7 % of a key
# press, profiled: nothing is pending in the session when they run.
_LOCK_CALL = (select(_A.c.id, _A.c.status, _A.c.provider_id, _A.c.number, _A.c.outcome, _A.c.campaign_id,
                     _A.c.contact_id, _A.c.answered_at, _A.c.created_at, _A.c.channel)
              .where(_A.c.token == bindparam("token")).with_for_update())
# A contact with its campaign, its interview and one row per stored answer (one row with
# no answer columns before the first answer).
_CALL_ROWS = (_CONTACTS.join(_CAMPAIGNS, _CAMPAIGNS.c.id == _CONTACTS.c.campaign_id)
              .outerjoin(_INTERVIEWS, _INTERVIEWS.c.contact_id == _CONTACTS.c.id)
              .outerjoin(_ANSWERS, _ANSWERS.c.interview_id == _INTERVIEWS.c.id))


def _call_query(agency: bool) -> Any:
    """What a key press reads of its call (:data:`_CALL_ROWS`); with ``agency``, the
    agency's name last."""
    rows = _CALL_ROWS.join(_AGENCIES, _AGENCIES.c.id == _CAMPAIGNS.c.agency_id) if agency else _CALL_ROWS
    return (select(_CAMPAIGNS.c.questionnaire_key, _CAMPAIGNS.c.language, _CAMPAIGNS.c.speech_input,
                   _CAMPAIGNS.c.hotline, _CAMPAIGNS.c.resume_mode, _CONTACTS.c.phone_e164, _CONTACTS.c.attempt_count,
                   _INTERVIEWS.c.id, _INTERVIEWS.c.retries, _INTERVIEWS.c.repeats, _INTERVIEWS.c.last_request_key,
                   _ANSWERS.c.attempt_id, _ANSWERS.c.item_id, _ANSWERS.c.value, _ANSWERS.c.status,
                   _ANSWERS.c.digits, *((_AGENCIES.c.name,) if agency else ()))
            .select_from(rows).where(_CONTACTS.c.id == bindparam("contact")).order_by(_ANSWERS.c.id))


_READ_CALL = _call_query(agency=False)
_READ_ANSWERED_CALL = _call_query(agency=True)   # the intro names the agency
# A key's answer (its parameters named apart from the interview's, for _WITH_ANSWER).
_ADD_ANSWER = insert(_ANSWERS).values(
    {name: bindparam(f"answer_{name}") for name in ("interview_id", "attempt_id", "item_id", "value", "status",
                                                     "digits", "answered_at", "heard", "confidence")})
# The interview after a key: where it stands, and (ending) how it ended.
_SET_INTERVIEW = (update(_INTERVIEWS).where(_INTERVIEWS.c.id == bindparam("interview"))
                  .values(last_request_key=bindparam("key"), retries=bindparam("n_retries"),
                          repeats=bindparam("n_repeats"), current_item=bindparam("item")))
_END_INTERVIEW = _SET_INTERVIEW.values(status=bindparam("ending"), ended_at=bindparam("at"))
# On PostgreSQL the answer and the interview are one statement, the INSERT a CTE of the
# UPDATE: one round trip fewer per key (of six). Both rows change at once all the same; the
# statements see the same snapshot, and neither reads what the other writes.
_WITH_ANSWER = {statement: statement.add_cte(_ADD_ANSWER.cte("new_answer"))
                for statement in (_SET_INTERVIEW, _END_INTERVIEW)}
# The interview a call starts, or one resumed on a later call.
_ADD_INTERVIEW = insert(_INTERVIEWS)
_RESUME_INTERVIEW = (update(_INTERVIEWS).where(_INTERVIEWS.c.id == bindparam("interview"))
                     .values(retries=0, repeats=0, current_item=bindparam("item")))


class _Locked(NamedTuple):
    """The columns of :data:`_LOCK_CALL`."""

    id: int
    status: AttemptStatus
    provider_id: str | None
    number: int
    outcome: str | None
    campaign_id: int
    contact_id: int
    answered_at: datetime | None
    created_at: datetime
    channel: str


def _lock_call(session: Session, token: str) -> _Locked:
    """The attempt of ``token``, row-locked; the log lines of the request name its
    campaign and attempt from here on."""
    locked = session.connection().execute(_LOCK_CALL, {"token": token}).first()
    if locked is None:
        raise NotFound(f"unknown call attempt {token!r}")
    logs.bind(campaign=locked.campaign_id, attempt=locked.id)
    return _Locked._make(locked)


def _read_call(session: Session, token: str, answering: bool = False) -> _Call:
    """The call of ``token``, its attempt row-locked: two statements, lock then read, for
    the reason :func:`_attempt` gives; ``answering`` reads the agency's name as well."""
    attempt_id, status, provider_id, number, outcome, campaign_id, contact_id, answered_at, *_ = _lock_call(
        session, token)
    rows = session.connection().execute(_READ_ANSWERED_CALL if answering else _READ_CALL,
                                        {"contact": contact_id}).all()
    (questionnaire_key, language, speech_input, hotline, resume_mode, phone, attempt_count,
     interview_id, retries, repeats, last_request_key) = rows[0][:11]
    answers = tuple(_Answered(*row[11:16]) for row in rows if row[12] is not None)
    return _Call(attempt_id, status, provider_id, number, outcome, campaign_id, questionnaire_key, language,
                 speech_input, hotline, resume_mode, phone, attempt_count, interview_id, retries or 0, repeats or 0,
                 last_request_key, answers, answered_at, rows[0][16] if answering else "", contact_id)


def answer_call(session: Session, registry: QuestionnaireRegistry, token: str,
                call_sid: str, answered_by: str | None, now: datetime) -> VoiceReply:
    """The call was answered: greet, and ask the first item not yet answered.

    The attempt is bound to ``call_sid`` and marked in progress and answered (the number's
    24 h cap counts from here); the interview is started, or resumed with its re-prompt
    counts reset. A machine is noted and hung up on; a call whose attempt is already final
    (its status arrived first) is only thanked. Core statements, as for a key press: lock,
    read, then at most four writes.
    """
    call = _read_call(session, token, answering=True)
    _check_sid(session, call.attempt_id, call.provider_id, call_sid)
    q = registry.get(call.questionnaire_key)
    lang = call.language
    changes: dict[str, object] = {} if call.provider_id is not None else {"provider_id": call_sid}
    if call.status in FINAL_ATTEMPT_STATUSES:
        _set_attempt(session, call.attempt_id, changes)
        return VoiceReply(lang, closing=(q.messages["thanks"].get(lang),))
    if answered_by and answered_by.startswith(("machine", "fax")):
        _set_attempt(session, call.attempt_id, {**changes, "outcome": Outcome.MACHINE.value})
        return VoiceReply(lang)
    if _RANK.get(call.status, 9) < _RANK[AttemptStatus.IN_PROGRESS]:
        changes["status"] = AttemptStatus.IN_PROGRESS
    if call.answered_at is None:
        record_connected_call(session, call.phone_e164, now)
        changes["answered_at"] = now
    _set_attempt(session, call.attempt_id, changes)
    responses = responses_for(q, call.answers, call.attempt_id, call.resume_mode == "restart")
    notices: tuple[str, ...] = (q.messages["intro"].get(lang).replace("{agency}", call.agency),)
    if call.speech_input:
        notices += (q.messages["speech_hint"].get(lang),)
    reply = _prompt(q, responses, call, notices=notices)
    current = reply.item.id if reply.item else None
    if call.interview_id is None:
        session.connection().execute(_ADD_INTERVIEW, {
            "contact_id": call.contact_id, "campaign_id": call.campaign_id,
            "questionnaire_key": call.questionnaire_key, "started_at": now, "current_item": current})
    else:
        session.connection().execute(_RESUME_INTERVIEW, {"interview": call.interview_id, "item": current})
    return reply


def _set_attempt(session: Session, attempt_id: int, changes: dict[str, object]) -> None:
    if changes:
        session.connection().execute(update(_A).where(_A.c.id == attempt_id).values(changes))


def gather(session: Session, registry: QuestionnaireRegistry, token: str, call_sid: str,
           item_id: str, digits: str | None, now: datetime, request_key: str | None = None,
           spoken: Spoken | None = None) -> VoiceReply:
    """Apply one key press, spoken answer or silence for ``item_id``.

    A repeated or late request for an item that is no longer the current one changes
    nothing and re-asks the current item. A retried request (same ``request_key``, Twilio's
    I-Twilio-Idempotency-Token) is answered again but applied only once, so a retried
    invalid key or silence does not use up a re-prompt. Keys win over speech; speech
    counts only on campaigns that accept it. An answer that arrives after the call's final
    status is still recorded when the call ended normally (:meth:`_Call.may_answer_late`),
    and the attempt's outcome is worked out again.

    The busiest request: read in two statements, written in one on PostgreSQL and two
    elsewhere (the answer, the interview: :func:`_record_key`), with no ORM objects but
    where a call ends by it.
    """
    call = _read_call(session, token)
    if call.provider_id is not None and call.provider_id != call_sid:
        raise Conflict(f"CallSid {call_sid!r} does not belong to this attempt", field="CallSid")
    q = registry.get(call.questionnaire_key)
    if not q.has_item(item_id):
        raise invalid("item", f"{item_id!r} is not an item of questionnaire {q.key}")
    if digits is not None and len(digits) > 8:
        raise invalid("Digits", f"expected at most 8 keys, got {len(digits)}")
    if call.interview_id is None:
        raise Conflict("this call has not been answered yet")
    responses = responses_for(q, call.answers, call.attempt_id, call.resume_mode == "restart")
    current = flow.next_item(q, responses, "voice")
    ended = call.status in FINAL_ATTEMPT_STATUSES
    if current is None or current.id != item_id or (ended and not call.may_answer_late()):
        return _prompt(q, responses, call, why=Why.AGAIN)
    if request_key is not None and request_key == call.last_request_key:
        return _prompt(q, responses, call, why=Why.AGAIN)

    keys = (digits or "").strip()
    heard = None
    if not keys and spoken is not None and spoken.text.strip() and call.speech_input:
        heard = spoken
        event, response = understand(q, current, spoken, call.language)
    else:
        event, response = flow.interpret(q, current, keys)
    result = flow.apply(q, responses, call.retries, call.repeats, event, response, keys, "voice")
    if ended and result.response is None:
        return _prompt(q, responses, call, why=Why.AGAIN)  # the call is over: no re-prompt to count
    interview: dict[str, object] = {
        "interview": call.interview_id, "key": request_key, "n_retries": result.retries,
        "n_repeats": result.repeats, "item": result.next_item.id if result.next_item else None}
    explained = frozenset(_heard(q, call.answers, call.attempt_id) | {current.scale.id})
    answer: dict[str, object] | None = None
    if result.response is not None:
        answer = {
            "answer_interview_id": call.interview_id, "answer_attempt_id": call.attempt_id, "answer_item_id": item_id,
            "answer_value": result.response.value, "answer_status": result.response.status.value,
            "answer_digits": result.response.digits, "answer_answered_at": now,
            "answer_heard": heard.text.strip()[:200] if heard else None,
            "answer_confidence": heard.confidence if heard else None}
        responses[item_id] = result.response
    lang = call.language
    notices: tuple[str, ...] = ()
    if result.event in (Event.INVALID, Event.NOT_UNDERSTOOD, Event.NO_INPUT):
        notices = (q.messages[NOTICES[result.event]].get(lang),)
    elif result.event is Event.GAVE_UP and result.next_item is not None:
        notices = (q.messages["moving_on"].get(lang),)
    if result.finish is Finish.REFUSED:
        _record_key(session, _END_INTERVIEW, {**interview, "ending": InterviewStatus.REFUSED, "at": now}, answer)
        opt_out(session, call.phone_e164, source="ivr", campaign_id=call.campaign_id, now=now)
    elif result.finish is Finish.COMPLETE:
        # The questionnaire reached its end; how complete it is depends on the answers.
        ending = InterviewStatus(flow.disposition(q, responses, "voice").value)
        _record_key(session, _END_INTERVIEW, {**interview, "ending": ending, "at": now}, answer)
    else:
        _record_key(session, _SET_INTERVIEW, interview, answer)
    if ended:
        attempt = _attempt(session, call.attempt_id)
        _settle_again(session, q, attempt, attempt.contact, attempt.campaign, now)
    again = result.next_item is not None and result.next_item.id == current.id
    reply = _prompt(q, responses, call, notices, previous=current, heard=explained,
                    why=Why.AGAIN if again else Why.NEXT)
    if result.event is Event.INVALID and reply.item is not None and reply.instructions is None:
        reply = replace(reply, keys_hint=reply.item.scale.valid_keys)
    return reply


def _record_key(session: Session, statement: Update, interview: dict[str, object],
                answer: dict[str, object] | None) -> None:
    """Store a key's answer, if it gave one, and the interview after it (``statement``,
    :data:`_SET_INTERVIEW` or :data:`_END_INTERVIEW`): one statement on PostgreSQL
    (:data:`_WITH_ANSWER`), two elsewhere (SQLite has no INSERT in a WITH clause)."""
    conn = session.connection()
    if answer is None:
        conn.execute(statement, interview)
    elif conn.dialect.name == "postgresql":
        conn.execute(_WITH_ANSWER[statement], {**interview, **answer})
    else:
        conn.execute(_ADD_ANSWER, answer)
        conn.execute(statement, interview)


def _settle_again(session: Session, q: Questionnaire, attempt: Attempt, contact: Contact, campaign: Campaign,
                  now: datetime) -> None:
    """After a late answer: the attempt's outcome and the contact's next step, by the answers now stored
    (the final status stays as reported)."""
    restart = campaign.resume_mode == "restart"
    outcome, finished = _outcome(q, attempt.id, attempt.outcome, _answers_of(contact), restart, attempt.status, None)
    log.info("attempt %s: answer after the call ended, outcome %s -> %s", attempt.id, attempt.outcome,
             outcome.value)
    attempt.outcome = outcome.value
    if finished:
        finish_contact(session, contact, outcome, now)
    else:
        settle_contact(session, q, contact, campaign, outcome, now, previous_start=attempt.created_at)


NOTICES = {Event.INVALID: "invalid", Event.NOT_UNDERSTOOD: "not_understood", Event.NO_INPUT: "no_input"}


def understand(q: Questionnaire, item: Item, spoken: Spoken, language: str) -> tuple[Event, Response | None]:
    """What a spoken answer means for ``item``: the key its words stand for (by the
    scale's table for the campaign's language), or not understood when the recogniser
    was unsure or the words are not on the scale."""
    if spoken.confidence is not None and spoken.confidence < q.speech_min_confidence:
        return Event.NOT_UNDERSTOOD, None
    key = speech.match(spoken.text, item.scale.speech.get(language, ()), item.scale.valid_keys)
    if key is None:
        return Event.NOT_UNDERSTOOD, None
    event, response = flow.interpret(q, item, key)
    if response is None:
        return Event.NOT_UNDERSTOOD, None
    return event, replace(response, digits="")


def call_status(session: Session, registry: QuestionnaireRegistry, token: str, call_sid: str,
                status: str, duration: int | None, error_code: str | None, answered_by: str | None,
                now: datetime) -> None:
    """Apply a status callback. Late or out-of-order callbacks never undo a final status.

    Core statements on the rows themselves: a call's progress (initiated, ringing, in
    progress) is two, on the attempt; its end locks the attempt, reads the contact with
    its campaign's schedule and the interview's answers, and writes the attempt, the
    contact and, when the contact is finished with an interview left in progress, the
    interview. :func:`end_call` does the same through the ORM for reconciliation."""
    new_status = call_status_of(status)
    if new_status not in FINAL_ATTEMPT_STATUSES:
        _progress(session, token, call_sid, new_status)
        return
    locked = _lock_call(session, token)
    _check_sid(session, locked.id, locked.provider_id, call_sid)
    bound: dict[str, object] = {} if locked.provider_id is not None else {"provider_id": call_sid}
    if locked.status in FINAL_ATTEMPT_STATUSES:
        _set_attempt(session, locked.id, bound)
        return
    rows = session.connection().execute(_READ_END, {"contact": locked.contact_id}).all()
    first = rows[0]
    schedule = _Schedule(*first[:6])
    q = registry.get(first.questionnaire_key)
    answers = tuple(_Answered(*row[-5:]) for row in rows if row.item_id is not None)
    interview = (None if first.interview_id is None
                 else _Interviewed(first.interview_status, first.interview_channel, answers))
    outcome, finished_here = _outcome(q, locked.id, locked.outcome, answers if interview else None,
                                      first.resume_mode == "restart", new_status, answered_by)
    _set_attempt(session, locked.id, {**bound, "status": new_status, "ended_at": now, "duration_s": duration,
                                      "error_code": error_code, "outcome": outcome.value})
    metrics.ATTEMPTS.labels(channel=locked.channel, outcome=outcome.value).inc()
    log.info("attempt %s: call ended (%s, %s)", locked.id, new_status.value, outcome.value)
    channel, channel_attempts = first.contact_channel, first.channel_attempts
    step = (finished(interview, channel, channel_attempts, outcome) if finished_here
            # Every item was asked: nothing is left to resume, whatever the answers were.
            else next_step(q, schedule, interview, channel, channel_attempts, outcome, now,
                           previous_start=locked.created_at))
    session.connection().execute(update(_CONTACTS).where(_CONTACTS.c.id == locked.contact_id).values(step.columns()))
    if step.interview_status is not None:
        session.connection().execute(_END_DROPPED, {"interview": first.interview_id,
                                                    "ending": step.interview_status, "at": now})


@dataclass(frozen=True)
class _Schedule:
    """What a contact's next step needs of its campaign (contacts.Scheduled), as read at a call's end."""

    status: CampaignStatus
    window: dict[str, Any] | None
    timezone: str
    retry: dict[str, Any]
    channel_plan: list[dict[str, Any]]
    ends_at: datetime | None

    def calling_window(self) -> CallingWindow:
        return CallingWindow.of_campaign(self.window, self.timezone)


class _Interviewed(NamedTuple):
    status: InterviewStatus
    channel: str
    answers: tuple[_Answered, ...]


# The contact of an ending call, its campaign's schedule and its interview: one row per answer.
_READ_END = (
    select(_CAMPAIGNS.c.status, _CAMPAIGNS.c.window, _CAMPAIGNS.c.timezone, _CAMPAIGNS.c.retry,
           _CAMPAIGNS.c.channel_plan, _CAMPAIGNS.c.ends_at, _CAMPAIGNS.c.questionnaire_key, _CAMPAIGNS.c.resume_mode,
           _CONTACTS.c.channel.label("contact_channel"), _CONTACTS.c.channel_attempts,
           _INTERVIEWS.c.id.label("interview_id"), _INTERVIEWS.c.status.label("interview_status"),
           _INTERVIEWS.c.channel.label("interview_channel"),
           _ANSWERS.c.attempt_id, _ANSWERS.c.item_id, _ANSWERS.c.value, _ANSWERS.c.status, _ANSWERS.c.digits)
    .select_from(_CALL_ROWS).where(_CONTACTS.c.id == bindparam("contact")).order_by(_ANSWERS.c.id))
_END_DROPPED = (update(_INTERVIEWS).where(_INTERVIEWS.c.id == bindparam("interview"))
                .values(status=bindparam("ending"), ended_at=bindparam("at")))


_SET_PROGRESS = (update(_A).where(_A.c.id == bindparam("attempt"))
                 .values(status=bindparam("progress"), provider_id=bindparam("sid")))


def _progress(session: Session, token: str, call_sid: str, new_status: AttemptStatus) -> None:
    """A live call's status moves forward only, and never past a final one."""
    attempt_id, status, provider_id, *_ = _lock_call(session, token)
    _check_sid(session, attempt_id, provider_id, call_sid)
    if status in FINAL_ATTEMPT_STATUSES:
        return
    forward = _RANK[new_status] > _RANK.get(status, 0)
    if forward or provider_id is None:
        session.connection().execute(_SET_PROGRESS, {"attempt": attempt_id,
                                                     "progress": new_status if forward else status, "sid": call_sid})


def call_status_of(status: str) -> AttemptStatus:
    """The attempt status for a provider's call status ("no-answer" → NO_ANSWER)."""
    new_status = CALL_STATUSES.get(status)
    if new_status is None:
        raise invalid("CallStatus", f"unknown value {status!r}; expected one of {sorted(CALL_STATUSES)}")
    return new_status


def reconcile_call(session: Session, registry: QuestionnaireRegistry, attempt_id: int, status: str | None,
                   duration: int | None, now: datetime) -> bool:
    """Close a call that never reported a final status, by what the provider says of it
    (``status``), or as failed and lost when the provider does not know it (``None``).
    Returns False when a callback closed it meanwhile."""
    attempt = _attempt(session, attempt_id)
    if attempt.status in FINAL_ATTEMPT_STATUSES:
        return False
    if status is None:
        end_call(session, registry, attempt, AttemptStatus.FAILED, None, "lost", None, now)
        return True
    new_status = call_status_of(status)
    if new_status not in FINAL_ATTEMPT_STATUSES:
        return False  # still live on the provider's side
    end_call(session, registry, attempt, new_status, duration, None, None, now)
    return True


def end_call(session: Session, registry: QuestionnaireRegistry, attempt: Attempt, new_status: AttemptStatus,
             duration: int | None, error_code: str | None, answered_by: str | None, now: datetime) -> None:
    """Record a call's final status and outcome, then settle its contact."""
    attempt.status = new_status
    attempt.ended_at = now
    attempt.duration_s = duration
    attempt.error_code = error_code
    campaign = attempt.campaign
    contact = attempt.contact
    q = registry.get(campaign.questionnaire_key)
    restart = campaign.resume_mode == "restart"
    outcome, finished = _outcome(q, attempt.id, attempt.outcome, _answers_of(contact), restart, new_status,
                                 answered_by)
    attempt.outcome = outcome.value
    metrics.ATTEMPTS.labels(channel=attempt.channel, outcome=outcome.value).inc()
    log.info("attempt %s: call ended (%s, %s)", attempt.id, new_status.value, outcome.value)
    if finished:
        # Every item was asked: nothing is left to resume, whatever the answers were.
        finish_contact(session, contact, outcome, now)
    else:
        settle_contact(session, q, contact, campaign, outcome, now, previous_start=attempt.created_at)


def _outcome(q: Questionnaire, attempt_id: int, outcome_so_far: str | None, answers: Sequence[Stored] | None,
             restart: bool, status: AttemptStatus, answered_by: str | None) -> tuple[Outcome, bool]:
    """The attempt's outcome, and whether the questionnaire reached its end on it;
    ``answers`` are the interview's (None: no interview)."""
    if status is AttemptStatus.BUSY:
        return Outcome.BUSY, False
    if status is AttemptStatus.NO_ANSWER:
        return Outcome.NO_ANSWER, False
    if status is AttemptStatus.FAILED:
        return Outcome.FAILED, False
    if status is AttemptStatus.CANCELED:
        return Outcome.CANCELED, False
    if outcome_so_far == Outcome.MACHINE.value:
        return Outcome.MACHINE, False
    answered_here = answers is not None and any(a.attempt_id == attempt_id for a in answers)
    # AnsweredBy in the final callback alone never overrides keys a person pressed on this call.
    if (answered_by or "").startswith(("machine", "fax")) and not answered_here:
        return Outcome.MACHINE, False
    if answers is None:
        return Outcome.BREAK_OFF, False
    responses = responses_for(q, answers, attempt_id, restart)
    disposition = flow.disposition(q, responses, "voice")
    outcome = {
        flow.Disposition.COMPLETE: Outcome.COMPLETED,
        flow.Disposition.REFUSED: Outcome.REFUSED,
        flow.Disposition.PARTIAL: Outcome.PARTIAL,
        flow.Disposition.BREAK_OFF: Outcome.BREAK_OFF,
    }[disposition]
    return outcome, flow.finish_of(q, responses, "voice") is Finish.COMPLETE


def _answers_of(contact: Contact) -> list[Answer] | None:
    return contact.interview.answers if contact.interview is not None else None


def record_connected_call(session: Session, phone_e164: str, now: datetime) -> None:
    """Note that a person answered at this number now (the per-number 24 h cap)."""
    table = NumberCall.__table__
    statement = dialect_insert(session)(table).values(phone_e164=phone_e164, last_call_at=now)
    session.execute(statement.on_conflict_do_update(index_elements=[table.c.phone_e164],
                                                    set_={"last_call_at": statement.excluded.last_call_at}))
