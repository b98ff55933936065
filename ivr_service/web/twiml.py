"""Render a :class:`VoiceReply` as TwiML with the official twilio library."""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from ..core import speech
from ..services.voice import VoiceReply

LANGUAGES = {"vi": "vi-VN", "en": "en-US"}
KEYS_HINT = {"vi": "Các phím hợp lệ là {keys}.", "en": "Valid keys are {keys}."}
GATHER_TIMEOUT_S = 6


def render(reply: VoiceReply, action_url: str | None, voices: dict[str, str]) -> str:
    response = VoiceResponse()
    lang = reply.language
    say_options = {"language": LANGUAGES.get(lang, "vi-VN")}
    if voices.get(lang):
        say_options["voice"] = voices[lang]
    if reply.item is not None and action_url is not None:
        # actionOnEmptyResult: silence comes back to us as an empty Digits, so the
        # re-prompt logic lives in one place instead of in a TwiML fall-through.
        options: dict[str, object] = {}
        if reply.speech:
            # Spoken answers come back as SpeechResult and Confidence; the scale's words
            # bias the recogniser. speechTimeout auto ends the turn when the citizen stops.
            options = {"input": "dtmf speech", "language": LANGUAGES.get(lang, "vi-VN"), "speech_timeout": "auto"}
            hints = speech.hints(reply.item.scale.speech.get(lang, ()))
            if hints:
                options["hints"] = hints
        gather = response.gather(**{"input": "dtmf", **options}, num_digits=1, timeout=GATHER_TIMEOUT_S,
                                 action=action_url, method="POST", action_on_empty_result=True, finish_on_key="")
        for notice in reply.notices:
            gather.say(notice, **say_options)
        if reply.keys_hint:
            gather.say(KEYS_HINT.get(lang, KEYS_HINT["vi"]).format(keys=", ".join(reply.keys_hint)), **say_options)
        if reply.item.audio:
            gather.play(reply.item.audio)
        else:
            gather.say(reply.item.voice.get(lang), **say_options)
        if reply.instructions:
            gather.say(reply.instructions, **say_options)
        return str(response)
    for notice in reply.notices:
        response.say(notice, **say_options)
    for text in reply.closing:
        response.say(text, **say_options)
    response.hangup()
    return str(response)
