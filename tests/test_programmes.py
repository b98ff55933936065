"""Post-transaction programmes: the pure rules (core/programmes.py), their settings
(services/programmes.py), period campaigns, closing, the API and the CLI."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from ivr_service.core import messages
from ivr_service.core.policy import CallingWindow
from ivr_service.core.programmes import draw, invited_share, message_window, period_of, seed003_share
from ivr_service.persistence.models import AuditEntry, Campaign, CampaignStatus, Contact, ContactStatus, Programme
from ivr_service.services import campaigns, programmes, transactions
from ivr_service.services.errors import Conflict, InvalidInput
from ivr_service.services.transactions import Record

from .conftest import count, row, scalars

API = "/api/v1"
HOST = "https://ks.example.vn"


# ============================================================================ pure rules

@pytest.mark.parametrize(("yearly", "share"), [(0, 0.5), (99, 0.5), (100, 0.3), (499, 0.3), (500, 0.2),
                                                (999, 0.2), (1000, 0.1), (250_000, 0.1)])
def test_seed003_tiers(yearly: int, share: float) -> None:
    assert seed003_share(yearly) == share


def test_the_invited_share_divides_by_the_expected_response_and_is_capped_at_one() -> None:
    assert invited_share("seed003", None, 0.5, 50) == 1.0            # 50 % / 0.5
    assert invited_share("seed003", None, 0.5, 300) == pytest.approx(0.6)
    assert invited_share("seed003", None, 0.25, 5000) == pytest.approx(0.4)
    assert invited_share("fixed", 0.3, 0.5, 5000) == 0.3
    with pytest.raises(ValueError, match="share"):
        invited_share("fixed", None, 0.5, 10)


def test_the_draw_is_reproducible_and_near_its_share() -> None:
    picked = [draw(7, 3, f"HS-{i}", 0.2) for i in range(20_000)]
    assert picked == [draw(7, 3, f"HS-{i}", 0.2) for i in range(20_000)]
    assert 0.19 < sum(picked) / len(picked) < 0.21                    # 5 standard errors either side
    assert picked != [draw(8, 3, f"HS-{i}", 0.2) for i in range(20_000)]   # the seed matters
    assert all(draw(7, 3, f"HS-{i}", 1.0) for i in range(100))


@pytest.mark.parametrize(("kind", "day", "start", "end", "label"), [
    ("month", date(2026, 2, 14), date(2026, 2, 1), date(2026, 2, 28), "2026-02"),
    ("month", date(2026, 12, 31), date(2026, 12, 1), date(2026, 12, 31), "2026-12"),
    ("quarter", date(2026, 11, 17), date(2026, 10, 1), date(2026, 12, 31), "2026-Q4"),
    ("quarter", date(2026, 4, 1), date(2026, 4, 1), date(2026, 6, 30), "2026-Q2"),
    ("half", date(2026, 6, 30), date(2026, 1, 1), date(2026, 6, 30), "2026-H1"),
    ("half", date(2026, 7, 1), date(2026, 7, 1), date(2026, 12, 31), "2026-H2"),
])
def test_period_bounds_and_labels(kind: str, day: date, start: date, end: date, label: str) -> None:
    period = period_of(kind, day)
    assert (period.start, period.end, period.label) == (start, end, label)


@given(st.sampled_from(["month", "quarter", "half"]), st.dates(date(2000, 1, 1), date(2099, 12, 31)))
def test_periods_hold_their_day_and_tile_the_calendar(kind: str, day: date) -> None:
    period = period_of(kind, day)
    assert period.start <= day <= period.end
    assert period_of(kind, period.end + timedelta(days=1)).start == period.end + timedelta(days=1)
    assert period_of(kind, period.start) == period


def test_the_message_window_is_seven_to_ten_every_day_holidays_included() -> None:
    window = CallingWindow.from_dict(message_window("Asia/Ho_Chi_Minh"))
    tet = datetime(2026, 2, 17, 0, 0, tzinfo=UTC)                          # 07:00 local on Tết, a Tuesday
    assert window.is_open(tet) and window.is_open(datetime(2026, 11, 22, 14, 59, tzinfo=UTC))   # Sunday 21:59
    assert not window.is_open(datetime(2026, 11, 22, 15, 0, tzinfo=UTC))  # 22:00
    assert not window.is_open(datetime(2026, 11, 22, 23, 59, tzinfo=UTC))  # 06:59


# ============================================================================ settings

def create(app: Any, agency: int, **settings: Any) -> Programme:
    svc = app.extensions["sipas"]
    settings.setdefault("name", "Khảo sát sau giao dịch")
    with svc.db.begin() as session:
        return programmes.create_programme(session, svc.registry, agency_id=agency, now=svc.clock(),
                                           default_host=HOST, **settings)


def test_defaults_fit_one_gsm7_segment_with_both_links(app: Any, make_agency: Callable[..., int]) -> None:
    created = create(app, make_agency())
    assert created.public_host == HOST and created.template == programmes.DEFAULT_TEMPLATE
    link = HOST + "/s/" + "X" * 10
    encoded = messages.encode(messages.render(created.template, link=link, stop=link + "/stop"))
    assert (encoded.encoding, encoded.segments) == ("GSM-7", 1)
    assert created.template.endswith("{stop}")
    assert (created.share_mode, created.period, created.link_days, created.max_segments) == (
        "seed003", "quarter", 7, 1)
    assert created.channel_plan == [{"channel": "sms", "max_attempts": 1}]
    assert CallingWindow.from_dict(created.window) == CallingWindow.from_dict(message_window("Asia/Ho_Chi_Minh"))


def test_templates_are_unaccented_unless_asked_and_refused_when_too_long(
        app: Any, make_agency: Callable[..., int]) -> None:
    agency = make_agency()
    plain = create(app, agency, template="Mời Ông/Bà đánh giá: {link} Từ chối: {stop}")
    assert plain.template == "Moi Ong/Ba danh gia: {link} Tu choi: {stop}"
    with app.extensions["sipas"].db.begin() as session:
        programmes.deactivate_programme(session, plain.id)
    with pytest.raises(InvalidInput, match=r"template: the message needs 2 UCS-2 segments") as refused:
        create(app, agency, template="Mời Ông/Bà đánh giá: {link} Từ chối: {stop}", accented=True)
    assert refused.value.field == "template"
    accented = create(app, agency, template="Mời Ông/Bà đánh giá: {link} Từ chối: {stop}", accented=True,
                      max_segments=2)
    assert accented.template == "Mời Ông/Bà đánh giá: {link} Từ chối: {stop}"
    svc = app.extensions["sipas"]
    with svc.db.begin() as session, pytest.raises(InvalidInput, match="template: the message needs 2 UCS-2"):
        # The stored template no longer fits one segment: a lower limit is refused, not the text rewritten.
        programmes.configure_programme(session, svc.registry, accented.id, {"max_segments": 1}, svc.clock())
    with svc.db.begin() as session:
        programmes.configure_programme(session, svc.registry, accented.id, {"public_host": "https://a.vn"},
                                       svc.clock())
    assert row(app, Programme, id=accented.id).template == "Mời Ông/Bà đánh giá: {link} Từ chối: {stop}"


@pytest.mark.parametrize(("settings", "field", "message"), [
    ({"questionnaire": "nope"}, "questionnaire", "unknown key 'nope'"),
    ({"share_mode": "random"}, "share_mode", "expected one of seed003, fixed"),
    ({"share_mode": "fixed"}, "share", "expected more than 0 and at most 1, got None"),
    ({"share_mode": "fixed", "share": 1.5}, "share", "at most 1"),
    ({"share": 0.5}, "share", "only with share_mode fixed"),
    ({"expected_response": 0}, "expected_response", "more than 0"),
    ({"delay_minutes": 10081}, "delay_minutes", "from 0 to 10080"),
    ({"recent_days": -1}, "recent_days", "from 0 to 730"),
    ({"period": "week"}, "period", "month, quarter, half"),
    ({"timezone": "Mars/Olympus"}, "timezone", "IANA time zone"),
    ({"ends_on": date(2026, 11, 16)}, "ends_on", "must not be in the past"),
    ({"public_host": "http://ks.example.vn"}, "public_host", "must use https"),
    ({"public_host": "ftp://ks.example.vn"}, "public_host", "expected an https URL"),
    ({"link_days": 31}, "link_days", "from 1 to 30"),
    ({"reminder_hours": 7 * 24 + 1}, "reminder_hours", "from 1 to 168"),
    ({"max_segments": 6}, "max_segments", "from 1 to 5"),
    ({"sender": "UBND-TINH-DAKNONG"}, "sender", "at most 11 characters"),
    ({"template": "Danh gia: {link}"}, "template", "must end with the {stop} link"),
    ({"template": "Danh gia {code}: {link} {stop}"}, "template", "unknown placeholder"),
    ({"reminder_template": "Nhac lai: {link}"}, "reminder_template", "{stop}"),
    ({"template": "Moi Ong/Ba danh gia muc do hai long ve ho so vua nhan tai bo phan mot cua: {link} "
                  "Tu choi nhan tin: {stop}"}, "template", "needs 2 GSM-7 segments"),
    ({"channel_plan": [{"channel": "voice", "max_attempts": 3}]}, "channel_plan", "needs an sms step"),
    ({"channel_plan": [{"channel": "fax"}]}, "channel_plan", "channel must be one of"),
    ({"colour": "blue"}, "colour", "unknown setting"),
])
def test_each_setting_is_checked_and_named(app: Any, make_agency: Callable[..., int], settings: dict[str, Any],
                                           field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        create(app, make_agency(), **settings)
    assert refused.value.field == field and message in refused.value.message
    assert count(app, Programme) == 0


def test_http_is_accepted_only_on_a_loopback_host(app: Any, make_agency: Callable[..., int]) -> None:
    assert create(app, make_agency(), public_host="http://127.0.0.1:5000/").public_host == "http://127.0.0.1:5000"


def test_one_active_programme_per_agency(app: Any, make_agency: Callable[..., int]) -> None:
    agency = make_agency()
    first = create(app, agency)
    with pytest.raises(Conflict, match="already has an active programme"):
        create(app, agency)
    with app.extensions["sipas"].db.begin() as session:
        programmes.deactivate_programme(session, first.id)
    assert create(app, agency).active


def test_period_and_timezone_are_fixed_once_a_period_has_begun(app: Any, make_programme: Callable[..., int]) -> None:
    programme_id = make_programme(share_mode="fixed", share=1.0)
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        programmes.configure_programme(session, svc.registry, programme_id, {"period": "month"}, svc.clock())
    report(app, Record("STNMT", "HS-1", "0912345678", "2026-11-17T08:00:00+07:00"))
    with svc.db.begin() as session, pytest.raises(Conflict, match="period: cannot change"):
        programmes.configure_programme(session, svc.registry, programme_id, {"period": "quarter"}, svc.clock())
    with svc.db.begin() as session:
        changed = programmes.configure_programme(session, svc.registry, programme_id,
                                                 {"delay_minutes": 30, "window": {"parts": [["08:00", "20:00"]]}},
                                                 svc.clock())
        assert changed.delay_minutes == 30
    # The window reaches the running period campaign too.
    assert row(app, Campaign).window["parts"] == [["08:00:00", "20:00:00"]]


# ============================================================================ period campaigns

def report(app: Any, *records: Record) -> transactions.Reported:
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        return transactions.report(session, svc.clock(), list(records), source="api")


def test_a_period_campaign_is_created_once_with_the_programmes_settings(
        app: Any, make_programme: Callable[..., int]) -> None:
    programme_id = make_programme(name="Sở TN&MT", share_mode="fixed", share=1.0, recent_days=0, link_days=5)
    report(app, Record("STNMT", "A", "0912000001", "2026-11-17T08:00:00+07:00"))
    report(app, Record("STNMT", "B", "0912000002", "2026-10-01T00:10:00+07:00"))
    campaign = row(app, Campaign)
    assert (campaign.name, campaign.status, campaign.questionnaire_key) == (
        "Sở TN&MT — 2026-Q4", CampaignStatus.RUNNING, "sipas-2024")
    assert campaign.started_at == app.extensions["sipas"].clock()
    assert campaign.ends_at == datetime(2026, 12, 31, 17, 0, tzinfo=UTC) + timedelta(days=6)   # local 1 Jan + 5 + 1
    assert campaign.channel_plan == [{"channel": "sms", "max_attempts": 1}] and campaign.programme_id == programme_id
    assert count(app, Contact, Contact.campaign_id == campaign.id) == 2
    report(app, Record("STNMT", "C", "0912000003", "2026-09-30T23:50:00+07:00"))   # Q3, in local time
    assert sorted(scalars(app, select(Campaign.name))) == ["Sở TN&MT — 2026-Q3", "Sở TN&MT — 2026-Q4"]


def test_concurrent_first_transactions_of_a_period_share_one_campaign(
        app: Any, make_programme: Callable[..., int]) -> None:
    """Threads, each in its own database transaction; on PostgreSQL the losers of the
    unique (programme, period start) insert read the winner's row back."""
    make_programme(share_mode="fixed", share=1.0)
    svc = app.extensions["sipas"]
    barrier, errors = threading.Barrier(4), []

    def first(n: int) -> None:
        try:
            barrier.wait()
            with svc.db.begin() as session:
                transactions.report(session, svc.clock(), [Record("STNMT", f"T-{n}", f"091200000{n}",
                                                                  "2026-11-17T08:00:00+07:00")], source="api")
        except Exception as exc:   # reported below
            errors.append(exc)

    threads = [threading.Thread(target=first, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and count(app, Campaign) == 1 and count(app, Contact) == 4


def test_a_programme_campaign_stays_open_until_its_period_has_ended(
        app: Any, make_programme: Callable[..., int]) -> None:
    make_programme(share_mode="fixed", share=1.0)
    report(app, Record("STNMT", "A", "0912000001", "2026-11-17T08:00:00+07:00"))
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        contact = session.scalars(select(Contact)).one()
        contact.status, contact.disposition = ContactStatus.DONE, "1.1"      # every contact settled
    with svc.db.begin() as session:
        assert campaigns.advance(session, svc.clock()).closed == []
    svc.clock.current = datetime(2026, 12, 31, 16, 59, tzinfo=UTC)           # 23:59 on 31 Dec, local
    with svc.db.begin() as session:
        assert campaigns.advance(session, svc.clock()).closed == []
    svc.clock.current = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)            # local midnight
    with svc.db.begin() as session:
        closed = campaigns.advance(session, svc.clock()).closed
    assert closed == [row(app, Campaign).id] and row(app, Campaign).status is CampaignStatus.COMPLETED


def test_a_deactivated_programmes_campaign_closes_once_settled(app: Any, make_programme: Callable[..., int]) -> None:
    programme_id = make_programme(share_mode="fixed", share=1.0)
    report(app, Record("STNMT", "A", "0912000001", "2026-11-17T08:00:00+07:00"))
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        contact = session.scalars(select(Contact)).one()
        contact.status, contact.disposition = ContactStatus.DONE, "1.1"
        programmes.deactivate_programme(session, programme_id)
    with svc.db.begin() as session:
        assert len(campaigns.advance(session, svc.clock()).closed) == 1
    # A deactivated programme invites nobody.
    assert report(app, Record("STNMT", "B", "0912000002", "2026-11-17T08:00:00+07:00")).decisions == {
        "no_programme": 1}


# ============================================================================ API

def test_api_creates_configures_lists_and_deactivates(app: Any, client: Any, make_agency: Callable[..., int]) -> None:
    agency = make_agency()
    plain_http = client.post(f"{API}/programmes", json={"agency_id": agency, "name": "Sau giao dịch"})
    assert plain_http.status_code == 400 and plain_http.json["field"] == "public_host"   # http://sipas.test
    created = client.post(f"{API}/programmes", json={"agency_id": agency, "name": "Sau giao dịch",
                                                     "share_mode": "fixed", "share": 1.0, "period": "month",
                                                     "public_host": "https://ks.example.vn/"})
    assert created.status_code == 201, created.json
    programme_id = created.json["id"]
    assert created.json["public_host"] == "https://ks.example.vn"
    conflict = client.post(f"{API}/programmes", json={"agency_id": agency, "name": "Lần hai"})
    assert conflict.status_code == 409
    bad = client.patch(f"{API}/programmes/{programme_id}", json={"link_days": 40})
    assert bad.status_code == 400 and bad.json["field"] == "link_days"
    patched = client.patch(f"{API}/programmes/{programme_id}", json={"delay_minutes": 0, "sender": "UBND DN"})
    assert patched.status_code == 200 and patched.json["delay_minutes"] == 0
    assert [p["id"] for p in client.get(f"{API}/programmes").json] == [programme_id]
    assert client.get(f"{API}/programmes/{programme_id}").json["sender"] == "UBND DN"
    report(app, Record("STNMT", "A", "0912000001", "2026-11-17T08:00:00+07:00"))
    periods = client.get(f"{API}/programmes/{programme_id}/periods")
    assert periods.status_code == 200
    assert [(p["label"], p["contacts"], p["status"], p["n_respondents"]) for p in periods.json] == [
        ("2026-11", 1, "running", 0)]
    assert periods.json[0]["service_index"] is None
    off = client.post(f"{API}/programmes/{programme_id}/deactivate")
    assert off.status_code == 200 and off.json["active"] is False
    assert client.post(f"{API}/programmes/{programme_id}/deactivate").status_code == 409
    actions = scalars(app, select(AuditEntry.action).where(AuditEntry.target == f"programme:{programme_id}"))
    assert actions == ["programme_created", "programme_configured", "programme_deactivated"]
    assert client.get(f"{API}/programmes/999999").status_code == 404


def test_api_uses_the_survey_host_setting(make_settings: Callable[..., Any], clock: Any,
                                          make_agency: Callable[..., int]) -> None:
    from ivr_service import create_app

    from .conftest import api_token

    application = create_app(make_settings(survey_base_url="https://khaosat.daknong.gov.vn"), clock=clock)
    api_token(application)
    agency = make_agency(app=application)
    created = application.test_client().post(f"{API}/programmes", json={"agency_id": agency, "name": "Sau GD"})
    assert created.status_code == 201 and created.json["public_host"] == "https://khaosat.daknong.gov.vn"
    application.extensions["sipas"].db.dispose()


# ============================================================================ CLI

def test_cli_programme_commands(app: Any, make_agency: Callable[..., int], run_cli: Callable[..., Any],
                                clean_db: str) -> None:
    make_agency()
    env = {"SIPAS_DATABASE_URL": clean_db, "SIPAS_SECRET_KEY": "x" * 40,
           "SIPAS_SURVEY_BASE_URL": "https://ks.example.vn"}
    made = run_cli("programme", "create", "--agency", "STNMT", "--name", "Sau giao dịch", "--share-mode", "fixed",
                   "--share", "0.5", "--reminder-hours", "none", env=env)
    assert made.returncode == 0, made.stderr
    programme_id = row(app, Programme).id
    assert made.stdout.strip() == f"programme {programme_id} for agency {row(app, Programme).agency_id}"
    assert row(app, Programme).reminder_hours is None
    refused = run_cli("programme", "create", "--agency", "STNMT", "--name", "Lần hai", env=env)
    assert refused.returncode == 1 and "already has an active programme" in refused.stderr
    too_long = run_cli("programme", "configure", str(programme_id), "--template",
                       "Kinh moi Ong/Ba vui long danh gia muc do hai long doi voi ho so vua nhan tai "
                       "bo phan mot cua: {link} Tu choi nhan tin: {stop}", env=env)
    assert too_long.returncode == 1 and "template: the message needs 2 GSM-7 segments" in too_long.stderr
    listed = run_cli("programme", "list", env=env)
    assert listed.stdout.strip().split("\t")[2:] == ["active", "quarter", "Sau giao dịch"]
    shown = run_cli("programme", "show", str(programme_id), env=env)
    assert '"public_host": "https://ks.example.vn"' in shown.stdout and '"periods": []' in shown.stdout
    off = run_cli("programme", "deactivate", str(programme_id), env=env)
    assert off.returncode == 0 and row(app, Programme).active is False


def test_a_running_period_counts_as_settled_once_nothing_is_due_or_unsent(
        app: Any, make_programme: Callable[..., int], clock: Any) -> None:
    """``serve --exit-when-done`` waits for due invitations, not for the period to end."""
    make_programme(share_mode="fixed", share=1.0, delay_minutes=60)
    svc = app.extensions["sipas"]
    report(app, Record("STNMT", "A", "0912000001", clock().isoformat()))

    def settled() -> bool:
        with svc.db.begin() as session:
            return campaigns.all_settled(session, clock())

    assert settled()                      # the invitation is due in an hour: nothing to do now
    clock.advance(minutes=61)
    assert not settled()                  # now it is due
    with svc.db.begin() as session:
        contact = session.scalars(select(Contact)).one()
        contact.status, contact.next_attempt_at = ContactStatus.DONE, None
    assert settled()
