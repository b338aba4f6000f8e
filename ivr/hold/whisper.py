"""What an agent hears before taking a call: who is waiting and what they have done so far.

    "Billing. Said 'refund'. Pressed 2. Order number 1 2 3 4 5. Waited 3 minutes.
    Returning caller."
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Flask

from ivr.hold import holding
from ivr.infra import journey
from ivr.infra.services import services_of

log = logging.getLogger(__name__)


def whisper(app: Flask, queue: str, caller_sid: str, now: dt.datetime) -> str:
    """Queue, what the caller said and pressed, what they entered, their wait, their history."""
    services = services_of(app)
    parts = [queue.replace("_", " ").capitalize() + "."]
    try:
        journey.flush(services.db, services.redis)  # the writer may not have caught up yet
    except Exception:
        log.warning("journey flush before the whisper failed", exc_info=True)
    said, pressed = journey.caller_inputs(services.db, caller_sid)
    if said:
        parts.append(f"Said '{said[-1]}'.")
    if pressed:
        parts.append(f"Pressed {', '.join(pressed[-3:])}.")
    state = services.calls.load(caller_sid)
    if state is not None:
        for name, value in state.vars.items():
            if name.startswith("_"):
                continue
            spoken = " ".join(value) if value.isdigit() else value
            parts.append(f"{name.replace('_', ' ').capitalize()} {spoken}.")
    holder = holding.load(services.redis, caller_sid)
    if holder is not None:
        minutes = int(max(0.0, now.timestamp() - holder.first_asked) // 60)
        parts.append("Waited less than a minute." if minutes < 1 else
                     f"Waited {minutes} minute{'s' if minutes != 1 else ''}.")
    if state is not None and state.returning:
        parts.append("Returning caller.")
    return " ".join(parts)
