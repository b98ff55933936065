"""The web form at an SMS link and the stop-messages page: the service (services.webform)
and the HTTP pages, on the real database (SQLite, and PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from xml.etree.ElementTree import Element, TreeBuilder

import pytest
from sqlalchemy import select

from ivr_service.core.messages import new_code
from ivr_service.persistence.models import (
    Answer,
    Attempt,
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Interview,
    OptOut,
    SurveyLink,
)
from ivr_service.services import campaigns, messaging, webform
from ivr_service.services.errors import InvalidInput, NotFound
from ivr_service.services.webform import LinkClosed, LinkStatus, NotAsked

from .conftest import count, questionnaire, row

PHONE = "+84912345678"
FIVE = ["1", "2", "3", "4", "5", "0"]            # the five-level scale and its no-opinion key
BOT_AGENTS = ["facebookexternalhit/1.1", "Mozilla/5.0 (compatible; Zalo-Preview)", "WhatsApp/2.23",
              "TelegramBot (like TwitterBot)", "Slackbot-LinkExpanding 1.0", "SkypeUriPreview Preview/0.5",
              "Googlebot/2.1", "Mozilla/5.0 crawler", "spider"]
PHONE_UA = "Mozilla/5.0 (Linux; Android 10; Nokia 2.3) AppleWebKit/537.36 Chrome/120 Mobile Safari/537.36"


@dataclass
class Link:
    code: str
    link_id: int
    attempt_id: int
    contact_id: int
    campaign_id: int


def new_link(app: Any, campaign_id: int, phone: str = PHONE, days: int = 7) -> Link:
    """A live SMS invitation of a new contact of ``campaign_id``: the contact ACTIVE, an
    Attempt(channel="sms", IN_PROGRESS) and its SurveyLink, expiring in ``days``."""
    svc = app.extensions["sipas"]
    now = svc.clock()
    with svc.db.begin() as session:
        contact = Contact(campaign_id=campaign_id, phone_e164=phone, channel="sms", status=ContactStatus.ACTIVE,
                          attempt_count=1, channel_attempts=1, created_at=now)
        session.add(contact)
        session.flush()
        attempt = Attempt(contact_id=contact.id, campaign_id=campaign_id, channel="sms", number=1,
                          status=AttemptStatus.IN_PROGRESS, provider="simulator", created_at=now)
        session.add(attempt)
        session.flush()
        link = SurveyLink(code=new_code(), attempt_id=attempt.id, contact_id=contact.id,
                          campaign_id=campaign_id, created_at=now, expires_at=now + timedelta(days=days))
        session.add(link)
        session.flush()
        return Link(link.code, link.id, attempt.id, contact.id, campaign_id)


def sms_campaign(app: Any, make_campaign: Callable[..., int], name: str = "Quý 4", **config: Any) -> int:
    """A running campaign whose channel plan is one SMS invitation."""
    config.setdefault("channel_plan", [{"channel": "sms", "max_attempts": 1}])
    campaign_id = make_campaign(name=name, app=app, **config)
    with app.extensions["sipas"].db.begin() as session:
        session.get(Campaign, campaign_id).status = CampaignStatus.RUNNING
    return campaign_id


@pytest.fixture
def make_link(app: Any, make_campaign: Callable[..., int]) -> Callable[..., Link]:
    """``make(phone, campaign=name, days=7, **campaign config)``: a live link (see new_link);
    campaigns are made once per name."""
    campaigns: dict[str, int] = {}

    def make(phone: str = PHONE, *, campaign: str = "Quý 4", days: int = 7, **config: Any) -> Link:
        if campaign not in campaigns:
            campaigns[campaign] = sms_campaign(app, make_campaign, campaign, **config)
        return new_link(app, campaigns[campaign], phone, days)
    return make


@pytest.fixture
def link(make_link: Callable[..., Link]) -> Link:
    return make_link()


def web_items(app: Any) -> list[str]:
    return [i.id for i in questionnaire(app).items if "web" in i.channels]


def opened(app: Any, link: Link) -> tuple[int, Any]:
    stored = row(app, SurveyLink, id=link.link_id)
    return stored.opens, stored.opened_at


class Form:
    """The service, called as the web layer does: one transaction per request."""

    def __init__(self, app: Any, code: str) -> None:
        self.svc = app.extensions["sipas"]
        self.code = code

    def open(self, person: bool = True, show: str | None = None) -> webform.LinkState:
        with self.svc.db.begin() as session:
            return webform.open_link(session, self.svc.registry, self.code, self.svc.clock(), person, show)

    def answer(self, item: str, key: str | None) -> webform.LinkState:
        with self.svc.db.begin() as session:
            return webform.answer(session, self.svc.registry, self.code, item, key, self.svc.clock())

    def stop(self) -> webform.Stopped:
        with self.svc.db.begin() as session:
            return webform.stop(session, self.svc.registry, self.code, self.svc.clock())

    def run(self, keys: dict[str, str], default: str = "4", stop_before: str | None = None) -> list[str]:
        """Answer whatever is asked (``keys`` per item, else ``default`` where the scale has it,
        else the scale's first key); the items asked."""
        seen = []
        state = self.open()
        while state.status is LinkStatus.LIVE and state.item is not None and state.item.id != stop_before:
            seen.append(state.item.id)
            assert len(seen) < 40
            scale = state.item.scale
            fallback = default if default in scale.valid_keys else scale.options[0].key
            state = self.answer(state.item.id, keys.get(state.item.id, fallback))
        return seen


# ============================================================================ questionnaire

def test_web_channel_asks_the_rated_items_and_the_nine_needs_items_without_the_voice_consent(app: Any) -> None:
    q = questionnaire(app)
    web = [i for i in q.items if "web" in i.channels]
    kinds = {kind: [i.id for i in web if i.kind == kind] for kind in ("consent", "factor", "screening",
                                                                      "overall", "needs")}
    assert kinds == {"consent": [], "factor": [f"C{n:02d}" for n in range(1, 17)],
                     "screening": ["SCREEN_FEEDBACK"], "overall": ["OVERALL"],
                     "needs": [f"N{n}" for n in range(1, 10)]}
    assert [i.id for i in q.items if "voice" in i.channels and i.kind == "needs"] == []
    # The written wording is the seed's criterion text, verbatim.
    assert q.item("C01").text.vi == ("Trung tâm Phục vụ hành chính công/Bộ phận Tiếp nhận và trả kết quả có biển "
                                     "hiệu, hướng dẫn rõ ràng, giúp người dân dễ tìm, dễ thấy.")
    assert q.item("N9").text.vi == ("Nâng cao chất lượng tiếp nhận, giải quyết ý kiến góp ý, phản ánh, kiến nghị "
                                    "của người dân.")


# ============================================================================ service

def test_opening_counts_a_person_and_never_uses_the_link_up(app: Any, link: Link, clock: Any) -> None:
    form = Form(app, link.code)
    for _ in range(3):
        state = form.open(person=False)          # link-preview bots, HEAD
        assert state.status is LinkStatus.LIVE and state.item is not None and state.item.id == "C01"
    assert opened(app, link) == (0, None)
    first = clock()
    form.open()
    clock.advance(hours=1)
    state = form.open(person=True)
    assert opened(app, link) == (2, first)
    assert (state.position, state.total, state.answered) == (1, 24, 0)
    assert count(app, Answer) == 0 and count(app, Interview) == 0
    assert row(app, Attempt, id=link.attempt_id).status is AttemptStatus.IN_PROGRESS
    assert row(app, SurveyLink, id=link.link_id).finished_at is None


def test_code_is_case_insensitive_and_unknown_codes_say_so(app: Any, link: Link) -> None:
    assert Form(app, link.code.lower()).open().status is LinkStatus.LIVE
    for code in ["ZZZZZZZZZ", "abc", "A_B-C0OIL", "x" * 200]:
        assert Form(app, code).open().status is LinkStatus.UNKNOWN
        with pytest.raises(NotFound, match="link"):
            Form(app, code).answer("C01", "4")


def test_answers_are_saved_one_by_one_and_the_form_resumes_where_it_was_left(app: Any, link: Link) -> None:
    form = Form(app, link.code)
    assert form.run({}, stop_before="C04") == ["C01", "C02", "C03"]
    interview = row(app, Interview, contact_id=link.contact_id)
    assert interview.channel == "web" and interview.questionnaire_key == "sipas-2024"
    # Leave, come back later (a new request): the next unanswered item, progress 4/24.
    state = Form(app, link.code.lower()).open()
    assert state.item is not None and (state.item.id, state.position, state.total) == ("C04", 4, 24)
    assert state.previous == "C03"
    stored = {a.item_id: (a.value, a.status, a.attempt_id) for a in
              _all(app, select(Answer).order_by(Answer.id))}
    assert stored == {i: (4, "answered", link.attempt_id) for i in ("C01", "C02", "C03")}


def test_back_button_changes_an_earlier_answer_in_place(app: Any, link: Link) -> None:
    form = Form(app, link.code)
    form.run({}, stop_before="C03")
    back = form.open(show="C01")
    assert back.item is not None and back.item.id == "C01" and back.chosen == "4" and back.previous is None
    state = form.answer("C01", "2")
    assert state.item is not None and state.item.id == "C03"       # back to where the citizen was
    assert [(a.item_id, a.value) for a in _all(app, select(Answer).order_by(Answer.id))] == [("C01", 2), ("C02", 4)]
    # An item further on cannot be answered ahead of time; a voice-only item never.
    with pytest.raises(NotAsked, match="item: C05 is not asked now; the current item is C03"):
        form.answer("C05", "4")
    with pytest.raises(InvalidInput, match="item: 'CONSENT' is not an item of the web form"):
        form.answer("CONSENT", "1")


def test_a_key_off_the_scale_is_refused_naming_the_field(app: Any, link: Link) -> None:
    form = Form(app, link.code)
    with pytest.raises(InvalidInput, match=r"answer: '7' is not an option of item C01; expected one of "
                                           r"1, 2, 3, 4, 5, 0") as caught:
        form.answer("C01", "7")
    assert caught.value.field == "answer"
    for key in [None, "", " ", "*", "12"]:
        with pytest.raises(InvalidInput, match="answer"):
            form.answer("C01", key)
    assert count(app, Answer) == 0
    state = form.answer("C01", "0")                 # no opinion is an answer
    assert state.item is not None and state.item.id == "C02"
    assert _all(app, select(Answer.value, Answer.status)) == [(None, "no_opinion")]


def test_finishing_completes_interview_link_attempt_and_contact(app: Any, link: Link, clock: Any) -> None:
    form = Form(app, link.code)
    asked = form.run({"SCREEN_FEEDBACK": "2"})
    assert asked == web_items(app)[:13] + ["SCREEN_FEEDBACK", "OVERALL"] + [f"N{n}" for n in range(1, 10)]
    assert len(asked) == 24
    interview = row(app, Interview, contact_id=link.contact_id)
    assert (interview.status.value, interview.channel, interview.ended_at) == ("complete", "web", clock())
    attempt = row(app, Attempt, id=link.attempt_id)
    assert (attempt.status, attempt.outcome, attempt.ended_at) == (AttemptStatus.COMPLETED, "completed", clock())
    contact = row(app, Contact, id=link.contact_id)
    assert (contact.status, contact.disposition) == (ContactStatus.DONE, "1.1")
    assert row(app, SurveyLink, id=link.link_id).finished_at == clock()
    # A finished link shows "answered" and accepts nothing, not even the back button.
    state = form.open()
    assert state.status is LinkStatus.FINISHED and state.answered_here and state.item is None
    with pytest.raises(LinkClosed, match="already finished") as caught:
        form.answer("C01", "1")
    assert caught.value.state.status is LinkStatus.FINISHED
    assert count(app, Answer) == 24


def test_screening_yes_asks_factor_five_and_changing_it_back_drops_those_answers(app: Any, link: Link) -> None:
    form = Form(app, link.code)
    form.run({"SCREEN_FEEDBACK": "1"}, stop_before="C16")
    state = form.open()
    assert state.item is not None and (state.item.id, state.position, state.total) == ("C16", 17, 27)
    form.answer("SCREEN_FEEDBACK", "2")             # back button: no feedback after all
    state = form.open()
    assert state.item is not None and (state.item.id, state.total) == ("OVERALL", 24)
    assert not {"C14", "C15"} & {a.item_id for a in _all(app, select(Answer))}


def test_disposition_comes_from_the_flow_partial_after_earlier_unanswered_voice_items(
        app: Any, link: Link) -> None:
    # Voice → SMS plan: the contact left most rated items unanswered on an earlier call.
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        voice = Attempt(contact_id=link.contact_id, campaign_id=link.campaign_id, channel="voice", number=9,
                        status=AttemptStatus.COMPLETED, provider="simulator")
        session.add(voice)
        interview = Interview(contact_id=link.contact_id, campaign_id=link.campaign_id, channel="voice",
                              questionnaire_key="sipas-2024")
        session.add(interview)
        session.flush()
        for item in [f"C{n:02d}" for n in range(1, 6)]:
            session.add(Answer(interview_id=interview.id, attempt_id=voice.id, item_id=item, value=None,
                               status="unanswered", digits=""))
    asked = Form(app, link.code).run({"SCREEN_FEEDBACK": "2"})
    assert asked[0] == "C06" and len(asked) == 19      # 9 of the 14 rated items answered
    stored = row(app, Interview, contact_id=link.contact_id)
    assert (stored.status.value, stored.channel) == ("partial", "web")
    assert row(app, Attempt, id=link.attempt_id).outcome == "partial"
    assert row(app, Contact, id=link.contact_id).disposition == "1.2"


def test_expired_link_takes_no_answers_but_its_stop_page_works(app: Any, link: Link, clock: Any) -> None:
    form = Form(app, link.code)
    form.answer("C01", "5")
    clock.advance(days=7)
    assert form.open().status is LinkStatus.EXPIRED
    assert opened(app, link)[0] == 0
    with pytest.raises(LinkClosed, match="has expired"):
        form.answer("C02", "4")
    assert count(app, Answer) == 1
    form.stop()
    assert count(app, OptOut, OptOut.phone_e164 == PHONE) == 1
    assert row(app, Contact, id=link.contact_id).disposition == "2.11"


def test_stop_opts_the_number_out_everywhere_and_finishes_this_contact_as_refused(
        app: Any, make_link: Callable[..., Link], make_campaign: Callable[..., int], clock: Any) -> None:
    here = make_link()
    other = make_link(campaign="Quý 1")                       # same number, another campaign, live link
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:                           # and a pending voice contact elsewhere
        third = make_campaign(name="Khác")
        pending = Contact(campaign_id=third, phone_e164=PHONE, next_attempt_at=clock())
        bystander = Contact(campaign_id=third, phone_e164="+84912000000", next_attempt_at=clock())
        session.add_all([pending, bystander])
        session.flush()
        pending_id, bystander_id = pending.id, bystander.id
    Form(app, here.code).answer("C01", "3")
    stopped = Form(app, here.code.lower()).stop()
    assert (stopped.code, stopped.was_finished) == (here.code, False)
    entry = row(app, OptOut, phone_e164=PHONE)
    assert (entry.source, entry.campaign_id, entry.created_at) == ("web", here.campaign_id, clock())
    contact = row(app, Contact, id=here.contact_id)
    assert (contact.status, contact.disposition) == (ContactStatus.DONE, "2.11")
    attempt = row(app, Attempt, id=here.attempt_id)
    assert (attempt.status, attempt.outcome) == (AttemptStatus.COMPLETED, "refused")
    assert row(app, Interview, contact_id=here.contact_id).status.value == "refused"
    assert row(app, Contact, id=pending_id).status is ContactStatus.DONE
    assert row(app, Contact, id=pending_id).disposition == "2.11"
    assert row(app, Contact, id=bystander_id).status is ContactStatus.PENDING
    state = Form(app, here.code).open()
    assert state.status is LinkStatus.FINISHED and state.outcome == "refused" and not state.answered_here
    # Stopping again changes nothing; the other campaign's link is still one of this number.
    assert Form(app, here.code).stop().was_finished
    assert count(app, OptOut) == 1
    assert Form(app, other.code).open().status is LinkStatus.LIVE


def test_stop_after_finishing_keeps_the_complete(app: Any, link: Link) -> None:
    Form(app, link.code).run({"SCREEN_FEEDBACK": "2"})
    assert Form(app, link.code).stop().was_finished
    assert row(app, Contact, id=link.contact_id).disposition == "1.1"
    assert row(app, Attempt, id=link.attempt_id).outcome == "completed"
    assert count(app, OptOut, OptOut.phone_e164 == PHONE) == 1


def test_a_web_consent_no_ends_as_refused_and_opts_out(app: Any, make_link: Callable[..., Link]) -> None:
    link = make_link(questionnaire="sipas-2level-2024")
    q = questionnaire(app, "sipas-2level-2024")
    consent = next(i for i in q.items if i.kind == "consent")
    # The repository's questionnaires ask consent by voice only; a web consent item is
    # exercised through a questionnaire variant that opens it to the web.
    from dataclasses import replace
    web_consent = replace(q, sections=tuple(replace(s, items=tuple(replace(i, channels=("voice", "web"))
                                                                  for i in s.items)) if s.kind == "consent"
                                            else s for s in q.sections))
    app.extensions["sipas"].registry._cache["sipas-2level-2024"] = web_consent
    form = Form(app, link.code)
    assert form.open().item == replace(consent, channels=("voice", "web"))
    no = next(o.key for o in consent.scale.options if o.value == 0)
    state = form.answer(consent.id, no)
    assert state.status is LinkStatus.FINISHED and state.outcome == "refused"
    assert row(app, Contact, id=link.contact_id).disposition == "2.11"
    assert row(app, Interview, contact_id=link.contact_id).status.value == "refused"
    assert count(app, OptOut, OptOut.phone_e164 == PHONE, OptOut.source == "web") == 1


def test_concurrent_duplicate_submits_store_one_row_and_no_error(app: Any, link: Link) -> None:
    form = Form(app, link.code)
    form.run({}, stop_before="C05")
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def submit(key: str) -> None:
        barrier.wait()
        try:
            results.append(Form(app, link.code).answer("C05", key))
        except Exception as exc:  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=submit, args=(str(1 + n % 5),)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, webform.LinkState) for r in results), results
    assert count(app, Answer, Answer.item_id == "C05") == 1
    assert count(app, Interview) == 1


