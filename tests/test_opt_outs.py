"""The do-not-contact list through the API: operators add and remove numbers; pending
contacts stop at once; the audit log keeps only masked numbers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ivr_service.persistence.models import AuditEntry, Contact, ContactStatus, OptOut

from .conftest import fetch, phones, scalars

API = "/api/v1/opt-outs"


def test_an_operator_adds_and_removes_a_number(app: Any, client: Any, make_campaign: Any) -> None:
    numbers = phones(3)
    make_campaign(numbers)
    added = client.post(API, json={"phone": "091 000 0001"})        # numbers[1], typed with spaces
    assert added.status_code == 201 and added.json == {"phone": "+84******001", "opted_out": True}
    assert scalars(app, select(OptOut.phone_e164)) == ["+84910000001"]
    states = dict(fetch(app, select(Contact.phone_e164, Contact.status)))
    assert states["+84910000001"] is ContactStatus.DONE
    assert [s for p, s in states.items() if p != "+84910000001"] == [ContactStatus.PENDING] * 2

    removed = client.post(f"{API}/remove", json={"phone": "+84910000001"})
    assert removed.status_code == 200 and removed.json["opted_out"] is False
    assert scalars(app, select(OptOut.phone_e164)) == []
    again = client.post(f"{API}/remove", json={"phone": "+84910000001"})
    assert again.status_code == 404 and again.json["field"] is None

    entries = fetch(app, select(AuditEntry.action, AuditEntry.detail).order_by(AuditEntry.id))
    assert [action for action, _ in entries] == ["opt_out_added", "opt_out_removed"]
    assert all(detail == {"phone": "+84******001"} for _, detail in entries)


def test_a_bad_number_is_refused_naming_the_field(client: Any) -> None:
    response = client.post(API, json={"phone": "không có"})
    assert response.status_code == 400 and response.json["field"] == "phone"
    assert response.json["message"].startswith("phone: ")
