"""The languages of callbacks: which one a request may ask for, how its calls speak, and the
words, numbers and dates of the hosted page and the widget.

A callback speaks a flow language: one of `defaults.languages` in flows.yaml. The sentences
come from the message catalogues (`ivr.core.i18n`, domain "voice" for calls and "web" for the
page and widget) with the flows' `defaults.phrases` laid over them. The person called hears
the request's language; the agent hears their own (the first of `Agent.languages`).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_skeleton
from babel.numbers import format_decimal

from callback.deps import Deps
from callback.errors import InvalidRequest, excerpt
from callback.settings import DEFAULTS
from ivr.core.engine.prompts import Speaker, voice_of
from ivr.core.flows import naming
from ivr.core.flows.lint_languages import used_languages
from ivr.core.i18n.catalog import Phrasebook
from ivr.core.i18n.languages import foreign_letters
from ivr.infra.agents import whisper_language
from ivr.infra.agents.models import Agent

_LETTER = re.compile(r"[^\W\d_]")
# A moment to read a locale's clock words from: 9 AM on a Monday in winter, New York time.
_SAMPLE = dt.datetime(2026, 1, 5, 9, 0, tzinfo=ZoneInfo("America/New_York"))


def flow_languages(deps: Deps) -> list[str]:
    """The language codes the current flows speak: those of `defaults.languages`, and any
    a flow or menu option chooses (the linter lets a known language go undeclared)."""
    return list(used_languages(deps.flows()))


def default_language(deps: Deps) -> str:
    """The flows' default language (`defaults.language`)."""
    return deps.flows().defaults.language


def _match(codes: list[str], code: str) -> str | None:
    """The flow code `code` names: the same code in any case, or a tag of it ('bn-IN')."""
    wanted = code.strip().lower()
    for candidate in (wanted, wanted.split("-")[0].split("_")[0]):
        for known in codes:
            if known.lower() == candidate:
                return known
    return None


def requested_language(deps: Deps, code: str | None) -> str:
    """The language a request asked for, as a flow code; the default when it names none.
    InvalidRequest, listing the codes there are, for a language the flows do not define."""
    if not code:
        return default_language(deps)
    codes = flow_languages(deps)
    found = _match(codes, code)
    if found is None:
        raise InvalidRequest(
            f"Unknown language '{excerpt(code)}': a callback can be placed in "
            f"{', '.join(sorted(codes))} (the languages of flows.yaml). "
            f"Send one of these codes, or leave 'language' out for {default_language(deps)}.")
    return found


def page_language(deps: Deps, code: str | None) -> str:
    """The language a page or a call asks for, else the default (never an error: a link with
    an old `?lang=` still opens, in the default language)."""
    return (_match(flow_languages(deps), code) if code else None) or default_language(deps)


class Speech(Speaker):
    """The voice catalogue for one leg of a callback, said in its language and voice: a
    flow language, or one the catalogue has (an agent's), else the flows' default."""

    def __init__(self, deps: Deps, language: str) -> None:
        flows = deps.flows()
        book = Phrasebook(flows.defaults.phrases)
        known = _match(list(used_languages(flows)), language)
        chosen = known or (language if book.has_language(language) else flows.defaults.language)
        super().__init__(flows.defaults, chosen, book)


def customer_speech(deps: Deps, language: str) -> Speech:
    """How the person called back is spoken to: in the language of their request."""
    return Speech(deps, language or default_language(deps))


def agent_speech(deps: Deps, agent_id: int | None) -> Speech:
    """How an agent is spoken to: the first language they list, else the flows' default."""
    agent = None
    if agent_id is not None:
        with deps.db.session() as session:
            agent = session.get(Agent, agent_id)
            if agent is not None:
                session.expunge(agent)
    return Speech(deps, whisper_language(agent, default_language(deps)))


def language_name(speech: Speech, code: str) -> str:
    """The name of the language `code` in `speech`'s language ("Bengali", "बंगाली")."""
    return naming.language_name(speech.phrases, speech.language, code)


def queue_label(deps: Deps, queue: str, language: str) -> str:
    """How a queue is named to someone who speaks `language`: its label, else its name."""
    return naming.queue_label(deps.flows(), queue, language)


# --- the page and the widget ------------------------------------------------------------------

