"""Render a :class:`VoiceReply` as TwiML with the official twilio library.

A call asks the same few dozen prompts of everybody, so each distinct reply is built by
the library once per process and kept as text (:func:`build` behind an LRU cache); only the
action URL, which carries the call's token, is put into the copy each request gets.
``tests/test_twiml_cache.py`` holds the cached text to the library's own rendering.
"""

from __future__ import annotations

from functools import lru_cache

from twilio.twiml.voice_response import VoiceResponse

from ..core import speech
from ..services.voice import VoiceReply

LANGUAGES = {"vi": "vi-VN", "en": "en-US"}
KEYS_HINT = {"vi": "Các phím hợp lệ là {keys}.", "en": "Valid keys are {keys}."}
GATHER_TIMEOUT_S = 6
# Stands for the action URL in a cached reply: no prompt contains it, and XML escaping
# leaves it as it is.
ACTION = "https://sipas.invalid/action-url"
# How ElementTree escapes an attribute value, so the URL put in reads as the library's own.
_ATTRIBUTE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                            "\n": "&#10;", "\r": "&#13;", "\t": "&#09;"})


Prompt = tuple[str | None, str, str | None, tuple[str, ...], bool, str]


def render(reply: VoiceReply, action_url: str | None, voices: dict[str, str]) -> str:
    lang, item = reply.language, reply.item
    voice = voices.get(lang) or None
    if item is None or action_url is None:
        return _cached(lang, voice, reply.notices, reply.closing, None)
    hints = speech.hints(item.scale.speech.get(lang, ())) if reply.speech else ""
    prompt = (item.audio, item.voice.get(lang), reply.instructions, reply.keys_hint, reply.speech, hints)
    return _cached(lang, voice, reply.notices, reply.closing, prompt).replace(
        ACTION, action_url.translate(_ATTRIBUTE), 1)


def build(lang: str, voice: str | None, notices: tuple[str, ...], closing: tuple[str, ...],
          prompt: Prompt | None, action: str = ACTION) -> str:
    """The TwiML of one reply, built node by node by the library. ``prompt`` is the item's
    audio, its text, the scale's instructions, the valid keys to remind of, whether speech
    is gathered and the recogniser's hints, and ``action`` where the answer goes; without
    a prompt the call is closed."""
    response = VoiceResponse()
    say_options = {"language": LANGUAGES.get(lang, "vi-VN")}
    if voice:
        say_options["voice"] = voice
    if prompt is not None:
        audio, text, instructions, keys_hint, spoken, hints = prompt
        # actionOnEmptyResult: silence comes back to us as an empty Digits, so the
        # re-prompt logic lives in one place instead of in a TwiML fall-through.
        options: dict[str, object] = {}
        if spoken:
            # Spoken answers come back as SpeechResult and Confidence; the scale's words
            # bias the recogniser. speechTimeout auto ends the turn when the citizen stops.
            options = {"input": "dtmf speech", "language": LANGUAGES.get(lang, "vi-VN"), "speech_timeout": "auto"}
            if hints:
                options["hints"] = hints
        gather = response.gather(**{"input": "dtmf", **options}, num_digits=1, timeout=GATHER_TIMEOUT_S,
                                 action=action, method="POST", action_on_empty_result=True, finish_on_key="")
        for notice in notices:
            gather.say(notice, **say_options)
        if keys_hint:
            gather.say(KEYS_HINT.get(lang, KEYS_HINT["vi"]).format(keys=", ".join(keys_hint)), **say_options)
        if audio:
            gather.play(audio)
        else:
            gather.say(text, **say_options)
        if instructions:
            gather.say(instructions, **say_options)
        return str(response)
    for notice in notices:
        response.say(notice, **say_options)
    for text in closing:
        response.say(text, **say_options)
    response.hangup()
    return str(response)


_cached = lru_cache(maxsize=4096)(build)
