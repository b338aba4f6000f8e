"""Checking what people type about agents: addresses, queue names, statuses; and the errors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

import phonenumbers

from ivr.core.i18n.languages import LANGUAGES
from ivr.errors import IvrError
from ivr.infra.agents.presence import AgentStatus

QUEUE_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
SIP_URI = re.compile(r"^sips?:[^@\s<>\"]+@[A-Za-z0-9.\-]+(:\d{1,5})?(;[^\s<>\"]*)?$")
# Twilio error 31105: no control, space, delimiter or "unwise" characters, at most 256 long.
CLIENT_IDENTITY = re.compile(r"^[A-Za-z0-9_.\-]{1,256}$")
MAX_WRAP_UP_SECONDS = 3600
# A flow language code as `defaults.languages` names it: "hi", "bn", "en" (not "hi-IN").
LANGUAGE_CODE = re.compile(r"^[a-z]{2,8}$")


class AgentError(IvrError):
    """Something about agents went wrong; the message says what to do."""


class AgentNotFound(AgentError):
    """No agent with that id, name or address."""


class InvalidAgent(AgentError):
    """Input describing an agent or a presence change is not acceptable."""


class AgentConflict(AgentError):
    """Another agent already uses that phone number, SIP URI or client identity."""


class AgentKind(StrEnum):
    """How the service reaches an agent."""

    PHONE = "phone"
    SIP = "sip"
    CLIENT = "client"


# --- validation ------------------------------------------------------------------------------


def normalize_address(kind: str, value: str) -> tuple[AgentKind, str]:
    """Check an agent address of `kind` and return it in canonical form (E.164 for phones)."""
    try:
        agent_kind = AgentKind(kind)
    except ValueError:
        raise InvalidAgent(f"kind must be one of phone, sip, client (got {kind!r})") from None
    value = (value or "").strip()
    if agent_kind is AgentKind.PHONE:
        if not value.startswith("+"):
            raise InvalidAgent(
                f"phone {value!r} must be in international E.164 form, e.g. +14155550123"
            )
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as exc:
            raise InvalidAgent(f"phone {value!r} is not a phone number: {exc}") from None
        if not phonenumbers.is_valid_number(number):
            raise InvalidAgent(f"phone {value!r} is not a valid number for its country code")
        return agent_kind, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if agent_kind is AgentKind.SIP:
        if not SIP_URI.match(value):
            raise InvalidAgent(f"sip {value!r} must be a SIP URI such as sip:alice@pbx.example.com")
        return agent_kind, value
    if not CLIENT_IDENTITY.match(value):
        raise InvalidAgent(
            f"client identity {value!r} may use only letters, digits, '_', '.' and '-' "
            "(at most 256 characters)"
        )
    return agent_kind, value


def normalize_queues(queues: Iterable[str] | str) -> list[str]:
    """Queue names as a de-duplicated list; a string may hold comma-separated names."""
    if isinstance(queues, str):
        queues = queues.split(",")
    out: list[str] = []
    for raw in queues:
        if not isinstance(raw, str):
            raise InvalidAgent(f"queue names must be strings (got {raw!r})")
        name = raw.strip()
        if not QUEUE_NAME.match(name):
            raise InvalidAgent(
                f"queue name {name!r} may use only letters, digits, '_' and '-' (max 64)"
            )
        if name not in out:
            out.append(name)
    if not out:
        raise InvalidAgent('an agent must serve at least one queue, e.g. ["support"]')
    return out


def normalize_languages(languages: Iterable[str] | str | None,
                        known: Iterable[str] | None = None) -> list[str]:
    """Language codes as a de-duplicated list, first the one the agent hears whispers in.

    A string may hold comma-separated codes; empty means the agent did not say. Each code must
    be one of `known` (the flows' `defaults.languages`) or, when the flows are not at hand, a
    language the service knows: a typo ("hn") would otherwise quietly match no caller.
    """
    if languages is None:
        return []
    if isinstance(languages, str):
        languages = [part for part in languages.split(",") if part.strip()]
    flows_codes = {c.lower() for c in known or ()}
    choices = sorted(flows_codes or LANGUAGES)
    where = "the flows' languages" if flows_codes else "the languages the service knows"
    out: list[str] = []
    for raw in languages:
        if not isinstance(raw, str):
            raise InvalidAgent(f"language codes must be strings (got {raw!r})")
        code = raw.strip().lower()
        if not LANGUAGE_CODE.match(code):
            hint = f" such as {code.split('-')[0]!r}" if "-" in code else ""
            raise InvalidAgent(
                f"language {raw.strip()!r} must be a flow language code{hint}: 2 to 8 letters"
            )
        if code not in choices:
            extra = (" (add it under defaults.languages in flows.yaml first)"
                     if flows_codes else "")
            raise InvalidAgent(
                f"language {code!r} is not one of {where}: {', '.join(choices)}{extra}"
            )
        if code not in out:
            out.append(code)
    return out


def check_name(name: str) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise InvalidAgent("name must be 1 to 100 characters")
    return name


def check_wrap_up(seconds: int) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise InvalidAgent(f"wrap_up_seconds must be a whole number (got {seconds!r})")
    if not 0 <= seconds <= MAX_WRAP_UP_SECONDS:
        raise InvalidAgent(f"wrap_up_seconds must be between 0 and {MAX_WRAP_UP_SECONDS}")
    return seconds


def check_status(value: AgentStatus | str) -> AgentStatus:
    try:
        return AgentStatus(value)
    except ValueError:
        choices = ", ".join(s.value for s in AgentStatus)
        raise InvalidAgent(f"status must be one of {choices} (got {value!r})") from None