def web_book(deps: Deps) -> Phrasebook:
    """The page's and widget's sentences, with the flows' overrides (`web.*` keys)."""
    return Phrasebook(deps.flows().defaults.phrases, domain="web")


def web_text(deps: Deps, language: str, key: str, **values: Any) -> str:
    """A page sentence in `language`; numbers in `values` are written in the locale's digits
    (a web page shows figures, not the words a voice needs)."""
    loc = babel_locale(deps, language)
    shown = {k: number(v, loc) if isinstance(v, int) else v for k, v in values.items()}
    return web_book(deps).say(language, key, **{k: str(v) for k, v in shown.items()})


def consent_text(deps: Deps, language: str) -> str:
    """What a visitor in `language` agrees to: a per-language override in the flows, else the
    shop's own CALLBACK_CONSENT_TEXT when it has one (it is in one language), else the
    catalogue's wording."""
    override = deps.flows().defaults.phrases.get(language, {}).get("web.consent")
    if override:
        return override
    configured = str(deps.setting("CALLBACK_CONSENT_TEXT"))
    if configured != DEFAULTS["CALLBACK_CONSENT_TEXT"]:
        return configured
    return web_book(deps).say(language, "web.consent")


def locale_tag(deps: Deps, language: str) -> str:
    """The BCP 47 locale of a flow language ('bn-IN'): its <Say> language."""
    return voice_of(deps.flows().defaults, language)[0]


def babel_locale(deps: Deps, language: str) -> Locale:
    """Babel's locale for a flow language: its region's ('bn_IN'), else the bare language's."""
    return _locale(locale_tag(deps, language), language)


@cache
def _locale(tag: str, language: str) -> Locale:
    for name in (tag.replace("-", "_"), language):
        try:
            return Locale.parse(name)
        except (ValueError, UnknownLocaleError):
            continue
    return Locale.parse("en")


def number(value: int, loc: Locale) -> str:
    """A figure in the locale's usual digits (CLDR's default numbering system: Latin digits
    for Hindi, Tamil and Bengali as written in India)."""
    return format_decimal(value, locale=loc, numbering_system="default")


@cache
def date_style(language: str, loc: Locale) -> dict[str, Any]:
    """How this locale writes a time so that its words are in the language's own script:
    day periods ('সকাল 9:00') where CLDR's AM/PM marker is in Latin letters (hi, bn, ta), and
    the long zone name where the short one is only an offset ('GMT-4')."""
    marker = format_datetime(_SAMPLE, "a", locale=loc)
    zone = format_datetime(_SAMPLE, "z", locale=loc)
    return {"day_periods": bool(foreign_letters(language, marker)),
            "zone": "short" if _LETTER.search(zone) else "long"}


def format_when(deps: Deps, language: str, at: dt.datetime, zone: str) -> str:
    """A day and time in the language's own words, in time zone `zone`, e.g.
    'সোমবার, 16 মার্চ 9:00 সকাল পূর্বাঞ্চলের দিবালোক সময়'."""
    loc = babel_locale(deps, language)
    style = date_style(language, loc)
    tz = ZoneInfo(zone)
    # CLDR's pattern for a day of the month with its weekday, the weekday written out in full
    # (as ICU widens a skeleton's fields): "EEEE, d MMMM".
    day_pattern = re.sub(r"E+", "EEEE", loc.datetime_skeletons["MMMMEd"].pattern)
    day = format_datetime(at, day_pattern, tzinfo=tz, locale=loc)
    clock = format_skeleton("Bhm" if style["day_periods"] else "hm", at, tzinfo=tz, locale=loc)
    name = format_datetime(at, "zzzz" if style["zone"] == "long" else "z", tzinfo=tz,
                           locale=loc)
    pattern = str(loc.datetime_formats.get("medium", "{1}, {0}")).replace("'", "")
    return f"{pattern.format(clock, day)} {name}"


def widget_strings(deps: Deps, language: str) -> dict[str, Any]:
    """Everything the widget needs to speak `language`: its sentences and how to write
    numbers and dates there (a BCP 47 locale for the browser's Intl)."""
    lang = page_language(deps, language)
    loc = babel_locale(deps, lang)
    # The browser's Intl is told the digits too: its own locale data may differ from Babel's.
    return {"language": lang, "locale": locale_tag(deps, lang),
            "numbers": loc.default_numbering_system, **date_style(lang, loc),
            "strings": web_book(deps).table(lang)}
