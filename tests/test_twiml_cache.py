"""The TwiML of a reply is built by the twilio library once and reused: every reply the
questionnaires can give reads exactly as the library renders it for that call, and no
call ever gets another call's action URL."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from ivr_service.core import speech
from ivr_service.core.questionnaire import QuestionnaireRegistry
from ivr_service.services.voice import VoiceReply
from ivr_service.web import twiml
from ivr_service.web.urls import webhook_url

REGISTRY = QuestionnaireRegistry(Path(__file__).resolve().parents[1] / "config" / "questionnaires")
BASE = "https://khaosat.example.vn/sipas"


def _replies(language: str) -> list[VoiceReply]:
    """Every item of every questionnaire, plain and with what a key press can add."""
    replies = []
    for q in REGISTRY.load_all():
        for item in q.items:
            replies += [
                VoiceReply(language, item=item),
                VoiceReply(language, ("Xin chào & cảm ơn <ông/bà> \"đã nghe\"",), item=item,
                           instructions="Bấm từ 1 đến 5", speech=True),
                VoiceReply(language, ("Phím không hợp lệ.",), item=item, keys_hint=("1", "2", "0")),
            ]
    replies.append(VoiceReply(language, ("Cảm ơn.",), closing=("Tạm biệt.", "Đường dây nóng 1022.")))
    return replies


def _library(reply: VoiceReply, action: str | None, voices: dict[str, str]) -> str:
    """The reply built node by node by the library, for this action URL, with no cache."""
    lang, item = reply.language, reply.item
    if item is None or action is None:
        return twiml.build(lang, voices.get(lang) or None, reply.notices, reply.closing, None)
    hints = speech.hints(item.scale.speech.get(lang, ())) if reply.speech else ""
    prompt = (item.audio, item.voice.get(lang), reply.instructions, reply.keys_hint, reply.speech, hints)
    return twiml.build(lang, voices.get(lang) or None, reply.notices, reply.closing, prompt, action=action)


@pytest.mark.parametrize("language", ["vi", "en"])
@pytest.mark.parametrize("voices", [{}, {"vi": "Google.vi-VN-Standard-A", "en": "Polly.Joanna"}])
def test_every_reply_reads_as_the_library_renders_it(language: str, voices: dict[str, str]) -> None:
    replies = _replies(language)
    assert len(replies) > 60
    for n, reply in enumerate(replies):
        token = f"{n:032x}"
        item = reply.item.id if reply.item else ""
        action = webhook_url(BASE, "gather", token, item=item)
        for _twice in range(2):   # built, then from the cache
            assert twiml.render(reply, action, voices) == _library(reply, action, voices), (item, language)


def test_an_action_url_is_escaped_as_the_library_escapes_it() -> None:
    item = REGISTRY.get("sipas-2024").rated_items[0]
    reply = VoiceReply("vi", item=item)
    action = f"{BASE}/voice/{'a' * 32}/gather?item={item.id}&lang=vi&x=\"<>\t"
    rendered = twiml.render(reply, action, {})
    assert rendered == _library(reply, action, {})
    assert ElementTree.fromstring(rendered).find("./Gather").get("action") == action  # type: ignore[union-attr]


def test_a_cached_reply_carries_each_call_its_own_action_url() -> None:
    item = REGISTRY.get("sipas-2024").rated_items[3]
    reply = VoiceReply("vi", item=item, instructions="từ 1 đến 5")
    twiml._cached.cache_clear()
    actions = [webhook_url(BASE, "gather", f"{n:032x}", item=item.id) for n in range(3)]
    for action in actions:
        gather = ElementTree.fromstring(twiml.render(reply, action, {})).find("./Gather")
        assert gather is not None and gather.get("action") == action
        assert twiml.ACTION not in twiml.render(reply, action, {})
    info = twiml._cached.cache_info()
    assert (info.misses, info.hits) == (1, 5)   # built once, reused for every other call
