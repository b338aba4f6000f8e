"""Sentences the engine composes itself (not written in flows.yaml), per language."""

from __future__ import annotations

PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "did_you_say": "Did you say {choice}? Press 1 for yes, or 2 for no.",
        "callback_offer": (
            "We can call you back at the number ending in {last4}, and you keep your place in "
            "line. To confirm, press 1. To give a different number, press 2."
        ),
        "callback_offer_no_caller_id": "We can call you back and keep your place in line.",
        "callback_enter": (
            "Please enter the number to call, with the area code, then press pound."
        ),
        "callback_taken": (
            "Thank you. We'll call you back at the number ending in {last4} as soon as someone "
            "is free{wait}. You don't need to stay on the line."
        ),
        "callback_wait": ", in about {minutes} minutes",
        "callback_refused": "Sorry, we can't call that number back.",
        "voicemail": (
            "Please leave your name, number and message after the tone. "
            "Press pound when you're done."
        ),
        "voicemail_thanks": "Thank you. We've got your message and will get back to you.",
        "dial_failed": "Sorry, nobody answered.",
        "goodbye": "Goodbye.",
        "technical": (
            "Sorry, we're having technical trouble. Connecting you to a person."
        ),
    },
    "ko": {
        "did_you_say": "{choice}라고 말씀하셨습니까? 맞으면 1번, 아니면 2번을 누르세요.",
        "callback_offer": (
            "끝자리 {last4} 번호로 다시 전화드릴 수 있고, 대기 순서는 유지됩니다. "
            "확인하시려면 1번, 다른 번호는 2번을 누르세요."
        ),
        "callback_offer_no_caller_id": "다시 전화드리고 대기 순서를 유지해 드릴 수 있습니다.",
        "callback_enter": "지역 번호를 포함한 전화번호를 누르고 우물 정자를 누르세요.",
        "callback_taken": "감사합니다. 끝자리 {last4} 번호로 곧 다시 전화드리겠습니다{wait}.",
        "callback_wait": ", 약 {minutes}분 후",
        "callback_refused": "죄송합니다. 그 번호로는 전화드릴 수 없습니다.",
        "voicemail": "삐 소리 후에 성함, 전화번호, 메시지를 남겨 주세요.",
        "voicemail_thanks": "감사합니다. 메시지를 받았습니다.",
        "dial_failed": "죄송합니다. 연결되지 않았습니다.",
        "goodbye": "안녕히 계세요.",
        "technical": "죄송합니다. 기술적인 문제가 있습니다. 상담원에게 연결해 드리겠습니다.",
    },
}


def phrase(language: str, key: str, **values: object) -> str:
    """The sentence `key` in `language` (English when the language has none), filled in."""
    table = PHRASES.get(language) or PHRASES["en"]
    template = table.get(key) or PHRASES["en"][key]
    return template.format(**values)
