"""How long a campaign's calls take and what they cost: observed, and expected from the
call estimate.

Observed. Every voice attempt that connected (final status ``completed`` with a duration
over 0 s) is billed per started minute, ceil(duration / 60), at the price of its number's
carrier (core.phones, as SMS prices are) in ``SIPAS_VOICE_PRICES``. The cost per complete
divides the cost of all the campaign's calls by its complete interviews (AAPOR 1.1, as
progress counts them): the refusals, break-offs and machines on the way are part of what
a complete costs. The mean duration is that of the calls that completed the questionnaire.

Expected. :func:`core.estimate.estimate` of the campaign's questionnaire, language and
options (its agency's name, the speech hint, its hotline), and what the longest and the
shortest complete call cost in started minutes at the ``*`` price.

One aggregate over the campaign's connected calls; with prices by carrier, joined to the
contacts and grouped by the first five characters and the length of the number: a
number's carrier depends on nothing else (a 10-digit mobile by its prefix, anything else
has none), so one number of each group, looked up through core.phones, names the carrier
of the whole group. Unlike the progress counts this grows with the campaign: on the
development machine about 0.3 s at 300,000 connected calls with one price, 1.3 s with
prices by carrier (PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, case, func, literal, select
from sqlalchemy.orm import Session

from ..core import estimate
from ..core.estimate import DEFAULT_PACE, Estimate, Pace
from ..core.messages import unit_price
from ..core.names import check_name
from ..core.phones import normalise
from ..core.policy import Outcome
from ..core.questionnaire import INSTRUCTION_MODES, LANGUAGES, QuestionnaireRegistry
from ..persistence import tallies
from ..persistence.models import Attempt, AttemptStatus, Contact
from ..settings import Settings
from .campaigns import check_hotline, get_campaign
from .errors import NotFound, invalid

CURRENCY = "VND"
COMPLETE = "1.1"                 # AAPOR complete interview


@dataclass(frozen=True)
class Costing:
    """What the figures need from the settings: the pace of a call and the call prices."""

    pace: Pace = DEFAULT_PACE
    prices: Mapping[str, float] | None = None     # VND per started minute by carrier ("*": the others)

    @classmethod
    def from_settings(cls, settings: Settings) -> Costing:
        return cls(settings.call_pace, settings.voice_price_table)


DEFAULT_COSTING = Costing()       # the default pace, no prices


@dataclass(frozen=True)
class ExpectedCall:
    """A complete call of the campaign as estimated (core.estimate)."""

    longest_seconds: float
    shortest_seconds: float
    longest_minutes: int                 # started minutes
    shortest_minutes: int
    longest_cost: float | None           # started minutes × the "*" price; None without one
    shortest_cost: float | None


@dataclass(frozen=True)
class CallCosts:
    currency: str
    calls: int                           # connected calls, each billed
    billed_minutes: int                  # every started minute of them
    mean_call_seconds: float | None
    complete_calls: int                  # calls that completed the questionnaire
    mean_complete_seconds: float | None
    completes: int                       # complete interviews (AAPOR 1.1)
    cost: float | None                   # VND; None without SIPAS_VOICE_PRICES
    cost_per_complete: float | None
    unpriced_calls: int                  # connected calls whose carrier has no price (and no "*")
    expected: ExpectedCall


def expected_call(found: Estimate, prices: Mapping[str, float] | None) -> ExpectedCall:
    """The figures of an estimate, priced at the ``*`` price per started minute."""
    per_minute = unit_price(prices, None)
    longest, shortest = found.longest, found.shortest
    return ExpectedCall(
        longest_seconds=round(longest.call_seconds, 1), shortest_seconds=round(shortest.call_seconds, 1),
        longest_minutes=longest.minutes, shortest_minutes=shortest.minutes,
        longest_cost=None if per_minute is None else longest.minutes * per_minute,
        shortest_cost=None if per_minute is None else shortest.minutes * per_minute)


def questionnaire_estimate(registry: QuestionnaireRegistry, key: str, language: str = "vi", *,
                           speech: bool = False, hotline: str | None = None, agency: str | None = None,
                           instructions: str | None = None, pace: Pace = DEFAULT_PACE) -> Estimate:
    """The estimate of a questionnaire's complete call with the options a campaign may
    have (the API and the command line); ``agency`` defaults to a name of ordinary length."""
    if key not in registry.keys():
        raise NotFound(f"questionnaire {key!r} not found; available: {', '.join(registry.keys())}")
    if language not in LANGUAGES:
        raise invalid("language", f"expected one of {', '.join(LANGUAGES)}, got {language!r}")
    if instructions is not None and instructions not in INSTRUCTION_MODES:
        raise invalid("instructions", f"expected one of {', '.join(INSTRUCTION_MODES)}, got {instructions!r}")
    try:
        name = estimate.SAMPLE_AGENCY if agency is None else check_name(agency)
    except ValueError as exc:
        raise invalid("agency", str(exc)) from None
    return estimate.estimate(registry.get(key), language, speech=speech, hotline=check_hotline(hotline),
                             agency=name, pace=pace, instructions=instructions)


def figures(found: Estimate, prices: Mapping[str, float] | None) -> dict[str, Any]:
    """An estimate as the API and the command line give it, each path priced in started
    minutes at the ``*`` price."""
    per_minute = unit_price(prices, None)
    return {
        "questionnaire": found.questionnaire, "language": found.language, "instructions": found.instructions,
        "speech": found.speech, "hotline": found.hotline, "agency": found.agency,
        "speaking_rate": found.pace.speaking_rate, "answer_seconds": found.pace.answer_seconds,
        "voice_items": found.voice_items, "currency": CURRENCY,
        **{path.name: {
            "choices": dict(path.choices), "items": list(path.items), "says": list(path.says),
            "characters": path.characters, "audio_seconds": path.audio_seconds,
            "unmeasured_audio": list(path.unmeasured_audio), "spoken_seconds": round(path.spoken_seconds, 1),
            "call_seconds": round(path.call_seconds, 1), "minutes": path.minutes,
            "cost": None if per_minute is None else path.minutes * per_minute,
        } for path in found.paths},
    }


def campaign_estimate(session: Session, registry: QuestionnaireRegistry, campaign_id: int,
                      pace: Pace = DEFAULT_PACE) -> Estimate:
    """The estimate of a campaign's complete call: its questionnaire, language, agency,
    speech hint and hotline."""
    campaign = get_campaign(session, campaign_id)
    return estimate.estimate(registry.get(campaign.questionnaire_key), campaign.language,
                             speech=campaign.speech_input, hotline=campaign.hotline,
                             agency=campaign.agency.name, pace=pace)


def campaign_costs(session: Session, registry: QuestionnaireRegistry, campaign_id: int,
                   costing: Costing = DEFAULT_COSTING) -> CallCosts:
    """The call figures of one campaign (see the module docstring)."""
    found = campaign_estimate(session, registry, campaign_id, costing.pace)
    completed = Attempt.outcome == Outcome.COMPLETED.value
    sums = (func.count(), func.sum((Attempt.duration_s + 59) // 60), func.sum(Attempt.duration_s),
               func.sum(case((completed, 1), else_=0)), func.sum(case((completed, Attempt.duration_s), else_=0)))
    connected = select().where(Attempt.campaign_id == campaign_id, Attempt.status == AttemptStatus.COMPLETED,
                               Attempt.channel == "voice", Attempt.duration_s > 0)
    if any(carrier != "*" for carrier in costing.prices or {}):
        groups = session.execute(
            connected.add_columns(func.min(Contact.phone_e164), *sums)
            .join(Contact, Contact.id == Attempt.contact_id)
            .group_by(func.substr(Contact.phone_e164, 1, 5), func.length(Contact.phone_e164))).all()
    else:
        # One price for every carrier, or none: no need to know the numbers (half the work).
        groups = session.execute(connected.add_columns(literal(None, String), *sums).select_from(Attempt)).all()
    calls = minutes = seconds = complete_calls = complete_seconds = unpriced = 0
    cost = 0.0
    for number, n, billed, duration, n_complete, complete_duration in groups:
        if not n:
            continue      # no connected call: one row of nulls
        calls, minutes, seconds = calls + n, minutes + int(billed), seconds + int(duration)
        complete_calls, complete_seconds = complete_calls + int(n_complete), complete_seconds + int(complete_duration)
        per_minute = unit_price(costing.prices, normalise(number).carrier if number else None)
        if per_minute is None:
            unpriced += n
        else:
            cost += int(billed) * per_minute
    counted = tallies.tallies(session, campaign_id)["contact"]
    completes = sum(n for key, n in counted.items() if key.partition(":")[2] == COMPLETE)
    priced = costing.prices is not None
    return CallCosts(
        currency=CURRENCY, calls=calls, billed_minutes=minutes,
        mean_call_seconds=round(seconds / calls, 1) if calls else None,
        complete_calls=complete_calls,
        mean_complete_seconds=round(complete_seconds / complete_calls, 1) if complete_calls else None,
        completes=completes, cost=cost if priced else None,
        cost_per_complete=round(cost / completes, 1) if priced and completes else None,
        unpriced_calls=unpriced if priced else calls,
        expected=expected_call(found, costing.prices))
