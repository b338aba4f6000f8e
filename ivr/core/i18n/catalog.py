"""Message catalogues: every sentence the service composes, in every language it speaks.

The sentences live in gettext catalogues (`locale/<lang>/<domain>.po`), read with Babel, one
domain for what callers and agents hear (`voice`) and one for the web page and widget (`web`).
A message's id is a stable key (`hold.position`), so that `flows.yaml` can override any
sentence per language (`defaults.phrases.<lang>.<key>`) and the linter can name what is
missing. Placeholders are Python format fields; a number is spoken as a word in languages whose
voices need it (`ivr.core.i18n.numbers`), `{n:ordinal}` says "third", `{n:digits}` reads each
digit of a phone number, `{h:clock}` says the hour of the clock.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from functools import cache
from importlib import resources

from babel.messages.pofile import read_po

from ivr.core.i18n import numbers

DOMAINS = ("voice", "web")
SOURCE_LANGUAGE = "en"


@cache
def catalogue(domain: str) -> dict[str, dict[str, str]]:
    """{language: {key: sentence}} for `domain`, from the catalogues shipped in the package."""
    out: dict[str, dict[str, str]] = {}
    for folder in resources.files(__package__).joinpath("locale").iterdir():
        po = folder.joinpath(f"{domain}.po")
        if not po.is_file():
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=None)
        out[folder.name] = {m.id: m.string for m in catalog if m.id and m.string}
    return out


def keys(domain: str = "voice") -> list[str]:
    """Every message of `domain`, in the source catalogue's order."""
    return list(catalogue(domain)[SOURCE_LANGUAGE])


def languages(domain: str = "voice") -> list[str]:
    """The languages with a catalogue for `domain`."""
    return sorted(catalogue(domain))


def fields(template: str) -> set[str]:
    """The placeholder names a sentence uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def specs(template: str) -> dict[str, str]:
    """{placeholder: its format spec ('' when none)} of a sentence."""
    return {name: spec or "" for _, name, spec, _ in string.Formatter().parse(template) if name}


class _Spoken(string.Formatter):
    def __init__(self, language: str) -> None:
        self.language = language

    def format_field(self, value: object, format_spec: str) -> str:
        if format_spec == "ordinal":
            return numbers.ordinal(self.language, int(value))  # type: ignore[call-overload]
        if format_spec == "clock":
            return numbers.clock_hour(self.language, int(value))  # type: ignore[call-overload]
        if format_spec == "digits":
            return numbers.digits(self.language, str(value))
        if isinstance(value, int) and not isinstance(value, bool) and not format_spec:
            return numbers.cardinal(self.language, value)
        return super().format_field(value, format_spec)


class Phrasebook:
    """The catalogue of one domain with a flow file's overrides laid over it."""

    def __init__(self, overrides: Mapping[str, Mapping[str, str]] | None = None,
                 domain: str = "voice") -> None:
        self.domain = domain
        self.overrides = {lang: dict(table) for lang, table in (overrides or {}).items()}

    def template(self, language: str, key: str) -> str | None:
        """The sentence `key` in `language` (an override first), or None when it has none."""
        lang = numbers.base(language)
        found = self.overrides.get(lang, {}).get(key)
        return found if found is not None else catalogue(self.domain).get(lang, {}).get(key)

    def has_language(self, language: str) -> bool:
        lang = numbers.base(language)
        return lang in catalogue(self.domain) or lang in self.overrides

    def say(self, language: str, key: str, /, **values: object) -> str:
        """The sentence `key` in `language`, filled in. A language the flows do not define
        (the linter refuses a flow language with a missing sentence) is spoken in English."""
        # Positional-only: whisper.language has a {language} placeholder of its own.
        template = self.template(language, key)
        lang = language
        if template is None:
            lang, template = SOURCE_LANGUAGE, catalogue(self.domain)[SOURCE_LANGUAGE][key]
        return _Spoken(lang).vformat(template, (), values)

    def table(self, language: str) -> dict[str, str]:
        """Every sentence of the domain in `language`, unfilled (the widget's strings)."""
        return {key: self.template(language, key) or self.template(SOURCE_LANGUAGE, key) or ""
                for key in keys(self.domain)}

    def missing(self, language: str) -> list[str]:
        """The keys `language` has neither in the catalogue nor overridden."""
        return [key for key in keys(self.domain) if self.template(language, key) is None]
