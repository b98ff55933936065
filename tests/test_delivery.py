"""One delivery state machine (core.delivery), raw provider codes kept through the signed
status webhook, reach (trusted delivery or an opened link), prices per carrier and
segment, and the cost summary with its forecast (services.messaging)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from ivr_service.core import delivery
from ivr_service.core.delivery import Delivery, State
from ivr_service.core.messages import UCS2, message_price, parse_prices
from ivr_service.persistence.models import (
    Attempt,
    AttemptStatus,
    Campaign,
    Message,
    MessageStatus,
    OptOut,
    Programme,
    SurveyLink,
)
from ivr_service.providers import ProviderError
from ivr_service.services import messaging
from ivr_service.services.errors import InvalidInput
from ivr_service.services.message_reports import forecast
from ivr_service.services.messaging import ClaimedMessage, MessagePacing

from .conftest import count, row
from .sms_helpers import RecordingMessenger, callback, send, sms_campaign

PRICES = {"*": 300.0, "viettel": 250.0}
VINAPHONE, VIETTEL, MOBIFONE = "0912345678", "0987654321", "0901234567"
API = "/api/v1"


# ============================================================================ mapping tables

@pytest.mark.parametrize("status, state", [
    ("queued", State.ACCEPTED), ("accepted", State.ACCEPTED), ("sending", State.ACCEPTED),
    ("sent", State.SENT), ("delivered", State.DELIVERED), ("read", State.DELIVERED),
    ("undelivered", State.UNDELIVERED), ("failed", State.FAILED)])
def test_twilio_statuses(status: str, state: State) -> None:
    report = delivery.twilio(status, None)
    assert (report.state, report.raw_status) == (state, status)
    assert report.reason is None or report.failed


@pytest.mark.parametrize("code, state, reason, retryable", [
    ("21610", State.UNDELIVERED, "opted_out", False),
    ("30003", State.UNDELIVERED, "unreachable", True),
    ("30005", State.UNDELIVERED, "not_mobile", False),
    ("30006", State.UNDELIVERED, "not_mobile", False),
    ("21614", State.UNDELIVERED, "not_mobile", False),
    ("21211", State.UNDELIVERED, "not_mobile", False),
    ("21612", State.UNDELIVERED, "not_mobile", False),
    ("30007", State.UNDELIVERED, "filtered", True),
    ("30036", State.EXPIRED, "expired", True),
    ("63018", State.UNDELIVERED, "other", True),
    ("99999", State.UNDELIVERED, "other", True),      # unknown: kept raw, "other"
])
def test_twilio_error_codes(code: str, state: State, reason: str, retryable: bool) -> None:
    assert delivery.twilio("undelivered", code) == Delivery(state, retryable, reason, "undelivered", code)  # type: ignore[arg-type]
    assert delivery.simulator("undelivered", code).reason == reason


def test_an_unknown_status_is_refused_by_name() -> None:
    for reader in (delivery.twilio, delivery.esms, delivery.zns):
        with pytest.raises(delivery.UnknownStatus, match="exploded"):
            reader("exploded", None)


@pytest.mark.parametrize("code, state, reason, retryable", [
    ("100", State.ACCEPTED, None, False),
    ("124", State.ACCEPTED, None, False),            # duplicate RequestId: the first was accepted
    ("99", State.FAILED, "opted_out", False),        # number blocked
    ("146", State.FAILED, "content", False),         # not the registered template
    ("103", State.FAILED, "other", True),
    ("777", State.FAILED, "other", True),
])
def test_esms_send_codes(code: str, state: State, reason: str | None, retryable: bool) -> None:
    report = delivery.esms_send(code)
    assert (report.state, report.reason, report.retryable, report.raw_code) == (state, reason, retryable, code)


@pytest.mark.parametrize("status, code, state, reason", [
    ("2", None, State.ACCEPTED, None), ("3", None, State.SENT, None), ("5", None, State.DELIVERED, None),
    ("delivered", None, State.DELIVERED, None), ("4", "146", State.FAILED, "content"),
    ("failed", "99", State.UNDELIVERED, "opted_out"), ("failed", None, State.UNDELIVERED, "other"),
])
def test_esms_delivery_reports(status: str, code: str | None, state: State, reason: str | None) -> None:
    report = delivery.esms(status, code)
    assert (report.state, report.reason, report.raw_status, report.raw_code) == (state, reason, status, code)


@pytest.mark.parametrize("event, code, state, reason, retryable", [
    ("sent", None, State.ACCEPTED, None, False),
    ("user_received_message", None, State.DELIVERED, None, False),
    ("failed", "-118", State.FAILED, "no_zalo", False),     # falls back to SMS
    ("failed", "-119", State.FAILED, "no_zalo", False),
    ("failed", "-139", State.FAILED, "opted_out", False),
    ("failed", "-124", State.FAILED, "other", True),        # access token: refresh and retry
    ("failed", "-133", State.FAILED, "other", True),        # night time: later
    ("failed", "-999", State.FAILED, "other", True),
])
def test_zns_events_and_errors(event: str, code: str | None, state: State, reason: str | None,
                               retryable: bool) -> None:
    report = delivery.zns(event, code)
    assert (report.state, report.reason, report.retryable, report.raw_code) == (state, reason, retryable, code)


def test_states_only_move_forward() -> None:
    assert delivery.advance(None, State.SENT) is State.SENT
    assert delivery.advance(State.ACCEPTED, State.SENT) is State.SENT
    assert delivery.advance(State.SENT, State.ACCEPTED) is State.SENT
    assert delivery.advance(State.ACCEPTED, State.FAILED) is State.FAILED
    for final in delivery.FINAL:
        for new in State:
            assert delivery.advance(final, new) is final
    assert {s.value for s in State} <= {s.value for s in MessageStatus}


def test_trusted_delivery_per_kind() -> None:
    assert delivery.TRUSTED_DELIVERY == {"twilio": False, "esms": True, "zns": True, "simulator": True}
    assert delivery.trusted("twilio") is False and delivery.trusted("twilio", override=True) is True
    assert delivery.trusted("unheard-of") is False


def test_send_time_errors_keep_their_outcomes() -> None:
    assert messaging.delivery_outcome("21610").value == "refused"
    assert messaging.delivery_outcome("30006").value == "invalid_number"
    assert messaging.delivery_outcome("30003").value == "failed"
    assert messaging.delivery_outcome("99", kind="esms").value == "refused"
    assert messaging.delivery_outcome("-118", kind="zns").value == "failed"


# ============================================================================ prices

def test_price_table_parsing_and_lookup() -> None:
    assert parse_prices('{"*": 300, "Viettel": 250}') == PRICES
    for bad in ('[300]', '{}', '{"*": -1}', '{"*": "300"}', 'not json', '{"*": true}'):
        with pytest.raises(ValueError):
            parse_prices(bad)
    assert message_price(PRICES, "Viettel", 2) == 500
    assert message_price(PRICES, "Mobifone", 1) == 300
    assert message_price(PRICES, None, 3) == 900
    assert message_price({"viettel": 250}, "Mobifone", 1) is None
    assert message_price(None, "Viettel", 1) is None


def _pacing(sender: str = "twilio") -> MessagePacing:
    return MessagePacing(sender, 1000.0, timedelta(seconds=60), PRICES)


def _claim(app: Any, sender: str = "twilio") -> list[ClaimedMessage]:
    svc = app.extensions["sipas"]
    return messaging.claim_messages(svc.db, _pacing(sender), svc.clock(), 100, registry=svc.registry,
                                    default_host="http://sipas.test")


def _by_phone(claimed: list[ClaimedMessage]) -> dict[str, ClaimedMessage]:
    return {"0" + c.to[3:]: c for c in claimed}


def test_prices_are_recorded_per_carrier_and_segment_when_accepted(app: Any, make_campaign: Any) -> None:
    campaign_id = sms_campaign(app, make_campaign, [VINAPHONE, VIETTEL, MOBIFONE])
    with app.extensions["sipas"].db.begin() as session:
        # An accented invitation: UCS-2, two segments with its links.
        session.execute(update(Programme).where(Programme.id == session.get(Campaign, campaign_id).programme_id)
                        .values(template="Mời đánh giá: {link} Từ chối: {stop}"))
    claimed = _by_phone(_claim(app))
    assert all(row(app, Message, token=c.token).price is None for c in claimed.values())   # not yet accepted
    messenger = RecordingMessenger(errors=[])
    send(app, messenger, [claimed[VINAPHONE], claimed[VIETTEL]])
    messenger.errors.append(ProviderError("unsubscribed", code="21610", kind="permanent"))
    send(app, messenger, [claimed[MOBIFONE]])
    vina, viettel = row(app, Message, token=claimed[VINAPHONE].token), row(app, Message, token=claimed[VIETTEL].token)
    assert (vina.encoding, vina.segments) == (UCS2, 2)
    assert vina.price == 2 * 300 and viettel.price == 2 * 250
    refused = row(app, Message, token=claimed[MOBIFONE].token)
    assert refused.status is MessageStatus.FAILED and refused.price is None   # never accepted: costs nothing
    assert count(app, OptOut) == 1


def test_a_gsm_message_costs_one_segment(app: Any, make_campaign: Any) -> None:
    sms_campaign(app, make_campaign, [VIETTEL])
    [claimed] = _claim(app)
    send(app, RecordingMessenger(), [claimed])
    message = row(app, Message, token=claimed.token)
    assert (message.encoding, message.segments, message.price) == ("GSM-7", 1, 250)


# ============================================================================ the status webhook

def test_raw_codes_are_kept_through_the_signed_status_webhook(app: Any, make_campaign: Any, client: Any) -> None:
    numbers = {VINAPHONE: "30003", VIETTEL: "30036", MOBIFONE: "63018"}
    campaign_id = sms_campaign(app, make_campaign, list(numbers), plan=[{"channel": "sms", "max_attempts": 2}])
    claimed = _by_phone(_claim(app))
    send(app, RecordingMessenger(), list(claimed.values()))
    for phone, code in numbers.items():
        token = claimed[phone].token
        sid = row(app, Message, token=token).provider_id
        assert callback(client, token, "sent", sid).status_code == 204
        assert row(app, Message, token=token).raw_status == "sent"
        assert callback(client, token, "undelivered", sid, ErrorCode=code).status_code == 204
        assert callback(client, token, "delivered", sid).status_code == 204      # too late: final
    got = {phone: (m.status, m.raw_status, m.error_code) for phone in numbers
           for m in [row(app, Message, token=claimed[phone].token)]}
    assert got == {VINAPHONE: (MessageStatus.UNDELIVERED, "undelivered", "30003"),
                   VIETTEL: (MessageStatus.EXPIRED, "undelivered", "30036"),
                   MOBIFONE: (MessageStatus.UNDELIVERED, "undelivered", "63018")}
    for phone in numbers:   # all retryable: the attempt fails, the contact waits for a retry
        attempt = row(app, Attempt, id=claimed[phone].attempt_id)
        assert (attempt.status, attempt.outcome, attempt.error_code) == (AttemptStatus.FAILED, "failed",
                                                                        numbers[phone])
    summary = _delivery(app, campaign_id)
    assert summary["by_state"] == {"expired": 1, "undelivered": 2}
    assert summary["by_reason"] == {"expired": 1, "other": 1, "unreachable": 1}
    bad = callback(client, claimed[VINAPHONE].token, "exploded", row(app, Message, token=claimed[VINAPHONE].token)
                   .provider_id)
    assert bad.status_code == 400 and "MessageStatus" in bad.get_data(as_text=True)


def test_a_late_sent_never_undoes_a_status_and_raw_status_follows_the_state(app: Any, make_campaign: Any,
                                                                           client: Any) -> None:
    sms_campaign(app, make_campaign, [VINAPHONE])
    [claimed] = _claim(app)
    send(app, RecordingMessenger(), [claimed])
    sid = row(app, Message, token=claimed.token).provider_id
    for status in ("sent", "queued"):
        assert callback(client, claimed.token, status, sid).status_code == 204
    message = row(app, Message, token=claimed.token)
    assert (message.status, message.raw_status) == (MessageStatus.SENT, "sent")


def test_a_callback_before_the_worker_notes_the_send_records_the_price_once(app: Any, make_campaign: Any) -> None:
    sms_campaign(app, make_campaign, [VIETTEL])
    [claimed] = _claim(app)
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        messaging.apply_status(session, svc.registry, claimed.token, "SM" + "d" * 32, "queued", None, svc.clock(),
                               prices={"*": 400.0})
    assert row(app, Message, token=claimed.token).price == 400
    send(app, RecordingMessenger(), [claimed])       # the worker's own quote never overwrites it
    message = row(app, Message, token=claimed.token)
    assert (message.price, message.status) == (400, MessageStatus.ACCEPTED)


# ============================================================================ reach

def _delivery(app: Any, campaign_id: int) -> dict[str, Any]:
    with app.extensions["sipas"].db.begin() as session:
        return messaging.delivery_summary(session, campaign_id=campaign_id)


def test_reach_counts_trusted_deliveries_and_opened_links(app: Any, make_campaign: Any, client: Any,
                                                         clock: Any) -> None:
    phones = [VINAPHONE, VIETTEL, MOBIFONE, "0352222333"]
    campaign_id = sms_campaign(app, make_campaign, phones, plan=[{"channel": "sms", "max_attempts": 2}])
    claimed = _by_phone(_claim(app))
    send(app, RecordingMessenger(), list(claimed.values()))
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        # The opened one; and one sent by a provider whose delivery reports are trusted.
        session.execute(update(SurveyLink).where(SurveyLink.attempt_id == claimed[VIETTEL].attempt_id)
                        .values(opened_at=clock(), opens=1))
        session.execute(update(Message).where(Message.token == claimed[MOBIFONE].token)
                        .values(provider="simulator"))
    for phone, (status, code) in {VINAPHONE: ("delivered", ""), VIETTEL: ("sent", ""),
                                  MOBIFONE: ("delivered", ""), "0352222333": ("undelivered", "21610")}.items():
        token = claimed[phone].token
        assert callback(client, token, status, row(app, Message, token=token).provider_id,
                        ErrorCode=code).status_code == 204
    summary = _delivery(app, campaign_id)
    assert summary == {"messages": 4, "by_state": {"delivered": 2, "sent": 1, "undelivered": 1},
                       "by_reason": {"opted_out": 1}, "link_opened": 1, "links_opened": 1,
                       "reached": 2,                      # simulator's delivered + the opened link
                       "delivered_unconfirmed": 1}        # Twilio in Vietnam said delivered: unproven
    assert count(app, OptOut) == 1


# ============================================================================ costs

def _period_campaign(app: Any, make_campaign: Any, phones: list[str]) -> tuple[int, int]:
    campaign_id = sms_campaign(app, make_campaign, phones)
    with app.extensions["sipas"].db.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        campaign.period_start, campaign.period_end = date(2026, 10, 1), date(2026, 12, 31)   # 2026-Q4
        return campaign_id, campaign.programme_id


def test_cost_summary_and_forecast_with_an_injected_clock(app: Any, make_campaign: Any, clock: Any,
                                                          client: Any) -> None:
    campaign_id, programme_id = _period_campaign(app, make_campaign, [VINAPHONE, VIETTEL, MOBIFONE])
    claimed = _claim(app)
    send(app, RecordingMessenger(), claimed)
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        costs = messaging.cost_summary(session, programme_id=programme_id, now=clock())
    # 09:00 on 17 Nov in Hà Nội: 47 days 9 hours since 1 Oct 00:00, 44 days 15 hours left.
    assert (costs["messages"], costs["segments"], costs["spent"], costs["unpriced"]) == (3, 3, 850.0, 0)
    current = costs["current_period"]
    assert current["label"] == "2026-Q4" and current["campaign_id"] == campaign_id
    assert (current["days_elapsed"], current["days_left"]) == (47.375, 44.625)
    assert current["daily_rate"] == round(850 / 47.375, 2)
    assert current["forecast_rest"] == round(850 / 47.375 * 44.625, 2)
    assert current["forecast_total"] == round(850 + 850 / 47.375 * 44.625, 2)
    [period] = costs["periods"]
    assert period["spent"] == 850.0 and period["period_start"] == date(2026, 10, 1)

    # A day later, nothing more sent: the rate falls, and so does the forecast.
    clock.advance(days=1)
    with svc.db.begin() as session:
        later = messaging.cost_summary(session, programme_id=programme_id, now=clock())["current_period"]
    assert later["daily_rate"] == round(850 / 48.375, 2) and later["days_left"] == 43.625

    shown = client.get(f"{API}/programmes/{programme_id}/costs")
    assert shown.status_code == 200
    assert shown.json["spent"] == 850.0 and shown.json["currency"] == "VND"
    assert shown.json["current_period"]["days_left"] == 43.625
    assert client.get(f"{API}/programmes/999999/costs").status_code == 404
    periods = client.get(f"{API}/programmes/{programme_id}/periods")
    assert periods.status_code == 200
    [row_] = periods.json
    assert row_["cost"]["spent"] == 850.0 and row_["delivery"]["by_state"] == {"accepted": 3}


def test_forecast_formula_edges() -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    end = datetime(2026, 10, 11, tzinfo=UTC)
    assert forecast(0.0, start, end, start)["forecast_total"] == 0
    mid = forecast(100.0, start, end, start + timedelta(days=4))
    assert (mid["daily_rate"], mid["forecast_rest"], mid["forecast_total"]) == (25.0, 150.0, 250.0)
    after = forecast(100.0, start, end, end + timedelta(days=3))
    assert (after["days_left"], after["forecast_total"]) == (0, 100.0)


def test_cost_summary_needs_one_target(app: Any) -> None:
    with app.extensions["sipas"].db.begin() as session:
        with pytest.raises(InvalidInput, match="programme"):
            messaging.cost_summary(session, now=datetime(2026, 11, 17, tzinfo=UTC))
