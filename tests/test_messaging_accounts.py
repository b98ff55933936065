"""Messaging accounts through the API: validation naming the field, credentials never
returned nor audited, scope by the account's agency, and programme routing checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from ivr_service.core.access import Permission
from ivr_service.persistence.models import AuditEntry, MessagingAccount

from .conftest import api_token, row, scalars

API = "/api/v1"
KEYS = {"api_key": "key-AAAA-1111", "secret_key": "secret-BBBB-2222"}
MANAGE = (Permission.AGENCIES_WRITE, Permission.CAMPAIGNS_READ, Permission.CAMPAIGNS_WRITE)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def esms(agency_id: int | None, **extra: Any) -> dict[str, Any]:
    return {"agency_id": agency_id, "kind": "esms", "name": "eSMS", "sender": "SoTNMT",
            "credentials": dict(KEYS), "prices": {"*": 300, "viettel": 250}, **extra}


@pytest.fixture
def admin(app: Any) -> dict[str, str]:
    return bearer(api_token(app))          # installation-wide, every token scope


def test_create_read_update_deactivate_without_ever_returning_credentials(
        app: Any, client: Any, admin: dict[str, str], make_agency: Callable[..., int]) -> None:
    agency = make_agency()
    created = client.post(f"{API}/messaging-accounts", json=esms(agency), headers=admin)
    assert created.status_code == 201, created.json
    account_id = created.json["id"]
    assert created.json["credentials_set"] == ["api_key", "secret_key"]
    assert created.json["prices"] == {"*": 300, "viettel": 250} and created.json["base_url"] is None
    changed = client.patch(f"{API}/messaging-accounts/{account_id}", headers=admin,
                           json={"credentials": {"api_key": "key-CCCC-3333", "secret_key": "secret-DDDD-4444"},
                                 "trusted_delivery": True})
    assert changed.status_code == 200 and changed.json["trusted_delivery"] is True
    stored = row(app, MessagingAccount, id=account_id)
    assert stored.credentials == {"api_key": "key-CCCC-3333", "secret_key": "secret-DDDD-4444"}
    got = client.get(f"{API}/messaging-accounts/{account_id}", headers=admin)
    listed = client.get(f"{API}/messaging-accounts", headers=admin)
    off = client.post(f"{API}/messaging-accounts/{account_id}/deactivate", headers=admin)
    assert off.status_code == 200 and off.json["active"] is False
    assert client.post(f"{API}/messaging-accounts/{account_id}/deactivate", headers=admin).status_code == 409
    secrets = [*KEYS.values(), "key-CCCC-3333", "secret-DDDD-4444", stored.callback_secret]
    for response in (created, changed, got, listed, off):
        text = response.get_data(as_text=True)
        assert not any(s in text for s in secrets)
    audit = scalars(app, select(AuditEntry).where(AuditEntry.target == f"messaging_account:{account_id}"))
    assert [a.action for a in audit] == ["messaging_account_created", "messaging_account_updated",
                                         "messaging_account_deactivated"]
    assert not any(s in json.dumps([a.detail for a in audit]) for s in secrets)


@pytest.mark.parametrize("change, field", [
    ({"kind": "sms-gw"}, "kind"),
    ({"sender": "SoTNMTDakNong"}, "sender"),         # 12 characters
    ({"sender": "Sở TNMT"}, "sender"),
    ({"sender": None}, "sender"),
    ({"base_url": "http://rest.esms.vn"}, "base_url"),
    ({"base_url": "ftp://rest.esms.vn"}, "base_url"),
    ({"credentials": {"api_key": "k"}}, "credentials"),
    ({"credentials": {"api_key": "k", "secret_key": "s", "token": "t"}}, "credentials"),
    ({"prices": {"*": -1}}, "prices"),
    ({"prices": {"Viettel!": 300}}, "prices"),
])
def test_bad_input_names_the_field(client: Any, admin: dict[str, str], make_agency: Callable[..., int],
                                   change: dict[str, Any], field: str) -> None:
    response = client.post(f"{API}/messaging-accounts", json={**esms(make_agency()), **change}, headers=admin)
    assert response.status_code == 400 and response.json["field"] == field, response.json
    assert "secret-BBBB-2222" not in response.get_data(as_text=True)


def test_an_account_is_managed_only_within_its_agency(app: Any, client: Any, admin: dict[str, str],
                                                      make_agency: Callable[..., int]) -> None:
    ours, theirs = make_agency("STNMT"), make_agency("SYT", "Sở Y tế")
    mine = client.post(f"{API}/messaging-accounts", json=esms(ours), headers=admin).json["id"]
    other = client.post(f"{API}/messaging-accounts", json=esms(theirs), headers=admin).json["id"]
    shared = client.post(f"{API}/messaging-accounts", json=esms(None), headers=admin).json["id"]
    manager = bearer(api_token(app, MANAGE, agency_id=ours))
    reader = bearer(api_token(app, (Permission.CAMPAIGNS_READ,), agency_id=ours))
    assert client.get(f"{API}/messaging-accounts/{mine}", headers=manager).status_code == 200
    for url in (f"{API}/messaging-accounts/{other}", f"{API}/messaging-accounts/999999"):
        assert client.get(url, headers=manager).status_code == 404
        assert client.patch(url, json={"name": "x"}, headers=manager).status_code == 404
    # The installation's accounts are seen in the list (to route to) but managed installation-wide only.
    assert client.patch(f"{API}/messaging-accounts/{shared}", json={"name": "x"}, headers=manager).status_code == 404
    assert client.post(f"{API}/messaging-accounts", json=esms(theirs), headers=manager).status_code == 404
    assert client.post(f"{API}/messaging-accounts", json=esms(None), headers=manager).status_code == 404
    listed = {a["id"] for a in client.get(f"{API}/messaging-accounts", headers=manager).json}
    assert listed == {mine, shared}
    assert client.get(f"{API}/messaging-accounts/{mine}", headers=reader).status_code == 200
    assert client.patch(f"{API}/messaging-accounts/{mine}", json={"name": "x"}, headers=reader).status_code == 403
    assert client.post(f"{API}/messaging-accounts", json=esms(ours), headers=reader).status_code == 403


def test_programme_routing_is_checked(client: Any, admin: dict[str, str], make_agency: Callable[..., int],
                                      make_programme: Callable[..., int]) -> None:
    ours, theirs = make_agency("STNMT"), make_agency("SYT", "Sở Y tế")
    programme = make_programme(ours)
    mine = client.post(f"{API}/messaging-accounts", json=esms(ours), headers=admin).json["id"]
    shared = client.post(f"{API}/messaging-accounts", json=esms(None), headers=admin).json["id"]
    other = client.post(f"{API}/messaging-accounts", json=esms(theirs), headers=admin).json["id"]
    url = f"{API}/programmes/{programme}"
    for routing in ([other], [mine, mine], [999999], []):
        bad = client.patch(url, json={"routing": routing}, headers=admin)
        assert bad.status_code == 400 and bad.json["field"] == "routing", (routing, bad.json)
    good = client.patch(url, json={"routing": [mine, shared]}, headers=admin)
    assert good.status_code == 200 and good.json["routing"] == [mine, shared]
    assert client.post(f"{API}/messaging-accounts/{mine}/deactivate", headers=admin).status_code == 200
    assert client.patch(url, json={"routing": [mine]}, headers=admin).json["field"] == "routing"
    cleared = client.patch(url, json={"routing": None}, headers=admin)
    assert cleared.status_code == 200 and cleared.json["routing"] is None


def test_trusted_delivery_defaults_to_the_kinds_own(client: Any, admin: dict[str, str],
                                                    make_agency: Callable[..., int]) -> None:
    """eSMS reports a handset's delivery; Twilio's Vietnamese reports only the carrier's
    acceptance: left out, the flag is the kind's; given, it is what was given."""
    agency = make_agency()
    default = client.post(f"{API}/messaging-accounts", json=esms(agency), headers=admin)
    doubted = client.post(f"{API}/messaging-accounts", json=esms(agency, name="eSMS 2", trusted_delivery=False),
                          headers=admin)
    assert (default.status_code, doubted.status_code) == (201, 201)
    assert default.json["trusted_delivery"] is True and doubted.json["trusted_delivery"] is False
