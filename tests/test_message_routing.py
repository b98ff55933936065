"""A programme routed through messaging accounts end to end, against the local stand-ins
of Zalo (tests/test_zns.py) and eSMS (tests/test_esms.py): ZNS first, and an SMS through
the next account of the routing for a number without Zalo; each account's prices; and
each account's trust in its own delivery reports."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from ivr_service import create_app
from ivr_service.persistence.models import Attempt, AttemptStatus, Campaign, Message, MessageStatus, Programme, ZnsToken
from ivr_service.services import messaging, messaging_accounts, zns_tokens
from ivr_service.services.errors import InvalidInput
from ivr_service.worker import Worker

from .conftest import phones, row, scalars
from .sms_helpers import RecordingMessenger, sms_campaign
from .test_esms import API_KEY, SECRET_KEY, FakeEsms, esms_api, esms_callback  # noqa: F401  (fixture)
from .test_zns import APP_ID, APP_SECRET, OA_SECRET, TEMPLATE_ID, FakeZalo, zalo  # noqa: F401  (fixture)

NO_ZALO = {"error": -118, "message": "Zalo account not existed"}


@pytest.fixture
def routed_app(make_settings: Any, clock: Any, zalo: FakeZalo) -> Any:  # noqa: F811
    """The installation prices 500 VND a segment; its Zalo app is not the accounts' one."""
    application = create_app(make_settings(zalo_oauth_url=zalo.url, zalo_app_id="other-app",
                                           zalo_app_secret="other-secret", zalo_oa_secret=OA_SECRET,
                                           sms_prices='{"*": 500}'), clock=clock)
    yield application
    application.extensions["sipas"].db.dispose()


def route(app: Any, make_campaign: Any, zalo: FakeZalo, esms: FakeEsms, n: int,  # noqa: F811
          esms_prices: dict[str, float] | None = None) -> tuple[Worker, RecordingMessenger, int, int]:
    """A programme campaign routed [zns account, esms account] of its agency."""
    svc = app.extensions["sipas"]
    campaign_id = sms_campaign(app, make_campaign, phones(n), reminder_hours=None)
    with svc.db.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        zns = messaging_accounts.create_account(
            session, agency_id=campaign.agency_id, name="Zalo OA Sở TNMT", kind="zns", now=svc.clock(),
            credentials={"app_id": APP_ID, "secret_key": APP_SECRET, "refresh_token": "RT-0",
                         "template_id": TEMPLATE_ID}, base_url=zalo.url)
        sms = messaging_accounts.create_account(
            session, agency_id=campaign.agency_id, name="eSMS Sở TNMT", kind="esms", now=svc.clock(),
            credentials={"api_key": API_KEY, "secret_key": SECRET_KEY}, sender="SoTNMT", base_url=esms.url,
            prices=esms_prices)
        programme = session.get(Programme, campaign.programme_id)
        assert programme is not None
        programme.routing = messaging_accounts.check_routing(session, campaign.agency_id, [zns.id, sms.id])
        zns_id, sms_id = zns.id, sms.id
    installation = RecordingMessenger()
    worker = Worker(app, messenger=installation)
    worker.message_pacing = replace(worker.message_pacing, per_second=1000.0)
    return worker, installation, zns_id, sms_id


def test_zns_first_then_sms_through_the_next_account_for_a_number_without_zalo(
        routed_app: Any, make_campaign: Any, clock: Any, zalo: FakeZalo, esms_api: FakeEsms) -> None:  # noqa: F811
    worker, installation, zns_id, sms_id = route(routed_app, make_campaign, zalo, esms_api, 2, {"*": 300})
    zalo.replies.append(NO_ZALO)                       # the first number has no Zalo account
    assert worker.messages() == 2
    # The account's own app renewed the token its refresh_token credential started.
    [(headers, form)] = zalo.refreshes
    assert (headers["secret_key"], form["app_id"], form["refresh_token"]) == (APP_SECRET, APP_ID, "RT-0")
    assert row(routed_app, ZnsToken, account_key=zns_tokens.account_key(zns_id)).refresh_token == "RT-1"
    no_zalo, with_zalo = (body["phone"] for _headers, body in zalo.sends)
    assert {body["template_id"] for _h, body in zalo.sends} == {TEMPLATE_ID}
    assert esms_api.requests == [] and installation.requests == []

    zns_messages = scalars(routed_app, select(Message).where(Message.account_id == zns_id).order_by(Message.id))
    failed = next(m for m in zns_messages if m.phone_e164 == f"+{no_zalo}")
    reached = next(m for m in zns_messages if m.phone_e164 == f"+{with_zalo}")
    assert (failed.provider, failed.status, failed.error_code, failed.price) == (
        "zns", MessageStatus.FAILED, "-118", None)
    assert reached.status is MessageStatus.ACCEPTED and reached.provider_id
    assert reached.price == 500 * reached.segments      # no account prices: the installation's
    fallback = row(routed_app, Message, fallback_of_id=failed.id)
    assert (fallback.account_id, fallback.provider, fallback.status, fallback.attempt_id) == (
        sms_id, "esms", MessageStatus.QUEUED, failed.attempt_id)
    assert row(routed_app, Attempt, id=failed.attempt_id).status is AttemptStatus.QUEUED

    clock.advance(seconds=1)
    assert worker.messages() == 1                      # the next round sends the SMS through eSMS
    [request] = esms_api.requests
    assert (request["Phone"], request["RequestId"], request["Brandname"]) == (
        "0" + no_zalo[2:], fallback.token, "SoTNMT")
    assert request["Content"] == fallback.body
    sent = row(routed_app, Message, id=fallback.id)
    assert sent.status is MessageStatus.ACCEPTED and sent.provider_id
    assert sent.price == 300 * sent.segments           # the eSMS account's price table
    assert row(routed_app, Attempt, id=failed.attempt_id).status is AttemptStatus.IN_PROGRESS
    assert len(zalo.sends) == 2 and installation.requests == []

    clock.advance(minutes=10)
    assert worker.messages() == 0                      # nothing more: the Zalo number got only ZNS
    assert scalars(routed_app, select(Message.phone_e164).where(Message.account_id == sms_id)) == [f"+{no_zalo}"]
    worker.close()


