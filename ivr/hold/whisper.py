"""What an agent hears before taking a call: who is waiting and what they have done so far.

    "Hindi caller. Billing line. Said 'refund'. Pressed 2. Order number 1 2 3 4 5.
    Waited 3 minutes. Returning caller."

Every sentence comes from the catalogue (keys `whisper.*`, overridable in `flows.yaml`) in the
agent's language, not the caller's: the agent is the one listening. Only what the caller said
stays in their words.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Flask

from ivr.core.flows.naming import language_name, names_languages, queue_label
from ivr.core.i18n import numbers
from ivr.core.i18n.catalog import SOURCE_LANGUAGE, Phrasebook
from ivr.hold import holding
from ivr.infra import journey
from ivr.infra.services import services_of

log = logging.getLogger(__name__)

# Call-state variables the whisper does not read out: the flow's own bookkeeping, and the
# language, which `whisper.language` already names.
_UNSAID = ("language",)


def whisper(app: Flask, queue: str, caller_sid: str, now: dt.datetime, language: str) -> str:
    """The caller's language, the queue, what they said and pressed, what they entered, their
    wait and their history, in `language` (the agent's)."""
    services = services_of(app)
    flows = services.flows.current().file
    book = Phrasebook(flows.defaults.phrases)

    def say(key: str, **values: object) -> str:
        return book.say(language, key, **values)

    try:
        journey.flush(services.db, services.redis)  # the writer may not have caught up yet
    except Exception:
        log.warning("journey flush before the whisper failed", exc_info=True)
    holder = holding.load(services.redis, caller_sid)
    state = services.calls.load(caller_sid)
    caller_language = ((holder.language if holder else "")
                       or (state.language if state else "") or flows.defaults.language)
    parts = [say("whisper.language", language=language_name(book, language, caller_language))
             ] if names_languages(flows) else []
    parts.append(say("whisper.queue", queue=queue_label(flows, queue, language, capitalized=True)))
    said, pressed = journey.caller_inputs(services.db, caller_sid)
    if said:
        parts.append(say("whisper.said", said=said[-1]))
    if pressed:
        keys = ", ".join(numbers.digits(language, entry) for entry in pressed[-3:])
        parts.append(say("whisper.pressed", keys=keys))
    if state is not None:
        for name, value in state.vars.items():
            if name.startswith("_") or name in _UNSAID:
                continue
            parts.append(_entered(book, language, name, value))
    if holder is not None:
        minutes = int(max(0.0, now.timestamp() - holder.first_asked) // 60)
        parts.append(say("whisper.waited_short") if minutes < 1 else
                     say("whisper.waited_one") if minutes == 1 else
                     say("whisper.waited", minutes=minutes))
    if state is not None and state.returning:
        parts.append(say("whisper.returning"))
    return " ".join(parts)


def _entered(book: Phrasebook, language: str, name: str, value: str) -> str:
    # The flows may name a variable per language (`var.order_number`); else its own name.
    spoken_name = book.template(language, f"var.{name}") or name.replace("_", " ").capitalize()
    if value.isdigit():
        return book.say(language, "whisper.entered", name=spoken_name, value=value)
    # A word set by a menu option is said as it is, not letter by letter.
    template = (book.template(language, "whisper.entered")
                or book.template(SOURCE_LANGUAGE, "whisper.entered") or "{name} {value:digits}.")
    return template.replace("{value:digits}", "{value}").format(name=spoken_name, value=value)
