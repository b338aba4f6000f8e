"""A callback request as a web page sends it: read, bounded and checked before anything is
stored.

Every field has a size limit and a type; unknown fields are refused, so a client learns at once
that it sent something we ignore. Consent is a JSON `true` from a box the visitor ticked; a
client cannot send its own consent wording. Errors quote at most a short, printable excerpt of
what was sent (`callback.errors.excerpt`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from callback.errors import ConsentRequired, InvalidRequest, excerpt

BODY_LIMIT = 16 * 1024  # bytes: a full request with a proof-of-work payload is under 2 KB
FIELD_LIMITS: dict[str, int] = {  # characters
    "phone": 32,
    "name": 100,
    "reason": 500,
    "queue": 64,
    "preferred_time": 40,
    "consent_version": 32,
    "language": 16,  # a flow language code ("bn"); checked against the flows by the service
    "altcha": 4096,
}
FIELDS = (*FIELD_LIMITS, "consent")


@dataclass(frozen=True)
class CallbackForm:
    """What a visitor asked for."""

    phone: str
    name: str
    reason: str
    queue: str | None
    preferred_time: dt.datetime | None
    consent_version: str | None
    proof: str | None
    language: str | None = None


def read_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; InvalidRequest for anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The request body is not UTF-8 text: send JSON in UTF-8.") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply: send one flat JSON object.") \
            from None
    except ValueError:
        raise InvalidRequest(
            "The request body is not JSON: send an object, e.g. "
            "{\"phone\": \"+12125551234\", \"consent\": true}.") from None
    if not isinstance(data, dict):
        raise InvalidRequest(
            "Send a JSON object, e.g. {\"phone\": \"+12125551234\", \"consent\": true}.")
    return data


def parse_form(data: dict[str, Any]) -> CallbackForm:
    """Check every field of a request body; InvalidRequest or ConsentRequired when one is wrong."""
    if "consent_text" in data:
        raise InvalidRequest(
            "'consent_text' is not accepted: we store our own wording. Send \"consent\": true "
            "when the visitor has ticked the box.")
    unknown = sorted(str(k) for k in data if k not in FIELDS)
    if unknown:
        raise InvalidRequest(
            f"Unknown field '{excerpt(unknown[0])}': a callback request takes "
            f"{', '.join(FIELDS)}.")
    for key, limit in FIELD_LIMITS.items():
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRequest(f"'{key}' must be text.")
        if len(value) > limit:
            raise InvalidRequest(f"'{key}' is too long: at most {limit} characters.")
    if data.get("consent") is not True:
        raise ConsentRequired(
            "Please tick the box to agree that we may call this number (the request must "
            "carry \"consent\": true from a box the visitor ticked).")
    return CallbackForm(
        phone=_text(data.get("phone")),
        name=_text(data.get("name")),
        reason=_text(data.get("reason")),
        queue=_text(data.get("queue")) or None,
        preferred_time=parse_preferred_time(data.get("preferred_time")),
        consent_version=data.get("consent_version") or None,
        proof=data.get("altcha") or None,
        language=_text(data.get("language")) or None,
    )


def _text(value: str | None) -> str:
    """Printable text on one line: control characters become spaces, runs of space one."""
    if not value:
        return ""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())


def parse_preferred_time(value: object) -> dt.datetime | None:
    """None / "" / "asap" mean as soon as possible; otherwise an ISO time with its zone."""
    if value in (None, "") or (isinstance(value, str) and value.strip().lower() == "asap"):
        return None
    if not isinstance(value, str):
        raise InvalidRequest("preferred_time must be \"asap\" or an ISO date and time.")
    try:
        at = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"preferred_time '{excerpt(value)}' is not a date and time: use e.g. "
            "2026-05-04T15:00:00-04:00, or \"asap\"."
        ) from None
    if at.tzinfo is None:
        raise InvalidRequest("preferred_time needs a time zone offset, e.g. -04:00 or Z.")
    return at.astimezone(dt.UTC)