def test_concurrent_first_answers_make_one_interview(app: Any, link: Link) -> None:
    barrier = threading.Barrier(6)
    results: list[Any] = []

    def submit() -> None:
        barrier.wait()
        try:
            results.append(Form(app, link.code).answer("C01", "4"))
        except Exception as exc:  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, webform.LinkState) for r in results), results
    assert count(app, Interview) == 1 and count(app, Answer) == 1


def test_concurrent_last_answers_finish_once(app: Any, link: Link) -> None:
    form = Form(app, link.code)
    form.run({"SCREEN_FEEDBACK": "2"}, stop_before="N9")
    barrier = threading.Barrier(4)
    results: list[Any] = []

    def submit() -> None:
        barrier.wait()
        try:
            results.append(Form(app, link.code).answer("N9", "1"))
        except Exception as exc:  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    finished = [r for r in results if isinstance(r, webform.LinkState)]
    refused = [r for r in results if isinstance(r, LinkClosed)]
    assert len(finished) == 1 and len(refused) == 3, results
    assert row(app, Contact, id=link.contact_id).disposition == "1.1"
    assert count(app, Answer, Answer.item_id == "N9") == 1


# ============================================================================ HTTP

class _Tree(HTMLParser):
    """HTML to an ElementTree (the pages are well formed but for void elements)."""

    VOID = frozenset({"meta", "link", "input", "br", "img", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.builder = TreeBuilder()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.builder.start(tag, {k: v or "" for k, v in attrs})
        if tag in self.VOID:
            self.builder.end(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID:
            self.builder.end(tag)

    def handle_data(self, data: str) -> None:
        self.builder.data(data)


def page(response: Any) -> Element:
    parser = _Tree()
    parser.feed(response.get_data(as_text=True))
    parser.close()
    return parser.builder.close()


def attrs(doc: Element, path: str, name: str) -> list[str | None]:
    return [e.get(name) for e in doc.findall(path)]


def texts(doc: Element, path: str) -> list[str]:
    return [" ".join("".join(e.itertext()).split()) for e in doc.findall(path)]


def test_pages_protocol_get_post_redirect_and_headers(app: Any, client: Any, link: Link) -> None:
    response = client.get(f"/s/{link.code.lower()}", headers={"User-Agent": PHONE_UA})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Robots-Tag"].startswith("noindex")
    doc = page(response)
    assert doc.get("lang") == "vi"
    assert attrs(doc, ".//form[@method='post']", "action") == [f"/s/{link.code}"]
    assert attrs(doc, ".//input[@type='hidden'][@name='item']", "value") == ["C01"]
    assert attrs(doc, ".//input[@type='radio'][@name='answer']", "value") == FIVE
    assert texts(doc, ".//legend") == [questionnaire(app).item("C01").text.vi]
    assert texts(doc, ".//h1") == ["Tiếp cận dịch vụ"]
    assert "Câu 1/24" in texts(doc, ".//p[@class='progress']")
    assert attrs(doc, ".//footer/a", "href") == [f"/s/{link.code}/stop"]
    assert texts(doc, ".//footer/a") == ["Từ chối nhận tin"]
    assert not doc.findall(".//script") and "http" not in response.get_data(as_text=True).replace(
        "http-equiv", "")
    assert opened(app, link)[0] == 1

    response = client.post(f"/s/{link.code}", data={"item": "C01", "answer": "5", "lang": "vi"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/s/{link.code}?lang=vi")
    doc = page(client.get(response.headers["Location"]))
    assert attrs(doc, ".//input[@name='item']", "value") == ["C02"]
    back = [a for a in doc.findall(".//a") if "item=C01" in (a.get("href") or "")]
    assert ["".join(a.itertext()) for a in back] == ["Quay lại câu trước"]
    # Back: the earlier item with its answer checked.
    doc = page(client.get(f"/s/{link.code}?item=C01"))
    assert attrs(doc, ".//input[@checked]", "value") == ["5"]


def test_head_and_link_preview_bots_never_count_as_opens(app: Any, client: Any, link: Link) -> None:
    assert client.head(f"/s/{link.code}", headers={"User-Agent": PHONE_UA}).status_code == 200
    for agent in BOT_AGENTS:
        assert client.get(f"/s/{link.code}", headers={"User-Agent": agent}).status_code == 200
    assert opened(app, link) == (0, None)
    client.get(f"/s/{link.code}", headers={"User-Agent": PHONE_UA})
    assert opened(app, link)[0] == 1


def test_no_option_chosen_shows_the_same_item_with_an_error(app: Any, client: Any, link: Link) -> None:
    client.post(f"/s/{link.code}", data={"item": "C01", "answer": "4"})
    for data in [{"item": "C02"}, {"item": "C02", "answer": "9"}]:
        response = client.post(f"/s/{link.code}", data=data)
        assert response.status_code == 422
        doc = page(response)
        assert attrs(doc, ".//input[@name='item']", "value") == ["C02"]
        assert texts(doc, ".//p[@class='error']") == ["Xin chọn một câu trả lời."]
        assert attrs(doc, ".//fieldset", "aria-describedby") == ["error"]
    response = client.post(f"/s/{link.code}", data={"item": "OVERALL", "answer": "4", "lang": "en"})
    assert response.status_code == 409
    doc = page(response)
    assert doc.get("lang") == "en" and attrs(doc, ".//input[@name='item']", "value") == ["C02"]
    assert count(app, Answer) == 1


def test_english_on_every_page_via_the_lang_switch(app: Any, client: Any, link: Link) -> None:
    doc = page(client.get(f"/s/{link.code}"))
    switch = attrs(doc, ".//a[@class='lang']", "href")[0]
    assert switch == f"/s/{link.code}?lang=en"
    doc = page(client.get(switch))
    assert doc.get("lang") == "en"
    assert texts(doc, ".//legend") == [questionnaire(app).item("C01").text.en]
    assert texts(doc, ".//label")[0] == "Very dissatisfied"
    assert attrs(doc, ".//input[@name='lang']", "value") == ["en"]
    assert texts(doc, ".//footer/a") == ["Stop messages"]
    response = client.post(f"/s/{link.code}", data={"item": "C01", "answer": "4", "lang": "en"})
    assert response.headers["Location"].endswith("?lang=en")
    doc = page(client.get(f"/s/{link.code}/stop?lang=en"))
    assert doc.get("lang") == "en" and texts(doc, ".//h1") == ["Stop survey messages"]


def test_kind_pages_for_unknown_expired_and_finished_links(app: Any, client: Any, link: Link, clock: Any,
                                                           make_link: Callable[..., Link]) -> None:
    response = client.get("/s/ZZZZZZZZZ")
    assert response.status_code == 404 and "Không tìm thấy khảo sát" in response.get_data(as_text=True)
    assert client.post("/s/ZZZZZZZZZ", data={"item": "C01", "answer": "4"}).status_code == 404
    assert client.get("/s/not_a_code/stop").status_code == 404
    for item in web_items(app):
        if item not in ("C14", "C15", "C16"):
            response = client.post(f"/s/{link.code}", data={"item": item, "answer": "2" if item == "SCREEN_FEEDBACK"
                                                             else "1" if item.startswith("N") else "4"})
            assert response.status_code == 303, (item, response.get_data(as_text=True))
    doc = page(client.get(f"/s/{link.code}"))
    assert texts(doc, ".//h1") == ["Cảm ơn Ông/bà!"] and not doc.findall(".//form")
    response = client.post(f"/s/{link.code}", data={"item": "C01", "answer": "1"})
    assert response.status_code == 409 and "Khảo sát đã kết thúc" in response.get_data(as_text=True)
    late = make_link("+84912000111")
    clock.advance(days=8)
    response = client.get(f"/s/{late.code}?lang=en")
    assert response.status_code == 410 and "This link has expired" in response.get_data(as_text=True)
    assert attrs(page(response), ".//footer/a", "href") == [f"/s/{late.code}/stop?lang=en"]
    assert client.post(f"/s/{late.code}", data={"item": "C01", "answer": "4"}).status_code == 410


def test_stop_page_confirms_then_opts_out(app: Any, client: Any, link: Link) -> None:
    doc = page(client.get(f"/s/{link.code.lower()}/stop"))
    assert attrs(doc, ".//form", "action") == [f"/s/{link.code}/stop"]
    assert count(app, OptOut) == 0                 # showing the page changes nothing
    response = client.post(f"/s/{link.code}/stop", data={"lang": "vi"})
    assert response.status_code == 200
    assert texts(page(response), ".//h1") == ["Đã từ chối nhận tin"]
    assert response.headers["Cache-Control"] == "no-store"
    assert row(app, OptOut, phone_e164=PHONE).source == "web"
    assert row(app, Contact, id=link.contact_id).disposition == "2.11"
    response = client.post(f"/s/{link.code}", data={"item": "C01", "answer": "4"})
    assert response.status_code == 409


def test_page_weight_is_under_30_kb(app: Any, client: Any, link: Link) -> None:
    html = client.get(f"/s/{link.code}").get_data()
    response = client.get("/survey-static/survey.css")
    css = response.get_data()
    response.close()
    assert len(css) > 0 and len(html) + len(css) < 30 * 1024


def _all(app: Any, statement: Any) -> list[Any]:
    with app.extensions["sipas"].db.begin() as session:
        result = session.execute(statement)
        return [r[0] if len(r) == 1 and isinstance(r[0], Answer) else tuple(r) for r in result]


def test_a_cancelled_campaign_classifies_a_left_web_form_by_the_web_channel(
        app: Any, make_link: Callable[..., Link], clock: Any) -> None:
    """The QR-style questionnaire is web-only: judged as a phone interview it would have no
    applicable items and a half-answered form would end as a break-off."""
    link = make_link(campaign="Biểu mẫu 4 mức", questionnaire="sipas-qr-2024")
    svc = app.extensions["sipas"]
    q = svc.registry.get("sipas-qr-2024")
    rated = [item for item in q.rated_items if "web" in item.channels and item.condition is None]
    for item in rated[: len(rated) * 3 // 4]:                      # three quarters of the rated items
        with svc.db.begin() as session:
            webform.answer(session, svc.registry, link.code, item.id, item.scale.options[0].key, clock())
    with svc.db.begin() as session:
        campaigns.transition(session, link.campaign_id, "cancel", clock(), svc.registry)
    assert row(app, Contact, id=link.contact_id).status is ContactStatus.ACTIVE   # its link is still out
    clock.advance(days=8)
    assert messaging.expire_links(svc.db, svc.registry, clock()) == 1
    assert row(app, Contact, id=link.contact_id).disposition == "1.2"
