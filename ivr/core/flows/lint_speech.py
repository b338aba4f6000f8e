"""Speech per flow language: which languages take keypresses only, and what that rules out."""

from __future__ import annotations

from ivr.core.flows.schema import FlowFile
from ivr.core.i18n import languages


def is_keypress_only(flowfile: FlowFile, code: str) -> bool:
    """True when no speech model is configured for `code` and Vosk publishes none for it."""
    declared = flowfile.defaults.languages.get(code)
    if declared is not None and declared.speech_model:
        return False
    known = languages.info(code)
    return known is None or known.vosk_model is None


def invites_speech(code: str, text: str) -> bool:
    """True when `text` asks a caller of `code` to say something (the language's imperative
    "say", where the language table knows it)."""
    known = languages.info(code)
    return bool(known and known.say_word and known.say_word.search(text))


def unheard(code: str, phrases: list[str]) -> str:
    """Why spoken phrases listed for a keypress-only language are never heard."""
    known = languages.info(code)
    who = (f"'{code}' ({known.english_name}) has no speech model (Vosk publishes none)"
           if known else f"'{code}' has no speech model")
    model = f"a {known.english_name} model of your own" if known else "a model"
    said = ", ".join(repr(p) for p in phrases)
    return (f"{who}, so callers cannot say {said}: these phrases are never "
            f"heard; remove them, or install {model} (ivr speech install MODEL.zip) and "
            f"name it in defaults.languages.{code}.speech_model")
