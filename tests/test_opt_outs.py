"""The do-not-contact list through the API: operators add and remove numbers (removal
with a reason); pending contacts stop at once; the audit log keeps only masked numbers."""

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

    for reason in (None, "", "   "):                                  # a removal needs a reason
        refused = client.post(f"{API}/remove", json={"phone": "+84910000001", "reason": reason})
        assert refused.status_code == 400 and refused.json["field"] == "reason"
        assert refused.json["message"].startswith("reason: required")
    assert scalars(app, select(OptOut.phone_e164)) == ["+84910000001"]
    removed = client.post(f"{API}/remove", json={"phone": "+84910000001",
                                                 "reason": " Gọi đường dây nóng: đồng ý khảo sát lại "})
    assert removed.status_code == 200 and removed.json == {"phone": "+84******001", "opted_out": False}
    assert scalars(app, select(OptOut.phone_e164)) == []
    again = client.post(f"{API}/remove", json={"phone": "+84910000001", "reason": "x"})
    assert again.status_code == 404 and again.json["field"] is None

    entries = fetch(app, select(AuditEntry.action, AuditEntry.detail).order_by(AuditEntry.id))
    assert [action for action, _ in entries] == ["opt_out_added", "opt_out_removed"]
    assert entries[0][1] == {"phone": "+84******001"}
    # The removal keeps the reason and what the deleted entry said; never the number.
    assert entries[1][1] == {"phone": "+84******001", "reason": "Gọi đường dây nóng: đồng ý khảo sát lại",
                             "since": "2026-11-17T02:00:00+00:00", "source": "operator"}


def test_a_bad_number_is_refused_naming_the_field(client: Any) -> None:
    response = client.post(API, json={"phone": "không có"})
    assert response.status_code == 400 and response.json["field"] == "phone"
    assert response.json["message"].startswith("phone: ")
