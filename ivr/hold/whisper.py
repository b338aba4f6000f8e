"""What an agent hears before taking a call: who is waiting and what they have done so far.

    "Hindi caller. Billing line. Said 'refund'. Pressed 2. Order number 1 2 3 4 5.
    Waited 3 minutes. Returning caller."

Every sentence comes from the catalogue (keys `whisper.*`, overridable in `flows.yaml`) in the
agent's language, not the caller's: the agent is the one listening. Only what the caller said
stays in their words. What is known of the caller (`caller_context`) is shared with the
console's screen pop, which shows the agent the same facts.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from flask import Flask

from ivr.core.callstate import CallState
from ivr.core.flows.naming import language_name, names_languages, queue_label
from ivr.core.i18n import numbers
from ivr.core.i18n.catalog import SOURCE_LANGUAGE, Phrasebook
from ivr.hold import holding
from ivr.infra import journey
from ivr.infra.services import Services, services_of

log = logging.getLogger(__name__)

# Call-state variables the whisper does not read out: the flow's own bookkeeping, and the
# language, which `whisper.language` already names.
_UNSAID = ("language",)


@dataclass(frozen=True)
class CallerContext:
    """What the service knows of a caller as an agent is offered them (journey rows aside)."""

    holder: holding.Holder | None  # their hold record, while they hold
    state: CallState | None  # their call state
    language: str  # their flow language
    entered: dict[str, str] = field(default_factory=dict)  # values they gave (order number)
    waited_seconds: float | None = None  # since they first asked for a person; None: unknown
    returning: bool = False


def caller_context(services: Services, caller_sid: str, now: dt.datetime, *,
                   ended: bool = False) -> CallerContext:
    """The caller's hold record, call state, language, entered values and wait so far; the
    journey rows are flushed to SQL first, so `journey.caller_inputs` is up to date. With
    `ended`, the state of a call that has ended is read too (it is kept for a while)."""
    flows = services.flows.current().file
    try:
        journey.flush(services.db, services.redis)  # the writer may not have caught up yet
    except Exception:
        log.warning("journey flush before reading a caller's context failed", exc_info=True)
    holder = holding.load(services.redis, caller_sid)
    state = services.calls.load(caller_sid, ended=ended)
    language = ((holder.language if holder else "")
                or (state.language if state else "") or flows.defaults.language)
    entered = {name: value for name, value in (state.vars if state else {}).items()
               if not name.startswith("_") and name not in _UNSAID}
    waited = max(0.0, now.timestamp() - holder.first_asked) if holder is not None else None
    return CallerContext(holder, state, language, entered, waited,
                         bool(state is not None and state.returning))


def var_name(book: Phrasebook, language: str, name: str) -> str:
    """How a call variable is named in `language`: the flows may name it (`var.order_number`);
    else its own name, "Order number"."""
    return book.template(language, f"var.{name}") or name.replace("_", " ").capitalize()


def whisper(app: Flask, queue: str, caller_sid: str, now: dt.datetime, language: str) -> str:
    """The caller's language, the queue, what they said and pressed, what they entered, their
    wait and their history, in `language` (the agent's)."""
    services = services_of(app)
    flows = services.flows.current().file
    book = Phrasebook(flows.defaults.phrases)

    def say(key: str, **values: object) -> str:
        return book.say(language, key, **values)

    known = caller_context(services, caller_sid, now)
    parts = [say("whisper.language", language=language_name(book, language, known.language))
             ] if names_languages(flows) else []
    parts.append(say("whisper.queue", queue=queue_label(flows, queue, language, capitalized=True)))
    said, pressed = journey.caller_inputs(services.db, caller_sid)
    if said:
        parts.append(say("whisper.said", said=said[-1]))
    if pressed:
        keys = ", ".join(numbers.digits(language, entry) for entry in pressed[-3:])
        parts.append(say("whisper.pressed", keys=keys))
    for name, value in known.entered.items():
        parts.append(_entered(book, language, name, value))
    if known.waited_seconds is not None:
        minutes = int(known.waited_seconds // 60)
        parts.append(say("whisper.waited_short") if minutes < 1 else
                     say("whisper.waited_one") if minutes == 1 else
                     say("whisper.waited", minutes=minutes))
    if known.returning:
        parts.append(say("whisper.returning"))
    return " ".join(parts)


def _entered(book: Phrasebook, language: str, name: str, value: str) -> str:
    spoken_name = var_name(book, language, name)
    if value.isdigit():
        return book.say(language, "whisper.entered", name=spoken_name, value=value)
    # A word set by a menu option is said as it is, not letter by letter.
    template = (book.template(language, "whisper.entered")
                or book.template(SOURCE_LANGUAGE, "whisper.entered") or "{name} {value:digits}.")
    return template.replace("{value:digits}", "{value}").format(name=spoken_name, value=value)
