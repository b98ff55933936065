"""Alerts (issue 16 part 4): a unit whose citizens are more than 25 % dissatisfied on a
criterion in a period, with enough answers, is told once, by mail through a real SMTP
server and by a signed webhook to a real HTTP server; the alert is kept and shown in the
console and the API to its part of the agency tree only."""

from __future__ import annotations

import email
import email.policy
import functools
import hashlib
import hmac
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from ivr_service import create_app
from ivr_service.core import alerts as rules
from ivr_service.core.access import Grant, Role
from ivr_service.core.flow import AnswerStatus, Response
from ivr_service.core.questionnaire import Questionnaire, load_questionnaire
from ivr_service.core.scoring import CriterionScore, Respondent, score_item
from ivr_service.persistence.models import (
    Alert,
    Answer,
    Attempt,
    AttemptStatus,
    Contact,
    Interview,
    InterviewStatus,
    QrResponse,
)
from ivr_service.services import access, alerts, qr
from ivr_service.worker import Worker

from .conftest import ROOT, Clock, RecordingProvider, api_token, count, phones, scalars
from .test_access import PASSWORD, Bearer, cheap_hashing, signed_in  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("cheap_hashing")

ME = "giam-doc@so-tnmt.example.gov.vn"
SENDER = "sipas@example.gov.vn"
SECRET = "hook-s3cret"
SATISFIED = {f"C{i:02d}": 4 for i in range(1, 17)} | {"OVERALL": 4}
C01_TEXT = "Trung tâm Phục vụ hành chính công/Bộ phận Tiếp nhận và trả kết quả có biển hiệu"


# ============================================================================ servers

