"""Speaking prompts: pick the caller's language and add <Say>/<Play>/<Pause> to a TwiML verb."""

from __future__ import annotations

from twilio.twiml import TwiML

from ivr.core.flows.schema import Defaults, Pause, Play, Prompt, PromptValue, Say
from ivr.core.i18n import languages
from ivr.core.i18n.catalog import Phrasebook


def localized(prompt: Prompt | None, language: str,
              fallback: str) -> tuple[PromptValue | None, str]:
    """The prompt's value for `language`, else the default language's, else the first given;
    with the language that value is written in (a plain prompt is in the call's)."""
    if prompt is None or not isinstance(prompt, dict):
        return prompt, language
    for lang in (language, fallback):
        if lang in prompt:
            return prompt[lang], lang
    first = next(iter(prompt), None)
    return (prompt[first], first) if first is not None else (None, language)


def voice_of(defaults: Defaults, language: str) -> tuple[str, str | None]:
    """(<Say language>, <Say voice>) for a flow language: the flow's own, else the service's
    defaults for that language code, else US English with Twilio's default voice."""
    lang = defaults.languages.get(language)
    known = languages.info(language)
    say = (lang.say if lang else None) or (known.say if known else "en-US")
    voice = (lang.voice if lang else None) or (known.voice if known else None)
    return say, voice


class Speaker:
    """Adds prompts to TwiML verbs in one call's language and voice."""

    def __init__(self, defaults: Defaults, language: str,
                 phrases: Phrasebook | None = None) -> None:
        self.defaults = defaults
        self.language = language
        self.say_language, self.voice = voice_of(defaults, language)
        self.phrases = phrases or Phrasebook(defaults.phrases)

    def words(self, key: str, **values: object) -> str:
        """The catalogue sentence `key` in this call's language, filled in."""
        return self.phrases.say(self.language, key, **values)

    def sentence(self, verb: TwiML, key: str, **values: object) -> None:
        """Append the catalogue sentence `key` to `verb`, in this call's language and voice."""
        self.text(verb, self.words(key, **values))

    def add(self, verb: TwiML, *prompts: Prompt | None) -> None:
        """Append each prompt to `verb` in order; None entries are skipped."""
        for prompt in prompts:
            value, written_in = localized(prompt, self.language, self.defaults.language)
            if value is None:
                continue
            # Text the flows lack in the call's language (the linter says so) is at least
            # read by a voice of the language it is written in.
            voice = None if written_in == self.language else voice_of(self.defaults, written_in)
            for part in [value] if isinstance(value, str) else value:
                self._add_part(verb, part, voice)

    def text(self, verb: TwiML, text: str) -> None:
        """Append one generated sentence (not from flows.yaml) to `verb`."""
        self._add_part(verb, text)

    def _add_part(self, verb: TwiML, part: str | Say | Play | Pause,
                  spoken_by: tuple[str, str | None] | None = None) -> None:
        if isinstance(part, str | Say):
            say_language, voice = spoken_by or (self.say_language, self.voice)
            text = part
            if isinstance(part, Say):
                text = part.say
                if part.language:
                    say_language, voice = voice_of(self.defaults, part.language)
            say(verb, text, say_language, voice)
        elif isinstance(part, Play):
            verb.play(part.play)
        elif isinstance(part, Pause):
            verb.pause(length=part.pause)


def say(verb: TwiML, text: str, say_language: str, voice: str | None) -> None:
    """One <Say> in a language and voice."""
    kwargs = {"language": say_language}
    if voice:
        kwargs["voice"] = voice
    verb.say(text, **kwargs)
