"""Speaking prompts: pick the caller's language and add <Say>/<Play>/<Pause> to a TwiML verb."""

from __future__ import annotations

from twilio.twiml import TwiML

from ivr.core.flows.schema import Defaults, Pause, Play, Prompt, PromptValue, Say


def localized(prompt: Prompt | None, language: str, fallback: str) -> PromptValue | None:
    """The prompt's value for `language`, else the default language's, else the first given."""
    if prompt is None or not isinstance(prompt, dict):
        return prompt
    for lang in (language, fallback):
        if lang in prompt:
            return prompt[lang]
    return next(iter(prompt.values()), None)


class Speaker:
    """Adds prompts to TwiML verbs in one call's language and voice."""

    def __init__(self, defaults: Defaults, language: str) -> None:
        self.defaults = defaults
        self.language = language
        lang = defaults.languages.get(language) or defaults.languages.get(defaults.language)
        self.say_language = lang.say if lang else "en-US"
        self.voice = lang.voice if lang else None

    def add(self, verb: TwiML, *prompts: Prompt | None) -> None:
        """Append each prompt to `verb` in order; None entries are skipped."""
        for prompt in prompts:
            value = localized(prompt, self.language, self.defaults.language)
            if value is None:
                continue
            for part in [value] if isinstance(value, str) else value:
                self._add_part(verb, part)

    def text(self, verb: TwiML, text: str) -> None:
        """Append one generated sentence (not from flows.yaml) to `verb`."""
        self._add_part(verb, text)

    def _add_part(self, verb: TwiML, part: str | Say | Play | Pause) -> None:
        if isinstance(part, str | Say):
            text = part if isinstance(part, str) else part.say
            kwargs = {"language": self.say_language}
            if self.voice:
                kwargs["voice"] = self.voice
            verb.say(text, **kwargs)
        elif isinstance(part, Play):
            verb.play(part.play)
        elif isinstance(part, Pause):
            verb.pause(length=part.pause)