def test_a_zns_account_last_in_the_routing_ends_the_attempt(routed_app: Any, make_campaign: Any,
                                                           zalo: FakeZalo, esms_api: FakeEsms) -> None:  # noqa: F811
    worker, _installation, zns_id, sms_id = route(routed_app, make_campaign, zalo, esms_api, 1)
    svc = routed_app.extensions["sipas"]
    with svc.db.begin() as session:
        messaging_accounts.deactivate_account(session, sms_id, svc.clock())
    zalo.replies.append(NO_ZALO)
    worker.messages()
    [message] = scalars(routed_app, select(Message))
    assert (message.account_id, message.status) == (zns_id, MessageStatus.FAILED)
    assert row(routed_app, Attempt, id=message.attempt_id).status is AttemptStatus.FAILED
    worker.close()


@pytest.mark.parametrize("credentials, words", [
    ({"app_id": APP_ID, "secret_key": APP_SECRET}, "template_id is required"),
    ({"template_id": TEMPLATE_ID, "app_id": APP_ID}, "app_id and secret_key go together"),
    ({"template_id": TEMPLATE_ID, "token": "x"}, "unknown key(s) token"),
])
def test_zns_account_credentials_are_checked(routed_app: Any, credentials: dict[str, str], words: str) -> None:
    svc = routed_app.extensions["sipas"]
    with svc.db.begin() as session, pytest.raises(InvalidInput) as raised:
        messaging_accounts.create_account(session, agency_id=None, name="ZNS", kind="zns", now=svc.clock(),
                                          credentials=credentials)
    assert raised.value.field == "credentials" and words in str(raised.value)
    assert APP_SECRET not in str(raised.value)


def test_a_zns_account_without_its_own_app_uses_the_installations(make_settings: Any, clock: Any,
                                                                  make_campaign: Any, zalo: FakeZalo) -> None:  # noqa: F811
    app = create_app(make_settings(zalo_oauth_url=zalo.url, zalo_app_id=APP_ID, zalo_app_secret=APP_SECRET),
                     clock=clock)
    svc = app.extensions["sipas"]
    campaign_id = sms_campaign(app, make_campaign, phones(1), reminder_hours=None)
    with svc.db.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        account = messaging_accounts.create_account(
            session, agency_id=None, name="ZNS", kind="zns", now=svc.clock(),
            credentials={"template_id": "777", "refresh_token": "RT-0"}, base_url=zalo.url)
        programme = session.get(Programme, campaign.programme_id)
        assert programme is not None
        programme.routing = [account.id]
    worker = Worker(app, messenger=RecordingMessenger())
    assert worker.messages() == 1
    assert [form["app_id"] for _h, form in zalo.refreshes] == [APP_ID]
    assert zalo.sends[0][1]["template_id"] == "777"
    worker.close()
    svc.db.dispose()


def test_an_accounts_own_trust_decides_what_reached(app: Any, make_campaign: Any, client: Any,
                                                    esms_api: FakeEsms) -> None:  # noqa: F811
    svc = app.extensions["sipas"]
    campaign_id = sms_campaign(app, make_campaign, phones(2), reminder_hours=None)
    with svc.db.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        account = messaging_accounts.create_account(
            session, agency_id=campaign.agency_id, name="eSMS", kind="esms", now=svc.clock(),
            credentials={"api_key": API_KEY, "secret_key": SECRET_KEY}, sender="SoTNMT", base_url=esms_api.url,
            trusted_delivery=False)
        programme = session.get(Programme, campaign.programme_id)
        assert programme is not None
        programme.routing = [account.id]
        account_id, secret = account.id, account.callback_secret
    worker = Worker(app, messenger=RecordingMessenger())
    worker.message_pacing = replace(worker.message_pacing, per_second=1000.0)
    assert worker.messages() == 2
    for sent in scalars(app, select(Message)):
        assert sent.price is None                      # no account prices, no installation prices
        assert esms_callback(client, account_id, secret, SMSID=sent.provider_id or "", RequestId=sent.token,
                             SendStatus="5").status_code == 200

    def summary() -> dict[str, Any]:
        with svc.db.begin() as session:
            return messaging.delivery_summary(session, campaign_id=campaign_id)

    # eSMS's reports are trusted by default (core.delivery), but this account says not.
    assert (summary()["reached"], summary()["delivered_unconfirmed"]) == (0, 2)
    with svc.db.begin() as session:
        messaging_accounts.update_account(session, account_id, {"trusted_delivery": True}, svc.clock())
    assert (summary()["reached"], summary()["delivered_unconfirmed"]) == (2, 0)
    worker.close()