class Mailbox:
    """aiosmtpd's handler: keeps each message; while ``down``, refuses every mail (451)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.down = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.down:
            return "451 4.3.0 Try again later"
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@dataclass
class Hooks:
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def webhook() -> Iterator[tuple[Hooks, str]]:
    hooks = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            hooks.received.append(({k.lower(): v for k, v in self.headers.items()}, raw))
            self.send_response(hooks.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hooks, f"http://127.0.0.1:{server.server_port}/sipas-hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def alerting(make_settings: Callable[..., Any], clock: Clock, mailbox: tuple[Mailbox, int],
             webhook: tuple[Hooks, str]) -> Iterator[Flask]:
    """The app with mail, webhook and its secret configured, at 30 answers a month."""
    application = create_app(make_settings(
        smtp_host="127.0.0.1", smtp_port=mailbox[1], alert_email_from=SENDER, alert_emails=(ME,),
        alert_webhook_url=webhook[1], alert_webhook_secret=SECRET, alert_min_answers=30), clock=clock)
    yield application
    application.extensions["sipas"].db.dispose()


# ============================================================================ data

@dataclass(frozen=True)
class Units:
    province: int
    district: int
    other: int


@pytest.fixture
def units(alerting: Flask, make_agency: Callable[..., int]) -> Units:
    province = make_agency("T-DN", "UBND tỉnh Đắk Nông", app=alerting)
    return Units(province, make_agency("H-CJ", "UBND huyện Cư Jút", parent_id=province, app=alerting),
                 make_agency("H-KN", "UBND huyện Krông Nô", parent_id=province, app=alerting))


def interviews(app: Flask, campaign_id: int, answers: list[dict[str, int]], ended_at: datetime | None,
               status: InterviewStatus = InterviewStatus.COMPLETE) -> None:
    """One interview per dict of answers, on contacts of the campaign not yet interviewed."""
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        taken = select(Interview.contact_id)
        contacts = session.scalars(select(Contact).where(Contact.campaign_id == campaign_id,
                                                         Contact.id.not_in(taken)).order_by(Contact.id)).all()
        assert len(contacts) >= len(answers)
        for contact, given in zip(contacts, answers, strict=False):
            attempt = Attempt(contact_id=contact.id, campaign_id=campaign_id, number=1, provider="simulator",
                              status=AttemptStatus.COMPLETED, created_at=ended_at or svc.clock())
            interview = Interview(contact_id=contact.id, campaign_id=campaign_id, questionnaire_key="sipas-2024",
                                  status=status, started_at=svc.clock(), ended_at=ended_at)
            session.add_all([attempt, interview])
            session.flush()
            for item_id, value in given.items():
                session.add(Answer(interview_id=interview.id, attempt_id=attempt.id, item_id=item_id,
                                   value=value if value else None, status="answered" if value else "no_opinion",
                                   digits=str(value), answered_at=ended_at or svc.clock()))


def november(app: Flask, make_campaign: Callable[..., int], agency: int, clock: Clock, base: int = 0) -> int:
    """40 interviews of ``agency`` that ended on 16/11: C01 11 dissatisfied (27,5 %), C02
    exactly 10 (25 %), C03 29 valid answers all dissatisfied (the rest no opinion)."""
    campaign = make_campaign(phones(40, base), agency=agency, start=False, app=app)
    answers = []
    for i in range(40):
        given = dict(SATISFIED)
        given["C01"] = 2 if i < 11 else 4
        given["C02"] = 1 if i < 10 else 5
        given["C03"] = 2 if i < 29 else 0
        answers.append(given)
    interviews(app, campaign, answers, clock() - timedelta(days=1))
    return campaign


def worker(app: Flask) -> Worker:
    return Worker(app, provider=RecordingProvider())


def rows(app: Flask) -> list[Alert]:
    return scalars(app, select(Alert).order_by(Alert.id))


# ============================================================================ the rule

@functools.cache
def questionnaire_of() -> Questionnaire:
    return load_questionnaire(ROOT / "config" / "questionnaires" / "sipas-2024.yaml")


def score(n: int, dissatisfied: int) -> CriterionScore:
    """The score of C01 with ``dissatisfied`` of ``n`` valid answers, as scoring computes it."""
    item = questionnaire_of().item("C01")
    people = [Respondent({"C01": Response(1 if i < dissatisfied else 5, AnswerStatus.ANSWERED, "")})
              for i in range(n)]
    return score_item(item, people)


def test_the_rule_is_more_than_a_quarter_on_enough_answers() -> None:
    assert rules.crossings([score(40, 11)], 30) == [score(40, 11)]
    assert rules.crossings([score(40, 10)], 30) == []          # exactly 25 %
    assert rules.crossings([score(29, 29)], 30) == []          # too few answers
    assert rules.crossings([score(30, 8)], 30) == [score(30, 8)]


@given(st.integers(0, 200), st.integers(0, 200), st.integers(1, 100))
def test_property_an_alert_is_exactly_more_than_a_quarter_on_enough_answers(n: int, dissatisfied: int,
                                                                            minimum: int) -> None:
    dissatisfied = min(dissatisfied, n)
    expected = n >= minimum and 4 * dissatisfied > n          # integers: no rounding at the edge
    assert bool(rules.crossings([score(n, dissatisfied)], minimum)) == expected


def test_period_labels_and_words() -> None:
    assert rules.period_from_label("2026-11").start.isoformat() == "2026-11-01"
    assert rules.period_from_label("2026-Q4").end.isoformat() == "2026-12-31"
    assert rules.period_from_label("2026-H1").end.isoformat() == "2026-06-30"
    assert rules.period_text("2026-11", "vi") == "tháng 11/2026"
    assert rules.period_text("2026-Q4", "en") == "Q4 2026"
    assert rules.period_text("2026-H2", "vi") == "6 tháng cuối năm 2026"


# ============================================================================ rounds

def test_a_unit_above_a_quarter_is_mailed_and_posted_once(
        alerting: Flask, units: Units, make_campaign: Callable[..., int], clock: Clock,
        mailbox: tuple[Mailbox, int], webhook: tuple[Hooks, str]) -> None:
    box, hooks = mailbox[0], webhook[0]
    november(alerting, make_campaign, units.district, clock)
    first = worker(alerting).alerts()
    assert (len(first.created), first.sent, first.failed) == (1, 2, 0)
    again = worker(alerting).alerts()
    clock.advance(hours=1)
    later = worker(alerting).alerts()
    assert again.created == later.created == [] and again.sent == later.sent == 0
    assert len(box.messages) == 1 and len(hooks.received) == 1

    (alert,) = rows(alerting)
    assert (alert.agency_id, alert.item_id, alert.period, alert.n, alert.n_dissatisfied) == (
        units.district, "C01", "2026-11", 40, 11)
    assert alert.share == pytest.approx(0.275) and alert.attempts == 1
    assert alert.email_sent_at == alert.webhook_sent_at == alert.created_at
    assert alert.email_error is None and alert.webhook_error is None

    mail = box.messages[0]
    assert box.envelopes == [(SENDER, [ME])]
    assert mail["Date"].datetime == alert.created_at                    # the injected clock, not the machine's
    text = mail.get_content()
    assert isinstance(text, str)
    vietnamese, _, english = text.partition("--- English ---")
    assert english, "Vietnamese first, English below"
    assert "27,5%" in mail["Subject"] and "UBND huyện Cư Jút" in mail["Subject"]
    assert "Đơn vị: UBND huyện Cư Jút (mã H-CJ)" in vietnamese and "tháng 11/2026 (2026-11)" in vietnamese
    assert "27,5% (11/40 câu trả lời hợp lệ)" in vietnamese and f"Tiêu chí C01: {C01_TEXT}" in vietnamese
    assert "27.5% (11 of 40 valid answers)" in english and "Criterion C01:" in english
    assert f"http://sipas.test/alerts/{alert.id}" in vietnamese
    assert not re.search(r"\+?84\d{9}|0\d{9}", text)            # no phone number
    assert "Nguyễn Văn" not in text                              # nor a name from the frame

    headers, raw = hooks.received[0]
    assert headers["x-sipas-signature"] == "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["content-type"] == "application/json" and headers["x-sipas-alert-id"] == str(alert.id)
    body = json.loads(raw)
    assert body["agency"] == {"id": units.district, "code": "H-CJ", "name": "UBND huyện Cư Jút"}
    assert body["criterion"]["id"] == "C01" and body["criterion"]["text_vi"].startswith(C01_TEXT)
    assert (body["period"], body["n"], body["n_dissatisfied"], body["share"], body["threshold"]) == (
        "2026-11", 40, 11, 0.275, 0.25)
    assert body["url"] == f"http://sipas.test/alerts/{alert.id}" and body["min_answers"] == 30
    assert not re.search(r"09\d{8}", raw.decode())


def test_only_counted_interviews_of_the_period_count(
        alerting: Flask, units: Units, make_campaign: Callable[..., int], clock: Clock) -> None:
    """Break-offs, interviews that ended last month and QR forms leave C01 at 10 of 40."""
    campaign = make_campaign(phones(60), agency=units.district, start=False, app=alerting)
    yesterday = clock() - timedelta(days=1)
    interviews(alerting, campaign, [{**SATISFIED, "C01": 2 if i < 10 else 4} for i in range(40)], yesterday)
    interviews(alerting, campaign, [{**SATISFIED, "C01": 1}] * 5, yesterday, InterviewStatus.BREAK_OFF)
    interviews(alerting, campaign, [{**SATISFIED, "C01": 1}] * 5, datetime(2026, 10, 31, 16, 0, tzinfo=UTC))
    # 31/10 16:00 UTC is 23:00 in Hà Nội, still October there.
    svc = alerting.extensions["sipas"]
    with svc.db.begin() as session:
        poster = qr.create_poster(session, svc.registry, units.district, "Quầy 1", "https://ks.test", clock())
        for _ in range(40):
            session.add(QrResponse(poster_id=poster.id, status="complete", started_at=yesterday, ended_at=yesterday,
                                   answers={"C01": {"value": 1, "status": "answered"}}))
    assert worker(alerting).alerts().created == []
    # A partial interview counts, like a complete one: one more dissatisfied crosses.
    interviews(alerting, campaign, [{"C01": 2}], yesterday, InterviewStatus.PARTIAL)
    assert rows(alerting) == []
    assert len(worker(alerting).alerts().created) == 1
    assert [(a.item_id, a.n, a.n_dissatisfied) for a in rows(alerting)] == [("C01", 41, 11)]


def test_two_workers_on_the_same_database_send_it_once(
        alerting: Flask, units: Units, make_campaign: Callable[..., int], clock: Clock,
        make_settings: Callable[..., Any], mailbox: tuple[Mailbox, int], webhook: tuple[Hooks, str]) -> None:
    november(alerting, make_campaign, units.district, clock)
    other = create_app(make_settings(
        smtp_host="127.0.0.1", smtp_port=mailbox[1], alert_email_from=SENDER, alert_emails=(ME,),
        alert_webhook_url=webhook[1], alert_webhook_secret=SECRET), clock=clock)
    workers = [worker(alerting), worker(other)]
    start = threading.Barrier(2)
    results: list[Any] = []

    def run(w: Worker) -> None:
        start.wait()
        results.append(w.alerts())

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for w in workers:
        w.alerts()
    other.extensions["sipas"].db.dispose()
    assert sorted(len(r.created) for r in results) == [0, 1]
    assert count(alerting, Alert) == 1
    assert len(mailbox[0].messages) == 1 and len(webhook[0].received) == 1


def test_a_concurrent_insert_loses_quietly(alerting: Flask, units: Units, clock: Clock) -> None:
    """The race itself: a worker that summed before another recorded the alert inserts
    nothing and so sends nothing."""
    svc = alerting.extensions["sipas"]
    config = alerts.AlertConfig(emails=(ME,))
    with svc.db.begin() as session:
        first = alerts._insert(session, units.district, "sipas-2024", "2026-11", "C01", 40, 11, clock(), config)
    with svc.db.begin() as session:
        second = alerts._insert(session, units.district, "sipas-2024", "2026-11", "C01", 41, 12, clock(), config)
    assert first is not None and second is None
    assert [(a.n, a.attempts) for a in rows(alerting)] == [(40, 1)]


def test_the_next_period_alerts_again(alerting: Flask, units: Units, make_campaign: Callable[..., int],
                                      clock: Clock, mailbox: tuple[Mailbox, int]) -> None:
    november(alerting, make_campaign, units.district, clock)
    assert len(worker(alerting).alerts().created) == 1
    clock.current = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)           # 10:00 on 1/12 in Hà Nội
    assert worker(alerting).alerts().created == []                    # November's answers stay in November
    december = make_campaign(phones(40, 100), agency=units.district, start=False, name="Tháng 12", app=alerting)
    interviews(alerting, december, [{**SATISFIED, "C01": 1 if i < 12 else 4} for i in range(40)], clock())
    assert len(worker(alerting).alerts().created) == 1
    assert worker(alerting).alerts().created == []
    assert [(a.period, a.n_dissatisfied) for a in rows(alerting)] == [("2026-11", 11), ("2026-12", 12)]
    assert len(mailbox[0].messages) == 2 and "tháng 12/2026" in mailbox[0].messages[1]["Subject"]


def test_a_failed_mail_is_retried_on_a_later_round_and_the_webhook_not_resent(
        alerting: Flask, units: Units, make_campaign: Callable[..., int], clock: Clock,
        mailbox: tuple[Mailbox, int], webhook: tuple[Hooks, str]) -> None:
    box, hooks = mailbox[0], webhook[0]
    november(alerting, make_campaign, units.district, clock)
    box.down = True
    hooks.status = 503
    first = worker(alerting).alerts()
    assert (first.sent, first.failed) == (0, 2)
    (alert,) = rows(alerting)
    assert alert.email_sent_at is None and "451" in (alert.email_error or "")
    assert alert.webhook_sent_at is None and alert.webhook_error == "webhook answered 503"
    assert worker(alerting).alerts().failed == 0                      # not due yet: nothing tried
    hooks.status = 200
    clock.advance(minutes=1)
    assert (worker(alerting).alerts().sent, len(hooks.received)) == (1, 2)   # the webhook; the mail fails again
    box.down = False
    clock.advance(minutes=2)
    assert worker(alerting).alerts().sent == 1                        # the mail only
    clock.advance(minutes=10)
    assert worker(alerting).alerts().sent == 0
    (alert,) = rows(alerting)
    assert alert.email_sent_at == clock() - timedelta(minutes=10) and alert.email_error is None
    assert alert.webhook_error is None and alert.attempts == 3
    assert len(box.messages) == 1 and len(hooks.received) == 2
    assert box.messages[0]["Message-ID"] == f"<sipas-alert-{alert.id}@sipas>"


def test_delivery_stops_after_the_last_attempt(alerting: Flask, units: Units, make_campaign: Callable[..., int],
                                               clock: Clock, mailbox: tuple[Mailbox, int]) -> None:
    november(alerting, make_campaign, units.district, clock)
    mailbox[0].down = True
    for _ in range(alerts.MAX_ATTEMPTS + 2):
        worker(alerting).alerts()
        clock.advance(minutes=10)
    (alert,) = rows(alerting)
    assert alert.attempts == alerts.MAX_ATTEMPTS and alert.email_sent_at is None
    assert alerts.delivery(alert, "email", alerts.AlertConfig(emails=(ME,))) == "failed"


def test_without_recipients_alerts_are_recorded_and_nothing_is_sent(
        app: Flask, make_agency: Callable[..., int], make_campaign: Callable[..., int], clock: Clock) -> None:
    november(app, make_campaign, make_agency(), clock)
    svc = app.extensions["sipas"]
    sent: list[Any] = []

    class Refuses:
        def send_mail(self, mail: Any) -> None:
            sent.append(mail)

        def post(self, url: str, body: bytes, headers: Any) -> None:
            sent.append(body)

    result = alerts.check(svc.db, svc.registry, clock(), alerts.AlertConfig.from_settings(svc.settings), Refuses())
    assert (len(result.created), result.sent, result.failed, sent) == (1, 0, 0, [])
    (alert,) = rows(app)
    assert alert.attempts == 0 and alert.email_error is None
    assert alerts.delivery(alert, "email", alerts.AlertConfig()) == "off"


# ============================================================================ console and API

def test_the_console_shows_an_alert_to_its_unit_and_not_to_a_sibling(
        alerting: Flask, units: Units, make_campaign: Callable[..., int], clock: Clock) -> None:
    campaign = november(alerting, make_campaign, units.district, clock)
    worker(alerting).alerts()
    (alert,) = rows(alerting)
    svc = alerting.extensions["sipas"]
    with svc.db.begin() as session:
        for name, node in (("cu-jut", units.district), ("krong-no", units.other)):
            access.create_user(session, name, PASSWORD, clock(), grants=[Grant(Role.VIEWER, node)])
    mine = signed_in(alerting, "cu-jut")
    page = mine.get("/alerts")
    assert page.status_code == 200
    listing = page.get_data(as_text=True)
    assert f'data-alert="{alert.id}"' in listing and "UBND huyện Cư Jút" in listing
    assert "27,5%" in listing and "tháng 11/2026" in listing and "Đã gửi" in listing
    assert 'href="/alerts"' in listing                               # in the menu
    detail = mine.get(f"/alerts/{alert.id}").get_data(as_text=True)
    assert "C01" in detail and "11 (27,5%)" in detail
    assert f"/campaigns/{campaign}/scores?from=2026-11-01&amp;to=2026-11-30" in detail

    sibling = signed_in(alerting, "krong-no")
    theirs = sibling.get("/alerts").get_data(as_text=True)
    assert "data-alert=" not in theirs and "Cư Jút" not in theirs
    assert sibling.get(f"/alerts/{alert.id}").status_code == 404

    reader = Bearer(alerting, api_token(alerting, ["campaigns:read"], units.district))
    listed = reader.get("/api/v1/alerts")
    assert listed.status_code == 200
    assert [(a["item_id"], a["n"], a["email"], a["agency_code"]) for a in listed.json] == [("C01", 40, "sent", "H-CJ")]
    assert Bearer(alerting, api_token(alerting, ["campaigns:read"], units.other)).get("/api/v1/alerts").json == []
    assert Bearer(alerting, api_token(alerting, ["exports:write"], units.district)).get(
        "/api/v1/alerts").status_code == 403
